"""The exported retriever: an index folder published by :func:`relforge.index.publish`, the
query encoder beside it, and ``export.json``; loaded once, then single queries in milliseconds.

Layout of ``export/`` on the bus::

    export.json          dimension, metric, recall@10, kind, items, model version, fingerprint
    index/               index.faiss, item_ids.json, manifest.json (relforge.index)
    query_encoder/       the trained model (sentence-transformers folder)

Example:
    >>> retriever = Retriever.from_bus(DataBus("runs/demo"), cache_dir)       # doctest: +SKIP
    >>> ids, scores = retriever.search(["red running shoes"], k=10)            # doctest: +SKIP
"""

from __future__ import annotations

import json
import shutil
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from relforge.bus import DataBus
from relforge.errors import ModelError, NotCommittedError
from relforge.logs import get_logger, log_event
from relforge.tiers import has_words

log = get_logger("twotower.retriever")

EXPORT = "export"
EXPORT_DOC = "export.json"
INDEX_DIR = "index"
ENCODER_DIR = "query_encoder"


def read_export(bus: DataBus, name: str = EXPORT) -> dict[str, Any] | None:
    """``export/export.json`` if an export is published on ``bus``."""
    if not (bus.exists(f"{name}/manifest.json") and bus.exists(f"{name}/{EXPORT_DOC}")):
        return None
    return bus.read_json(f"{name}/{EXPORT_DOC}")


class Retriever:
    """A published export, loaded: its index, its query encoder and its manifest.

    Args:
        folder: a local export folder (see the module docstring).
        batch_size: queries per encoder call.
    """

    def __init__(self, folder: str | Path, batch_size: int = 64):
        from relforge.index import load_index
        from relforge.twotower._model import encoder_of, load_sentence_transformer

        self.folder = Path(folder)
        try:
            self.manifest = json.loads((self.folder / EXPORT_DOC).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ModelError(f"{self.folder / EXPORT_DOC}: no readable export manifest ({exc})") from None
        start = time.perf_counter()
        self.index = load_index(self.folder / INDEX_DIR)
        model = load_sentence_transformer(self.folder / ENCODER_DIR, self.manifest.get("max_seq_length"))
        self.encode = encoder_of(model, batch_size)
        self.load_s = time.perf_counter() - start
        if self.index.dim != self.manifest["dimension"]:
            raise ModelError(f"{self.folder / EXPORT_DOC}: field \"dimension\" says {self.manifest['dimension']}, "
                             f"the index has {self.index.dim}")

    @classmethod
    def from_bus(cls, bus: DataBus, cache_dir: str | Path, name: str = EXPORT, batch_size: int = 64) -> Retriever:
        """The export on ``bus``, copied once per export into ``cache_dir`` and loaded.

        Raises:
            NotCommittedError: nothing exported there (run ``relforge export-index``).
        """
        doc = read_export(bus, name)
        if doc is None:
            raise NotCommittedError(f"{bus.uri(name)}: no exported index; run `relforge export-index` first")
        target = Path(cache_dir) / "exports" / doc["fingerprint"]
        if not (target / EXPORT_DOC).exists():
            tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}")
            bus.get_dir(name, tmp)
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                tmp.rename(target)
            except OSError:  # made by another process meanwhile
                shutil.rmtree(tmp, ignore_errors=True)
        return cls(target, batch_size)

    def search(self, queries: Sequence[str], k: int) -> tuple[list[list[str]], np.ndarray]:
        """The top ``k`` item ids and inner products per query, best first (a query without a
        letter or digit retrieves nothing)."""
        n = len(queries)
        ids: list[list[str]] = [[] for _ in range(n)]
        scores = np.full((n, k), np.nan, dtype=np.float32)
        rows = [i for i, q in enumerate(queries) if has_words(q)]
        if rows:
            found, found_scores = self.index.search(self.encode([queries[i] for i in rows]), k)
            for j, (row_ids, row_scores) in enumerate(zip(self.index.ids(found), found_scores)):
                kept = [str(x) for x in row_ids if x is not None]
                ids[rows[j]] = kept
                scores[rows[j], : len(kept)] = row_scores[: len(kept)]
        return ids, scores

    def timed_search(self, query: str, k: int) -> tuple[list[str], np.ndarray, float]:
        """One query's results and the milliseconds it took (encoding and search)."""
        start = time.perf_counter()
        ids, scores = self.search([query], k)
        ms = (time.perf_counter() - start) * 1000
        log_event(log, "search", k=k, ms=round(ms, 2))
        return ids[0], scores[0, : len(ids[0])], ms
