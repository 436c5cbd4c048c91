"""Channel ``dense``: a sentence-transformers bi-encoder and a faiss inner-product index.

The encoder and its item-vector cache are :mod:`relforge.tiers._encoder`'s (the ``bi-encoder``
tier reads the same cached vectors).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from relforge.errors import ModelError
from relforge.index import IndexParams, IndexPlan, ItemIndex, plan_batch, plan_served
from relforge.logs import get_logger, log_event, track
from relforge.mine.channels._base import Channel
from relforge.tiers._encoder import (
    EmbeddingCache,
    Encoder,
    has_words,
    load_encoder,
    model_fingerprint,
)

__all__ = ["DenseChannel", "EmbeddingCache", "Encoder", "VectorIndex", "load_encoder", "model_fingerprint"]

log = get_logger("mine.dense")


class VectorIndex:
    """The dense channel's inner-product search over normalised vectors, on
    :mod:`relforge.index`.

    Two ways to build it:

    - :meth:`prepare_batch` (what :class:`DenseChannel` does): a one-shot batch search.
      The vectors go into an exact index at once; at the first search the kind is chosen by
      the estimated cost of the whole search (:func:`relforge.index.plan_batch`: exact
      search's measured rate against ANN build + search costs), for ``n_queries`` queries
      or that first batch's size, whichever is larger. ``exact_max_items`` plays no part.
    - :meth:`build`: a long-lived index (:func:`relforge.index.plan_served`): exact up to
      ``exact_max_items`` vectors, HNSW above.

    Args:
        exact_max_items: the largest index :meth:`build` makes exact (default:
            ``IndexParams.served_exact_max_items``).
        hnsw_m: HNSW graph degree.
        ef_search: HNSW search breadth (raised to ``k`` when smaller).
        ef_construction: HNSW build breadth.
        blas_database_block: catalog vectors per BLAS block in exact search.
        params: every other index parameter (:class:`relforge.index.IndexParams`); the
            arguments above override its fields.

    Example:
        >>> vi = VectorIndex()
        >>> vi.prepare_batch(np.eye(3, dtype=np.float32), positions=np.array([5, 7, 9]))
        >>> vi.search(np.array([[0, 1, 0]], np.float32), k=2)[0][0, 0]
        np.int64(7)
    """

    def __init__(
        self,
        exact_max_items: int | None = None,
        hnsw_m: int = 32,
        ef_search: int = 128,
        ef_construction: int = 200,
        blas_database_block: int = 16_384,
        params: IndexParams | None = None,
    ):
        base = params or IndexParams()
        self.params = base.with_(
            hnsw_m=hnsw_m,
            hnsw_ef_search=ef_search,
            hnsw_ef_construction=ef_construction,
            blas_database_block=blas_database_block,
            served_exact_max_items=base.served_exact_max_items if exact_max_items is None else exact_max_items,
            served_ann_kind="hnsw",
        )
        self.exact_max_items = self.params.served_exact_max_items
        self._index: ItemIndex | None = None
        self._pending_queries: int | None = None  # set while a batch plan waits for the first search

    @property
    def kind(self) -> str:
        """The faiss class of the index (``none`` before a build)."""
        return "none" if self._index is None else self._index.faiss_class

    @property
    def plan(self) -> IndexPlan | None:
        """The decision that chose the kind (``None`` before it is made)."""
        return None if self._index is None else self._index.plan

    def build(self, vectors: np.ndarray, positions: np.ndarray | None = None) -> None:
        """Index ``vectors`` (``(n, d)`` float32) for long use: exact up to
        ``exact_max_items``, HNSW above; ``positions`` maps index rows to catalog positions
        (default: row ``i`` is item ``i``)."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        plan = plan_served(len(vectors), vectors.shape[1], self.params)
        self._index = ItemIndex.build(vectors, _positions(vectors, positions), kind=plan.kind, params=self.params, plan=plan)
        self._pending_queries = None

    def prepare_batch(
        self, vectors: np.ndarray, positions: np.ndarray | None = None, n_queries: int | None = None
    ) -> None:
        """Hold ``vectors`` for a one-shot batch search of about ``n_queries`` queries; the
        kind is chosen at the first :meth:`search` (see the class docstring)."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self._index = ItemIndex.build(vectors, _positions(vectors, positions), kind="exact", params=self.params)
        self._pending_queries = n_queries or 0

    def search(self, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` catalog positions and inner products per vector (``-1`` / NaN padding)."""
        if self._index is None:
            raise RuntimeError("VectorIndex.search called before build")
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if self._pending_queries is not None and len(vectors):
            self._choose_for_batch(vectors, k)
        rows, scores = self._index.search(vectors, k)
        found = rows >= 0
        positions = self._index.item_ids
        return np.where(found, positions[np.where(found, rows, 0)], -1), scores

    def _choose_for_batch(self, queries: np.ndarray, k: int) -> None:
        exact = self._index
        n_queries = max(self._pending_queries or 0, len(queries))
        self._pending_queries = None
        if len(exact) == 0:
            return
        stored = exact.stored_vectors()
        plan = plan_batch(len(exact), n_queries, exact.dim, k, self.params, stored, queries)
        if plan.kind == "exact":
            exact.plan = plan
            return
        chosen = ItemIndex.build(stored, exact.item_ids, kind=plan.kind, params=self.params, plan=plan)
        report = chosen.measure_recall(stored, queries)
        if report.recall < self.params.min_recall:
            log_event(log, "dense channel: ANN recall under min_recall", level=logging.WARNING, kind=plan.kind,
                      recall=round(report.recall, 4), min_recall=self.params.min_recall)
        self._index = chosen


def _positions(vectors: np.ndarray, positions: np.ndarray | None) -> np.ndarray:
    if positions is None:
        return np.arange(len(vectors), dtype=np.int64)
    return np.asarray(positions, dtype=np.int64)


class DenseChannel(Channel):
    """A bi-encoder's normalised embeddings, searched by inner product (not lexical).

    Items without a letter or digit are not indexed, and queries without one retrieve
    nothing (their embedding would be the encoder's idea of an empty string). Any other
    query gets its ``k`` nearest items, however far: a dense channel always has an opinion.

    Args:
        encoder: texts -> normalised float32 vectors (see :func:`load_encoder`).
        index: the vector index (see :class:`VectorIndex`); the channel prepares it for a
            one-shot batch search, so its kind is chosen by the cost of the search.
        batch_size: texts per encoder call (bounds memory for long query lists).
        cache: where item embeddings are kept between runs (``None``: not kept).
        expected_queries: how many queries the run will search in all, when known (the
            index kind is chosen for that much work; default: the first batch's size).

    Example:
        >>> ch = DenseChannel(load_encoder(model_dir), VectorIndex())   # doctest: +SKIP
    """

    name = "dense"
    lexical = False

    def __init__(
        self,
        encoder: Encoder,
        index: VectorIndex,
        batch_size: int = 1024,
        cache: EmbeddingCache | None = None,
        expected_queries: int | None = None,
    ):
        self.encoder, self.vectors, self.batch_size, self.cache = encoder, index, batch_size, cache
        self.expected_queries = expected_queries

    def _encode(self, texts: Sequence[str], what: str = "texts") -> np.ndarray:
        starts = range(0, len(texts), self.batch_size)
        if len(starts) > 1:
            starts = track(starts, f"dense: encoding {len(texts):,} {what}")
        parts = [self.encoder(texts[s : s + self.batch_size]) for s in starts]
        return np.concatenate(parts) if parts else np.zeros((0, 1), np.float32)

    def expect_queries(self, n: int) -> None:
        self.expected_queries = n

    def index(self, texts: Sequence[str], item_ids: Sequence[str]) -> None:
        positions, key = self.cache.items_key(texts) if self.cache else (
            np.array([i for i, t in enumerate(texts) if has_words(t)], dtype=np.int64), "")
        if len(positions) == 0:
            raise ModelError("dense channel: no item text has a letter or digit; nothing to index")
        kept = [texts[i] for i in positions]
        vectors = self.cache.load(key) if self.cache else None
        if vectors is None or vectors.shape[0] != len(kept):
            vectors = self._encode(kept, "items")
            if self.cache:
                self.cache.save(key, vectors)
        self.index_vectors(vectors, positions)

    def index_vectors(self, vectors: np.ndarray, positions: np.ndarray | None = None) -> None:
        """Index precomputed item vectors (what :meth:`index` does after encoding)."""
        self.vectors.prepare_batch(vectors, positions, self.expected_queries)

    def search(self, queries: Sequence[str], k: int) -> tuple[np.ndarray, np.ndarray]:
        n = len(queries)
        out_idx = np.full((n, k), -1, dtype=np.int64)
        out_scores = np.full((n, k), np.nan, dtype=np.float32)
        rows = [i for i, q in enumerate(queries) if has_words(q)]
        if rows:
            idx, scores = self.search_vectors(self._encode([queries[i] for i in rows]), k)
            out_idx[rows], out_scores[rows] = idx, scores
        return out_idx, out_scores

    def search_vectors(self, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Search with precomputed query vectors (what :meth:`search` does after encoding)."""
        return self.vectors.search(vectors, k)

    def describe(self) -> dict[str, object]:
        return {**super().describe(), "index": self.vectors.kind}
