"""Memory figures of the benchmarks' child processes (Linux ``/proc``).

A benchmark measures each case in its own child process so that the child's peak is its own.
That peak must be ``VmHWM`` (the high-water mark of the process's own address space), not
``getrusage().ru_maxrss``: Linux starts a child's ``ru_maxrss`` at its parent's high-water mark
(the address space copied at fork is counted before exec replaces it), so a child spawned by a
parent that generated a million candidates or vectors reports the parent's peak as its own
(checked: a child that used 14 MiB reported its 514 MiB parent's).
"""

from __future__ import annotations

import os
import resource


def rss_mib() -> float:
    """This process's resident memory now, MiB."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def own_peak_mib() -> float:
    """This process's own peak resident memory (``VmHWM``), MiB; ``ru_maxrss`` where there is no ``/proc``."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
