"""URIs to ``pyarrow.fs`` file systems: a local path or ``s3://bucket/prefix``."""

from __future__ import annotations

import functools
import posixpath
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlparse

import pyarrow.fs as pafs

from relforge.config import BusConfig
from relforge.errors import StorageError

F = TypeVar("F", bound=Callable)


_DENIED = ("ACCESS_DENIED", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "Forbidden")
_UNREACHABLE = ("NETWORK_CONNECTION", "Could not connect", "curlCode", "Couldn't resolve", "timed out")
_NO_BUCKET = ("NoSuchBucket", "NO_SUCH_BUCKET")


def is_storage_failure(exc: BaseException) -> bool:
    """True for an error of the storage itself (access, network, bucket), not of a file's content."""
    if isinstance(exc, (PermissionError, ConnectionError, TimeoutError)):
        return True
    text = str(exc)
    return isinstance(exc, OSError) and (
        "AWS Error" in text or any(k in text for k in (*_DENIED, *_UNREACHABLE)) or _no_bucket(text)
    )


def _no_bucket(text: str) -> bool:
    return any(k in text for k in _NO_BUCKET) or ("Bucket" in text and "not found" in text)


def describe_failure(root: str, config: BusConfig, exc: BaseException) -> str:
    """A message that says what is wrong with the storage at ``root`` and what to check."""
    text = str(exc)
    detail = text.splitlines()[0] if text else type(exc).__name__
    if not is_s3(root):
        if isinstance(exc, PermissionError):
            return f"{root}: permission denied ({detail})"
        return f"{root}: storage error ({detail})"
    cfg = config.resolved()
    endpoint = cfg.endpoint_url or "the AWS default endpoint"
    if any(k in text for k in _DENIED) or isinstance(exc, PermissionError):
        why = (
            f"access denied by {endpoint}; check the S3 credentials (bus.access_key and "
            "bus.secret_key, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)"
        )
    elif any(k in text for k in _UNREACHABLE) or isinstance(exc, (ConnectionError, TimeoutError)):
        why = f"cannot reach the S3 endpoint {endpoint}; check bus.endpoint_url or AWS_ENDPOINT_URL"
    elif _no_bucket(text):
        bucket = urlparse(root).netloc
        why = f"bucket {bucket!r} does not exist at {endpoint}; create it first"
    else:
        why = f"S3 error at {endpoint}"
    return f"{root}: {why} ({detail})"


def storage_errors(method: F) -> F:
    """Turn storage failures inside a bus method into a :class:`StorageError` that says what to check.

    ``FileNotFoundError`` passes through (callers turn it into ``NotCommittedError``).
    """

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except FileNotFoundError:
            raise
        except OSError as exc:
            if not is_storage_failure(exc):
                raise
            bus = getattr(self, "bus", self)
            raise StorageError(describe_failure(bus.root, bus.config, exc)) from exc

    return wrapper  # type: ignore[return-value]


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
