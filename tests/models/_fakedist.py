"""Installed distributions made by hand in a temporary site folder.

A distribution is a ``<name>-<version>.dist-info`` folder (METADATA and a RECORD with SHA-256
hashes) beside the files it lists, exactly as pip leaves it; ``importlib.metadata`` finds it
once the site folder is on ``sys.path``. This lets the tests pull "packaged" models made of
tiny files without touching a package index or the shared environment.
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def make_dist(site: Path, name: str, version: str, files: dict[str, bytes]) -> None:
    """Install distribution ``name==version`` holding ``files`` (paths relative to ``site``)."""
    norm = name.replace("-", "_")
    info = site / f"{norm}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    rows = []
    for rel, data in files.items():
        path = site / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        rows.append(f"{rel},{_record_hash(data)},{len(data)}")
    rows += [f"{info.name}/METADATA,,", f"{info.name}/RECORD,,"]
    (info / "RECORD").write_text("\n".join(rows) + "\n")


def folder_files(folder: Path, prefix: str) -> dict[str, bytes]:
    """Every file under ``folder`` as ``{prefix + relative path: bytes}``."""
    return {
        prefix + p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }
