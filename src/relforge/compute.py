"""Compute settings, resolved once per process: device, dtype and threads (DESIGN.md "Compute").

``compute.device``, ``compute.dtype`` and ``compute.threads`` may each be ``auto`` (unset for
threads); :func:`resolve_compute` turns them into what this host has:

- device: CUDA when torch sees a GPU, else the CPU;
- dtype: bfloat16 on a GPU that supports it, and on a CPU with native bf16 instructions
  (``avx512_bf16`` or ``amx_bf16`` on x86, ``bf16`` on ARM); float32 elsewhere, because on an
  AVX2-only CPU bf16 is emulated and slower than float32;
- threads: the container's CPU limit (cgroup v2 ``cpu.max`` or v1 CFS quota), else the cores
  this process may run on.

Every step applies the result before it loads a model (:meth:`Compute.apply`), so fine-tuning,
scoring and encoding follow one setting.

Example:
    >>> c = resolve_compute(ComputeConfig(device="cpu", dtype="float32", threads=2))
    >>> (c.device, c.dtype, c.threads)
    ('cpu', 'float32', 2)
"""

from __future__ import annotations

import math
import os
import platform
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from relforge.config import ComputeConfig
from relforge.logs import get_logger, log_event

log = get_logger("compute")

#: x86 CPU flags that mean bf16 matrix instructions in hardware.
X86_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


@lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags (``/proc/cpuinfo`` ``flags`` on x86, ``Features`` on ARM); empty if unknown."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return frozenset(value.split())
    return frozenset()


def cpu_has_native_bf16(flags: frozenset[str] | None = None) -> bool:
    """Whether the CPU computes bf16 in hardware (x86 ``avx512_bf16`` / AMX, ARM ``bf16``)."""
    flags = cpu_flags() if flags is None else flags
    if platform.machine().lower() in ("aarch64", "arm64"):
        return "bf16" in flags
    return any(f in flags for f in X86_BF16_FLAGS)


def cpu_limit() -> int:
    """The CPUs this process may use: the cgroup quota if one is set, else its affinity mask."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        cores = os.cpu_count() or 1
    quota = _cgroup_quota()
    return max(1, min(cores, math.ceil(quota))) if quota else max(1, cores)


def _cgroup_quota() -> float | None:
    """CPUs granted by the cgroup (v2 ``cpu.max``, v1 ``cfs_quota_us / cfs_period_us``), or None."""
    try:
        quota, period = Path("/sys/fs/cgroup/cpu.max").read_text().split()[:2]
        return None if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError):
        pass
    try:
        quota = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_quota_us").read_text())
        period = int(Path("/sys/fs/cgroup/cpu/cpu.cfs_period_us").read_text())
        return None if quota <= 0 else quota / period
    except (OSError, ValueError):
        return None


@dataclass(frozen=True)
class Compute:
    """The resolved settings.

    Attributes:
        device: ``cpu``, ``cuda``, ``cuda:N`` or ``mps``.
        dtype: ``float32``, ``bfloat16`` or ``float16``.
        threads: torch intra-op threads.
        why: how each was chosen, for logs and reports.
    """

    device: str
    dtype: str
    threads: int
    why: dict[str, str] = field(default_factory=dict, compare=False)

    @property
    def on_gpu(self) -> bool:
        return self.device.startswith("cuda")

    @property
    def torch_dtype(self):
        import torch

        return getattr(torch, self.dtype)

    def apply(self) -> Compute:
        """Set torch's thread count (and the BLAS libraries' through the environment)."""
        import torch

        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            os.environ.setdefault(var, str(self.threads))
        if torch.get_num_threads() != self.threads:
            torch.set_num_threads(self.threads)
        return self

    def describe(self) -> dict[str, object]:
        return {"device": self.device, "dtype": self.dtype, "threads": self.threads, **{f"why_{k}": v for k, v in self.why.items()}}


def resolve_compute(config: ComputeConfig | None = None) -> Compute:
    """The device, dtype and threads this host gets under ``config`` (see the module docstring).

    Raises:
        ValueError: a CUDA device asked for where torch sees none.
    """
    config = config or ComputeConfig()
    why: dict[str, str] = {}
    device = config.device
    if device == "auto":
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
        why["device"] = "a GPU is visible" if device == "cuda" else "no GPU visible"
    elif device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise ValueError(f"compute.device={device}, but torch sees no CUDA device")
        why["device"] = "configured"
    else:
        why["device"] = "configured"
    dtype = config.dtype
    if dtype == "auto":
        if device.startswith("cuda"):
            import torch

            dtype = "bfloat16" if torch.cuda.is_bf16_supported() else "float32"
            why["dtype"] = "GPU with bf16" if dtype == "bfloat16" else "GPU without bf16"
        elif device == "cpu" and cpu_has_native_bf16():
            dtype = "bfloat16"
            why["dtype"] = "CPU with native bf16 (" + ", ".join(sorted(set(X86_BF16_FLAGS) & cpu_flags()) or ["bf16"]) + ")"
        else:
            dtype = "float32"
            why["dtype"] = "CPU without native bf16 (emulated bf16 is slower than fp32)" if device == "cpu" else device
    else:
        why["dtype"] = "configured"
    threads = config.threads or cpu_limit()
    why["threads"] = "configured" if config.threads else ("cgroup CPU limit" if _cgroup_quota() else "usable cores")
    compute = Compute(device=device, dtype=dtype, threads=threads, why=why)
    log_event(log, "compute", **compute.describe())
    return compute


_configured: ComputeConfig | None = None
_current: Compute | None = None


def configure(config: ComputeConfig | None) -> None:
    """Set the ``compute`` section this process follows (a step calls this before its work)."""
    global _configured, _current
    if config != _configured:
        _configured, _current = config, None


def current() -> Compute:
    """The resolved and applied settings of this process (resolved on first use).

    Code that loads a model calls this, so that a step that never loads one never imports
    torch for it.
    """
    global _current
    if _current is None:
        _current = resolve_compute(_configured).apply()
    return _current


def resolved() -> Compute | None:
    """The settings if some code already resolved them, else ``None``."""
    return _current


@lru_cache(maxsize=1)
def _libc_malloc_trim():
    import ctypes

    try:
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):  # not glibc (musl, macOS): nothing to trim
        return None


def release_freed_memory() -> bool:
    """Hand the heap's free pages back to the OS (glibc's ``malloc_trim``); ``False`` where there is no glibc.

    A long run of forward passes on batches of varying shapes fragments glibc's heap: freed
    tensors leave pages that the process keeps, and the resident size creeps up with the work
    done, not with what is alive. ``annotate`` calls this after each shard.
    """
    trim = _libc_malloc_trim()
    if trim is None:
        return False
    trim(0)
    return True
