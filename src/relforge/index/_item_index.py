"""An index over item vectors: a faiss index, the id of each row, its measured recall."""

from __future__ import annotations

import time
from collections.abc import Sequence

import faiss
import numpy as np

from relforge.errors import ConfigError
from relforge.index._cost import IndexPlan, plan_batch, plan_served
from relforge.index._kinds import (
    as_vectors,
    build_faiss_index,
    exact_knn,
    kind_of,
    search_faiss,
    stored_vectors,
)
from relforge.index._params import INDEX_KINDS, IndexParams
from relforge.index._recall import RecallReport, drop_self, recall_at_k
from relforge.logs import get_logger, log_event

log = get_logger("index")


class ItemIndex:
    """A faiss inner-product index over L2-normalised item vectors, with the id of each row.

    Build one with :meth:`build` (a given kind), :func:`build_for_batch` (the kind a
    one-shot batch search is cheapest with) or :func:`build_for_serving` (the kind for a
    long-lived, single-query index); save it with :func:`~relforge.index.publish`.

    Args:
        index: the faiss index (row ``i`` holds item ``item_ids[i]``).
        item_ids: one id per row (strings or integers).
        params: the parameters it was built and is searched with.
        build_s: seconds the build took.
        plan: the decision that chose the kind, when one was made.
        recall: the recall measured at build time, when measured.

    Example:
        >>> x = np.eye(3, dtype=np.float32)
        >>> idx = ItemIndex.build(x, ["a", "b", "c"], kind="exact")
        >>> rows, scores = idx.search(x[1:2], 4)
        >>> idx.ids(rows)[0][0], idx.ids(rows)[0][3], float(scores[0, 0])
        ('b', None, 1.0)
    """

    def __init__(
        self,
        index: faiss.Index,
        item_ids: Sequence[object] | np.ndarray,
        params: IndexParams | None = None,
        build_s: float = 0.0,
        plan: IndexPlan | None = None,
        recall: RecallReport | None = None,
    ):
        self.index, self.params, self.build_s, self.plan = index, params or IndexParams(), build_s, plan
        self.item_ids = _id_array(item_ids)
        self._id_list: list[object] | None = None
        if len(self.item_ids) != index.ntotal:
            raise ConfigError(f"{len(self.item_ids):,} item ids for an index of {index.ntotal:,} vectors")
        self.recall = recall
        if recall is None and self.kind == "exact":
            self.recall = RecallReport(k=self.params.recall_k, recall=1.0, sample=0, source="exact")

    # -- building ---------------------------------------------------------------------------

    @classmethod
    def build(
        cls,
        vectors: np.ndarray,
        item_ids: Sequence[object] | np.ndarray | None = None,
        *,
        kind: str = "exact",
        params: IndexParams | None = None,
        plan: IndexPlan | None = None,
    ) -> ItemIndex:
        """Build an index of ``kind`` over ``vectors``.

        Args:
            vectors: ``(n, d)`` float32, L2-normalised.
            item_ids: the id of each row (default: ``0 .. n-1``).
            kind: ``exact``, ``hnsw`` or ``ivfpq``.
            params: build and search parameters.
            plan: the decision behind ``kind`` (kept for the manifest and logs).

        Returns:
            The index; its recall is not measured yet (see :meth:`measure_recall`), except
            for ``exact``, whose recall is 1 by construction.
        """
        if kind not in INDEX_KINDS:
            raise ConfigError(f"unknown index kind {kind!r} (known: {', '.join(INDEX_KINDS)})")
        params = params or IndexParams()
        vectors = as_vectors(vectors)
        ids = np.arange(len(vectors), dtype=np.int64) if item_ids is None else item_ids
        start = time.perf_counter()
        index = build_faiss_index(kind, vectors, params)
        seconds = time.perf_counter() - start
        log_event(log, "index built", kind=kind, n_items=len(vectors), dim=vectors.shape[1], s=round(seconds, 2))
        return cls(index, ids, params, seconds, plan)

    # -- properties -------------------------------------------------------------------------

    @property
    def kind(self) -> str:
        """``exact``, ``hnsw`` or ``ivfpq``."""
        return kind_of(self.index)

    @property
    def faiss_class(self) -> str:
        """The faiss class name (``IndexFlatIP``, ``IndexHNSWFlat``, ``IndexRefineFlat``, ...)."""
        return type(faiss.downcast_index(self.index)).__name__

    @property
    def dim(self) -> int:
        return int(self.index.d)

    def __len__(self) -> int:
        return int(self.index.ntotal)

    # -- searching --------------------------------------------------------------------------

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` rows and inner products per query, best first.

        Args:
            queries: ``(nq, d)`` float32, L2-normalised.
            k: results per query.

        Returns:
            ``(rows, scores)``: ``int64`` rows (``-1`` past the last result) and ``float32``
            inner products (NaN there), both ``(nq, k)``.
        """
        queries = as_vectors(queries, "queries", self.dim)
        nq = len(queries)
        rows = np.full((nq, k), -1, dtype=np.int64)
        scores = np.full((nq, k), np.nan, dtype=np.float32)
        kk = min(k, len(self))
        if nq == 0 or kk == 0:
            return rows, scores
        found_scores, found_rows = search_faiss(self.index, queries, kk, self.params)
        hit = found_rows >= 0
        rows[:, :kk] = np.where(hit, found_rows, -1)
        scores[:, :kk] = np.where(hit, found_scores, np.nan)
        return rows, scores

    def ids(self, rows: np.ndarray) -> list[list[object]]:
        """The item ids of ``rows`` (``None`` where a row is ``-1``)."""
        if self._id_list is None:
            self._id_list = self.item_ids.tolist()
        as_python = self._id_list
        return [[as_python[r] if r >= 0 else None for r in row] for row in np.asarray(rows)]

    # -- recall -----------------------------------------------------------------------------

    def measure_recall(
        self,
        vectors: np.ndarray,
        queries: np.ndarray | None = None,
        *,
        k: int | None = None,
        sample: int | None = None,
    ) -> RecallReport:
        """Recall@``k`` of this index against exact search, on a sample of queries.

        Args:
            vectors: the item vectors the index was built from (the exact search's catalog).
            queries: query vectors to sample from; default: item vectors, each searched
                with its own row left out of both result lists (otherwise every ANN index
                finds the query itself and looks better than it is).
            k: the cutoff (default ``params.recall_k``).
            sample: queries in the sample (default ``params.recall_sample``).

        Returns:
            The report; it is also kept as ``self.recall``.
        """
        k = k or self.params.recall_k
        sample = sample or self.params.recall_sample
        vectors = as_vectors(vectors, "vectors", self.dim)
        if len(vectors) != len(self):
            raise ConfigError(f"recall: {len(vectors):,} vectors for an index of {len(self):,}")
        start = time.perf_counter()
        rng = np.random.default_rng(self.params.seed)
        if self.kind == "exact":
            report = RecallReport(k=k, recall=1.0, sample=0, source="exact")
        elif queries is not None and len(queries):
            queries = as_vectors(queries, "queries", self.dim)
            pick = np.sort(rng.choice(len(queries), min(sample, len(queries)), replace=False))
            q = queries[pick]
            _, truth = exact_knn(q, vectors, min(k, len(self)), self.params)
            found, _ = self.search(q, k)
            report = RecallReport(k, recall_at_k(found, truth, k), len(q), "queries", time.perf_counter() - start)
        else:
            pick = np.sort(rng.choice(len(vectors), min(sample, len(vectors)), replace=False))
            q = vectors[pick]
            kk = min(k + 1, len(self))
            _, truth = exact_knn(q, vectors, kk, self.params)
            found, _ = self.search(q, kk)
            report = RecallReport(
                k, recall_at_k(drop_self(found, pick, k), drop_self(truth, pick, k), k), len(q), "items",
                time.perf_counter() - start,
            )
        self.recall = report
        log_event(log, "recall measured", kind=self.kind, k=k, recall=round(report.recall, 4),
                  sample=report.sample, source=report.source)
        return report

    def stored_vectors(self) -> np.ndarray:
        """A read-only view of the vectors of an ``exact`` index (no copy)."""
        return stored_vectors(self.index)


def _id_array(item_ids: Sequence[object] | np.ndarray) -> np.ndarray:
    array = np.asarray(item_ids)
    if array.ndim != 1:
        raise ConfigError(f"item ids must be one-dimensional, got shape {array.shape}")
    if array.dtype.kind in "iu":
        return array.astype(np.int64, copy=False)
    if array.dtype.kind in "UO":
        return np.asarray([str(x) for x in array], dtype=object)
    raise ConfigError(f"item ids must be strings or integers, got dtype {array.dtype}")


def build_for_batch(
    vectors: np.ndarray,
    n_queries: int,
    item_ids: Sequence[object] | np.ndarray | None = None,
    *,
    k: int = 50,
    params: IndexParams | None = None,
    queries: np.ndarray | None = None,
) -> ItemIndex:
    """The index a one-shot search of ``n_queries`` queries is cheapest with (see
    :func:`~relforge.index.plan_batch`); an ANN index gets its recall measured.

    Args:
        vectors: ``(n, d)`` item vectors.
        n_queries: how many queries will be searched, all told.
        item_ids: the id of each row (default ``0 .. n-1``).
        k: results per query.
        params: the parameters.
        queries: some of the queries (for the cost probes and the recall check).

    Returns:
        The built index, its ``plan`` set.

    Example:
        >>> x = np.eye(4, dtype=np.float32)
        >>> build_for_batch(x, n_queries=10).kind
        'exact'
    """
    params = params or IndexParams()
    vectors = as_vectors(vectors)
    plan = plan_batch(len(vectors), n_queries, vectors.shape[1], k, params, vectors, queries)
    index = ItemIndex.build(vectors, item_ids, kind=plan.kind, params=params, plan=plan)
    if plan.kind != "exact":
        report = index.measure_recall(vectors, queries)
        if report.recall < params.min_recall:
            log_event(log, "batch index recall under min_recall", level=30, kind=plan.kind,
                      recall=round(report.recall, 4), min_recall=params.min_recall)
    return index


def build_for_serving(
    vectors: np.ndarray,
    item_ids: Sequence[object] | np.ndarray | None = None,
    *,
    params: IndexParams | None = None,
    queries: np.ndarray | None = None,
    kind: str | None = None,
) -> ItemIndex:
    """A long-lived index for single queries: exact up to ``served_exact_max_items``,
    ``served_ann_kind`` above (or ``kind`` when given), with its recall@``recall_k``
    measured against exact search.

    Args:
        vectors: ``(n, d)`` item vectors.
        item_ids: the id of each row.
        params: the parameters.
        queries: held-out query vectors for the recall sample (default: item vectors,
            leave-one-out).
        kind: force a kind instead of the size rule.

    Returns:
        The index, its ``plan`` and ``recall`` set; pass it to
        :func:`~relforge.index.publish`.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> x = rng.normal(size=(500, 16)).astype(np.float32)
        >>> x /= np.linalg.norm(x, axis=1, keepdims=True)
        >>> idx = build_for_serving(x, params=IndexParams(served_exact_max_items=100))
        >>> idx.kind, idx.recall.recall > 0.9
        ('hnsw', True)
    """
    params = params or IndexParams()
    vectors = as_vectors(vectors)
    plan = plan_served(len(vectors), vectors.shape[1], params)
    if kind is not None and kind != plan.kind:
        plan = IndexPlan(kind, "served", plan.n_items, None, plan.dim, f"{kind}: chosen by the caller")
    index = ItemIndex.build(vectors, item_ids, kind=plan.kind, params=params, plan=plan)
    index.measure_recall(vectors, queries)
    return index


def batch_search(
    vectors: np.ndarray,
    queries: np.ndarray,
    k: int,
    *,
    params: IndexParams | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Search all ``queries`` in ``vectors`` once, with the cheapest index for that work.

    Args:
        vectors: ``(n, d)`` item vectors, L2-normalised.
        queries: ``(nq, d)`` query vectors, L2-normalised.
        k: results per query.
        params: the parameters.

    Returns:
        ``(rows, scores)`` as :meth:`ItemIndex.search` returns them.

    Example:
        >>> x = np.eye(3, dtype=np.float32)
        >>> batch_search(x, x[2:], 1)[0].tolist()
        [[2]]
    """
    queries = as_vectors(queries, "queries")
    index = build_for_batch(vectors, len(queries), k=k, params=params, queries=queries)
    return index.search(queries, k)
