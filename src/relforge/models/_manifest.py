"""The manifest of a model folder (``relforge_model.json``) and its verification on use.

The manifest lists every file of the folder with its size and SHA-256, and says what the
folder was made from. It is written last, so a folder without one was never finished.

Verifying hashes every file once; the result is remembered per file by its size, mtime,
ctime and inode (under ``<cache_dir>/verified/``), so that later checks only stat the files.
Any write to a file changes its ctime, so a changed or corrupted file is hashed again and
caught.
"""

from __future__ import annotations

import hashlib
import json
import os
import uuid
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from relforge import __version__
from relforge.errors import ModelError

MANIFEST = "relforge_model.json"
FORMAT = 1
_CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    """The hex SHA-256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def folder_files(folder: Path) -> list[str]:
    """The files under ``folder`` (relative POSIX paths, sorted), the manifest excluded."""
    return sorted(
        p.relative_to(folder).as_posix()
        for p in folder.rglob("*")
        if p.is_file() and p.name != MANIFEST and not p.name.startswith(".relforge-tmp")
    )


def write_json_atomic(path: Path, obj: Any) -> None:
    tmp = path.with_name(f".relforge-tmp-{uuid.uuid4().hex[:8]}-{path.name}")
    tmp.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def write_manifest(folder: Path, name: str, source: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """Hash every file of ``folder`` and write its manifest (last).

    Args:
        folder: the finished model folder.
        name: the model's name (a packaged name, or the URI it came from).
        source: what it was made from; compared on later pulls to detect a stale folder.
        extra: more fields to record (e.g. ``dtype``).

    Returns:
        The manifest written.
    """
    files = [
        {"path": rel, "bytes": (folder / rel).stat().st_size, "sha256": sha256_file(folder / rel)}
        for rel in folder_files(folder)
    ]
    if not files:
        raise ModelError(f"{folder}: the model folder is empty")
    manifest = {
        "format": FORMAT,
        "name": name,
        "source": source,
        "files": files,
        "bytes": sum(f["bytes"] for f in files),
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "relforge_version": __version__,
        **extra,
    }
    write_json_atomic(folder / MANIFEST, manifest)
    return manifest


def read_manifest(folder: Path) -> dict[str, Any] | None:
    """The folder's manifest, or ``None`` when it has none.

    Raises:
        ModelError: when the manifest exists but is not valid.
    """
    path = folder / MANIFEST
    if not path.is_file():
        return None
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"{path}: unreadable model manifest ({exc})") from None
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), list):
        raise ModelError(f'{path}: not a model manifest (no "files" list)')
    return manifest


def _stat_key(path: Path) -> list[int]:
    st = path.stat()
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]


def _memo_path(folder: Path, cache_dir: Path) -> Path:
    key = hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:24]
    return cache_dir / "verified" / f"{key}.json"


def verify_folder(folder: Path, cache_dir: Path, hint: str = "") -> dict[str, Any]:
    """Check every file the manifest of ``folder`` lists: present, same size, same SHA-256.

    Args:
        folder: a model folder with a manifest.
        cache_dir: where verified results are remembered (stat keys only).
        hint: appended to an error message (e.g. how to repair the folder).

    Returns:
        The manifest.

    Raises:
        ModelError: naming the first missing or changed file.
    """
    manifest = read_manifest(folder)
    if manifest is None:
        raise ModelError(f"{folder}: no {MANIFEST}, the model folder is unfinished{hint}")
    manifest_digest = sha256_file(folder / MANIFEST)
    memo_file = _memo_path(folder, cache_dir)
    try:
        memo = json.loads(memo_file.read_text(encoding="utf-8"))
        if memo.get("manifest") != manifest_digest:
            memo = {}
    except (OSError, ValueError):
        memo = {}
    known: dict[str, list[int]] = memo.get("files", {})
    checked: dict[str, list[int]] = {}
    for entry in manifest["files"]:
        rel = entry["path"]
        path = folder / rel
        if not path.is_file():
            raise ModelError(f"{path}: file missing from the model folder{hint}")
        key = _stat_key(path)
        if known.get(rel) != key:
            if key[0] != entry["bytes"]:
                raise ModelError(
                    f"{path}: corrupt model file, {key[0]} bytes where the manifest says "
                    f"{entry['bytes']}{hint}"
                )
            if sha256_file(path) != entry["sha256"]:
                raise ModelError(f"{path}: corrupt model file, its SHA-256 differs from the manifest{hint}")
        checked[rel] = key
    if checked != known:
        try:
            memo_file.parent.mkdir(parents=True, exist_ok=True)
            write_json_atomic(memo_file, {"folder": str(folder.resolve()), "manifest": manifest_digest, "files": checked})
        except OSError:
            pass  # a read-only cache only costs a re-hash next time
    return manifest
