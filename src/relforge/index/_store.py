"""Saving and loading an index: the faiss file, the item-id map and a manifest, checked on load."""

from __future__ import annotations

import hashlib
import json
import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import faiss

from relforge.errors import ModelError, RecallGateError
from relforge.index._item_index import ItemIndex
from relforge.index._kinds import kind_of
from relforge.index._params import IndexParams
from relforge.index._recall import RecallReport
from relforge.logs import get_logger, log_event

log = get_logger("index")

INDEX_FILE = "index.faiss"
IDS_FILE = "item_ids.json"
MANIFEST_FILE = "manifest.json"
FORMAT_VERSION = 1


def publish(
    index: ItemIndex,
    folder: str | Path,
    *,
    model_version: str,
    min_recall: float | None = None,
) -> dict[str, object]:
    """Save ``index`` to ``folder``: ``index.faiss``, ``item_ids.json`` and, last,
    ``manifest.json`` (so that a folder with a manifest is complete).

    The manifest records the dimension, the metric, the kind and faiss class, the kind's
    parameters, the item count, the recall@10 measured at build time and its sample size,
    ``model_version``, and each file's size and SHA-256.

    Args:
        index: a built index, its recall measured (:func:`build_for_serving` does that).
        folder: a local folder (created if missing; files in it are replaced).
        model_version: the encoder's version, as the caller names it.
        min_recall: the least recall@``recall_k`` accepted (default ``params.min_recall``).

    Returns:
        The manifest, as written.

    Raises:
        RecallGateError: when the recall was not measured or is under ``min_recall``;
            nothing is written then.

    Example:
        >>> idx = build_for_serving(vectors, ids)                        # doctest: +SKIP
        >>> publish(idx, "export/index", model_version="two-tower-3")    # doctest: +SKIP
    """
    minimum = index.params.min_recall if min_recall is None else min_recall
    recall = index.recall
    if recall is None:
        raise RecallGateError(
            f"{index.kind} index of {len(index):,} items: recall not measured; "
            "call measure_recall (or build with build_for_serving) before publishing"
        )
    if recall.recall < minimum:
        raise RecallGateError(
            f"{index.kind} index of {len(index):,} items: recall@{recall.k} {recall.recall:.4f} "
            f"(sample of {recall.sample:,} {recall.source}) is under the minimum {minimum:.4f}; not published"
        )
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    files = {
        "index": _write_atomic(folder / INDEX_FILE, lambda tmp: faiss.write_index(index.index, str(tmp))),
        "item_ids": _write_atomic(folder / IDS_FILE, _bytes(json.dumps(index.item_ids.tolist()).encode("utf-8"))),
    }
    manifest = {
        "format_version": FORMAT_VERSION,
        "dimension": index.dim,
        "metric": "inner_product",
        "normalized": True,
        "kind": index.kind,
        "faiss_class": index.faiss_class,
        "parameters": index.params.kind_params(index.kind, index.dim, len(index)),
        "search_parameters": index.params.to_dict(),
        "item_count": len(index),
        "item_id_type": "int" if index.item_ids.dtype.kind in "iu" else "str",
        "recall": recall.to_dict(),
        "recall_at_10": recall.recall if recall.k == 10 else None,
        "recall_sample": recall.sample,
        "min_recall": minimum,
        "model_version": model_version,
        "plan": index.plan.to_dict() if index.plan else None,
        "build_s": round(index.build_s, 3),
        "faiss_version": faiss.__version__,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "files": files,
    }
    _write_atomic(folder / MANIFEST_FILE, _bytes(json.dumps(manifest, indent=2).encode("utf-8")))
    log_event(log, "index published", folder=str(folder), kind=index.kind, items=len(index),
              recall=round(recall.recall, 4), model_version=model_version)
    return manifest


def read_manifest(folder: str | Path) -> dict[str, object]:
    """The manifest of a published index folder.

    Raises:
        ModelError: when the folder has no readable manifest.
    """
    path = Path(folder) / MANIFEST_FILE
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelError(f"{path}: no index manifest (not a published index, or publishing did not finish)") from None
    except (OSError, ValueError) as exc:
        raise ModelError(f"{path}: unreadable index manifest: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format_version") != FORMAT_VERSION:
        raise ModelError(f"{path}: field \"format_version\": expected {FORMAT_VERSION}, got "
                         f"{manifest.get('format_version') if isinstance(manifest, dict) else manifest!r}")
    return manifest


def load_index(folder: str | Path) -> ItemIndex:
    """Load a published index and check it against its manifest.

    Checked: each file's size and SHA-256, the faiss index's dimension, item count, metric
    and kind, and the id map's length.

    Args:
        folder: what :func:`publish` wrote.

    Returns:
        The index, with its parameters, recall and plan as published.

    Raises:
        ModelError: naming the file and the field that disagree.

    Example:
        >>> idx = load_index("export/index")                             # doctest: +SKIP
        >>> rows, scores = idx.search(query_vectors, 10)                 # doctest: +SKIP
    """
    folder = Path(folder)
    manifest = read_manifest(folder)
    files = manifest.get("files") or {}
    for key, name in (("index", INDEX_FILE), ("item_ids", IDS_FILE)):
        entry = files.get(key) or {}
        path = folder / name
        try:
            size, digest = _file_digest(path)
        except OSError as exc:
            raise ModelError(f"{path}: missing or unreadable ({exc.strerror or exc})") from None
        if size != entry.get("bytes") or digest != entry.get("sha256"):
            raise ModelError(f"{path}: size or SHA-256 differs from {folder / MANIFEST_FILE} "
                             f"(field \"files.{key}\"); the file was changed or truncated")
    try:
        index = faiss.read_index(str(folder / INDEX_FILE))
    except RuntimeError as exc:
        raise ModelError(f"{folder / INDEX_FILE}: not a faiss index: {exc}") from None
    item_ids = json.loads((folder / IDS_FILE).read_text(encoding="utf-8"))
    where = folder / MANIFEST_FILE
    checks = (
        ("dimension", int(index.d), manifest.get("dimension")),
        ("item_count", int(index.ntotal), manifest.get("item_count")),
        ("item_count", len(item_ids), manifest.get("item_count")),
        ("metric", "inner_product" if index.metric_type == faiss.METRIC_INNER_PRODUCT else "l2",
         manifest.get("metric")),
        ("kind", kind_of(index), manifest.get("kind")),
    )
    for field, actual, expected in checks:
        if actual != expected:
            raise ModelError(f"{where}: field \"{field}\" says {expected!r}, the files have {actual!r}")
    params = IndexParams.from_dict(dict(manifest.get("search_parameters") or {}))
    recall_data = manifest.get("recall") or None
    recall = RecallReport(**recall_data) if recall_data else None
    loaded = ItemIndex(index, item_ids, params, float(manifest.get("build_s") or 0.0), None, recall)
    loaded.manifest = manifest  # type: ignore[attr-defined]
    log_event(log, "index loaded", folder=str(folder), kind=loaded.kind, items=len(loaded),
              model_version=manifest.get("model_version"))
    return loaded


def _bytes(data: bytes) -> Callable[[Path], None]:
    return lambda tmp: tmp.write_bytes(data)


def _write_atomic(path: Path, write: Callable[[Path], None]) -> dict[str, object]:
    """Write through ``write(tmp)`` then rename onto ``path``; the file's size and SHA-256."""
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        write(tmp)
        size, digest = _file_digest(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return {"name": path.name, "bytes": size, "sha256": digest}


def _file_digest(path: Path) -> tuple[int, str]:
    h, size = hashlib.sha256(), 0
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
            size += len(block)
    return size, h.hexdigest()
