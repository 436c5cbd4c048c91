"""URIs to ``pyarrow.fs`` file systems: a local path or ``s3://bucket/prefix``."""

from __future__ import annotations

import posixpath
import uuid
from pathlib import Path
from urllib.parse import urlparse

import pyarrow.fs as pafs

from relforge.config import BusConfig


def is_s3(uri: str) -> bool:
    return str(uri).startswith("s3://")


def filesystem_for(uri: str, config: BusConfig | None = None) -> tuple[pafs.FileSystem, str]:
    """The file system and the path inside it for ``uri``.

    Args:
        uri: a local path, or ``s3://bucket/prefix``.
        config: endpoint and credentials; unset fields come from the AWS variables.

    Returns:
        ``(filesystem, path)``; for S3 the path is ``bucket/prefix``.
    """
    uri = str(uri)
    if not is_s3(uri):
        return pafs.LocalFileSystem(), str(Path(uri).expanduser().resolve())
    cfg = (config or BusConfig()).resolved()
    parsed = urlparse(uri)
    kwargs: dict[str, object] = {"region": cfg.region or "us-east-1"}
    if cfg.endpoint_url:
        endpoint = urlparse(cfg.endpoint_url)
        kwargs["endpoint_override"] = endpoint.netloc or endpoint.path
        kwargs["scheme"] = endpoint.scheme or "https"
    if cfg.access_key:
        kwargs["access_key"] = cfg.access_key
        kwargs["secret_key"] = cfg.secret_key
    fs = pafs.S3FileSystem(**kwargs)
    return fs, posixpath.join(parsed.netloc, parsed.path.lstrip("/")).rstrip("/")


def join(*parts: str) -> str:
    return posixpath.join(*parts)


def exists(fs: pafs.FileSystem, path: str) -> bool:
    return fs.get_file_info(path).type != pafs.FileType.NotFound


def write_bytes_atomic(fs: pafs.FileSystem, path: str, data: bytes) -> None:
    """Write ``data`` so that readers see the whole file or nothing.

    On a local disk: a temporary name, then a rename. On S3 a PUT is atomic by itself.
    """
    parent = posixpath.dirname(path)
    if parent:
        fs.create_dir(parent, recursive=True)
    if isinstance(fs, pafs.LocalFileSystem):
        tmp = f"{path}.tmp-{uuid.uuid4().hex[:8]}"
        with fs.open_output_stream(tmp) as out:
            out.write(data)
        fs.move(tmp, path)
    else:
        with fs.open_output_stream(path) as out:
            out.write(data)


def read_bytes(fs: pafs.FileSystem, path: str) -> bytes:
    with fs.open_input_stream(path) as src:
        return src.read()


def delete_quietly(fs: pafs.FileSystem, path: str) -> None:
    try:
        info = fs.get_file_info(path)
        if info.type == pafs.FileType.Directory:
            fs.delete_dir(path)
        elif info.type == pafs.FileType.File:
            fs.delete_file(path)
    except OSError:
        pass
