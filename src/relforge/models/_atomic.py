"""Atomic folder replacement and per-name locks in the model cache."""

from __future__ import annotations

import fcntl
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def cache_lock(cache_dir: Path, name: str) -> Iterator[None]:
    """Hold an exclusive lock on ``<cache_dir>/locks/<name>.lock`` (between processes too)."""
    locks = Path(cache_dir).expanduser() / "locks"
    locks.mkdir(parents=True, exist_ok=True)
    with open(locks / f"{name}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def swap_in(tmp: Path, target: Path) -> None:
    """Rename the finished folder ``tmp`` to ``target``; an old ``target`` is moved aside first,
    then deleted. Both folders must be on the same file system (siblings)."""
    old = None
    if target.exists():
        old = target.with_name(f".old-{target.name}-{uuid.uuid4().hex[:8]}")
        os.rename(target, old)
    os.rename(tmp, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def remove_leftovers(parent: Path, name: str) -> None:
    """Temporary and replaced folders that earlier (killed) runs left for ``name`` in ``parent``."""
    for pattern in (f".tmp-{name}-*", f".old-{name}-*"):
        for path in parent.glob(pattern):
            shutil.rmtree(path, ignore_errors=True)
