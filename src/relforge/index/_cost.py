"""Choosing an index kind by the cost of the work at hand.

Two workloads:

- **batch** (one-shot): ``n_queries`` queries against ``n_items`` items, once (mining). The
  cost of exact search is ``n_queries * n_items`` times the seconds per (query, item) pair
  that faiss's blocked BLAS search measures on this machine (:func:`measure_exact_rate`).
  An ANN kind costs its build plus its searches plus the recall check; these are measured
  by building the kind on a sample of the actual vectors and searching it, then
  extrapolated to the full size by the kind's work count (HNSW: build ``n log n``, search
  ``log n``; IVF-PQ: k-means ``train sample x lists``, adding ``n x (lists + PQ
  centroids)``, search ``lists + nprobe x n / lists + refine``). The cheaper wins, an ANN
  kind only when it is cheaper by ``batch_ann_margin``. Exact is chosen without probing
  when its estimate is under ``batch_probe_min_exact_s`` (probing would cost a
  noticeable share of it), and without measuring when the whole search is no bigger than
  the rate measurement itself.
- **served**: single queries at low latency for a long time (the exported index): exact up
  to ``served_exact_max_items`` items, ``served_ann_kind`` above.

Every decision is logged (logger ``relforge.index``) with its numbers, and kept on the
built :class:`~relforge.index.ItemIndex` as its ``plan``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from relforge.index._kinds import as_vectors, build_faiss_index, search_faiss
from relforge.index._params import IndexParams
from relforge.logs import get_logger, log_event

log = get_logger("index")
Workload = Literal["batch", "served"]

_RATE_CACHE: dict[tuple[int, int, int, int, int, int], float] = {}


@dataclass(frozen=True)
class CostEstimate:
    """The estimated seconds of one way of doing the work.

    Args:
        kind: ``exact``, ``hnsw`` or ``ivfpq``.
        build_s: building the index (and, for ANN kinds, checking its recall).
        search_s: all the searches of the workload.
        basis: how the figures were obtained.
    """

    kind: str
    build_s: float
    search_s: float
    basis: str

    @property
    def total_s(self) -> float:
        return self.build_s + self.search_s

    def to_dict(self) -> dict[str, object]:
        return {"kind": self.kind, "build_s": _r(self.build_s), "search_s": _r(self.search_s),
                "total_s": _r(self.total_s), "basis": self.basis}


@dataclass(frozen=True)
class IndexPlan:
    """The index kind chosen for a workload, and why.

    Args:
        kind: the chosen kind.
        workload: ``batch`` or ``served``.
        n_items: catalog vectors.
        n_queries: queries of a batch workload (``None`` when served).
        dim: vector width.
        reason: the decision in words, with its numbers.
        estimates: the cost estimates compared (empty when none were needed).
        exact_pair_s: the measured seconds per (query, item) pair of exact search
            (``None`` when not measured).
    """

    kind: str
    workload: Workload
    n_items: int
    n_queries: int | None
    dim: int
    reason: str
    estimates: tuple[CostEstimate, ...] = field(default=())
    exact_pair_s: float | None = None

    def to_dict(self) -> dict[str, object]:
        return {
            "kind": self.kind, "workload": self.workload, "n_items": self.n_items,
            "n_queries": self.n_queries, "dim": self.dim, "reason": self.reason,
            "exact_pair_ns": None if self.exact_pair_s is None else round(self.exact_pair_s * 1e9, 3),
            "estimates": [e.to_dict() for e in self.estimates],
        }


def _r(x: float) -> float:
    return round(x, 3) if math.isfinite(x) else x


def clear_rate_cache() -> None:
    """Forget the exact-search rates measured so far in this process."""
    _RATE_CACHE.clear()


def measure_exact_rate(dim: int, k: int = 50, params: IndexParams | None = None) -> float:
    """Seconds per (query, item) pair of exact inner-product search on this machine.

    Searches ``params.rate_probe_queries`` random unit vectors against
    ``params.rate_probe_items`` with faiss's blocked BLAS path (the path exact search
    takes), once to warm up and twice timed; the faster run counts. Cached per process
    for a given dimension, ``k`` and probe size.

    Args:
        dim: vector width.
        k: results per query (the top-k selection is part of the cost).
        params: probe sizes and BLAS blocks.

    Returns:
        Seconds per pair (about 1e-8 on two AVX2 cores at 384 dimensions).

    Example:
        >>> 0 < measure_exact_rate(64, 10, IndexParams(rate_probe_items=2048, rate_probe_queries=64)) < 1e-3
        True
    """
    params = params or IndexParams()
    key = (dim, k, params.rate_probe_items, params.rate_probe_queries, params.blas_database_block,
           params.blas_min_queries)
    if key in _RATE_CACHE:
        return _RATE_CACHE[key]
    rng = np.random.default_rng(params.seed)
    items = _unit(rng.standard_normal((params.rate_probe_items, dim), dtype=np.float32))
    queries = _unit(rng.standard_normal((params.rate_probe_queries, dim), dtype=np.float32))
    index = build_faiss_index("exact", items, params)
    kk = min(k, len(items))
    search_faiss(index, queries[: max(params.blas_min_queries, 1)], kk, params)
    best = math.inf
    for _ in range(2):
        start = time.perf_counter()
        search_faiss(index, queries, kk, params)
        best = min(best, time.perf_counter() - start)
    rate = best / (len(items) * len(queries))
    _RATE_CACHE[key] = rate
    log_event(log, "exact search rate measured", dim=dim, k=kk, ns_per_pair=round(rate * 1e9, 3),
              pairs=len(items) * len(queries))
    return rate


def _unit(x: np.ndarray) -> np.ndarray:
    x /= np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    return x


def plan_served(n_items: int, dim: int, params: IndexParams | None = None) -> IndexPlan:
    """The kind of a long-lived index for single queries: exact up to
    ``params.served_exact_max_items`` items, ``params.served_ann_kind`` above.

    Example:
        >>> plan_served(10_000, 384).kind, plan_served(5_000_000, 384).kind
        ('exact', 'hnsw')
    """
    params = params or IndexParams()
    if n_items <= params.served_exact_max_items:
        kind = "exact"
        reason = f"served index of {n_items:,} items <= served_exact_max_items {params.served_exact_max_items:,}: exact"
    else:
        kind = params.served_ann_kind
        reason = (f"served index of {n_items:,} items > served_exact_max_items "
                  f"{params.served_exact_max_items:,}: {kind}")
    plan = IndexPlan(kind=kind, workload="served", n_items=n_items, n_queries=None, dim=dim, reason=reason)
    log_event(log, "index plan", kind=kind, workload="served", n_items=n_items, reason=reason)
    return plan


def plan_batch(
    n_items: int,
    n_queries: int,
    dim: int,
    k: int = 50,
    params: IndexParams | None = None,
    vectors: np.ndarray | None = None,
    queries: np.ndarray | None = None,
) -> IndexPlan:
    """The cheapest kind for a one-shot search of ``n_queries`` queries in ``n_items`` items.

    Args:
        n_items: catalog vectors.
        n_queries: queries to search, all told.
        dim: vector width.
        k: results per query.
        params: the parameters (margins, probe sizes, ANN settings).
        vectors: the catalog vectors; ANN kinds are probed on a sample of them (without
            them only exact search is considered).
        queries: some of the query vectors, for the probes' searches (default: item vectors).

    Returns:
        The plan: the kind, the estimates compared, the measured exact rate and the reason.

    Example:
        >>> plan_batch(300, 20, 16).kind
        'exact'
    """
    params = params or IndexParams()
    pairs = n_items * n_queries
    if pairs <= params.rate_probe_items * params.rate_probe_queries or n_items == 0:
        reason = (f"exact: the whole search ({n_queries:,} x {n_items:,} = {pairs:,} pairs) is no bigger "
                  "than measuring the exact rate")
        return _done(IndexPlan("exact", "batch", n_items, n_queries, dim, reason))
    rate = measure_exact_rate(dim, k, params)
    exact = CostEstimate("exact", 0.0, pairs * rate, f"{rate * 1e9:.2f} ns/pair measured")
    if exact.total_s < params.batch_probe_min_exact_s or vectors is None or not params.batch_ann_kinds:
        why = ("no vectors to probe ANN kinds on" if vectors is None or not params.batch_ann_kinds
               else f"under the {params.batch_probe_min_exact_s:g} s worth probing ANN kinds for")
        reason = f"exact: estimated {exact.total_s:.2f} s ({pairs:,} pairs at {rate * 1e9:.2f} ns), {why}"
        return _done(IndexPlan("exact", "batch", n_items, n_queries, dim, reason, (exact,), rate))
    vectors = as_vectors(vectors, "vectors", dim)
    estimates = [exact]
    for kind in params.batch_ann_kinds:
        estimates.append(probe_ann_cost(kind, vectors, n_queries, k, params, rate, queries))
    best_ann = min(estimates[1:], key=lambda e: e.total_s)
    if best_ann.total_s * params.batch_ann_margin < exact.total_s:
        kind = best_ann.kind
        reason = (f"{kind}: estimated {best_ann.total_s:.1f} s (build {best_ann.build_s:.1f} + search "
                  f"{best_ann.search_s:.1f}) x margin {params.batch_ann_margin:g} < exact {exact.total_s:.1f} s")
    else:
        kind = "exact"
        reason = (f"exact: estimated {exact.total_s:.1f} s <= cheapest ANN ({best_ann.kind}) "
                  f"{best_ann.total_s:.1f} s x margin {params.batch_ann_margin:g}")
    return _done(IndexPlan(kind, "batch", n_items, n_queries, dim, reason, tuple(estimates), rate))


def _done(plan: IndexPlan) -> IndexPlan:
    log_event(
        log, "index plan", kind=plan.kind, workload=plan.workload, n_items=plan.n_items,
        n_queries=plan.n_queries, reason=plan.reason,
        estimates={e.kind: round(e.total_s, 2) for e in plan.estimates},
    )
    return plan


def probe_ann_cost(
    kind: str,
    vectors: np.ndarray,
    n_queries: int,
    k: int,
    params: IndexParams,
    exact_pair_s: float,
    queries: np.ndarray | None = None,
) -> CostEstimate:
    """Estimate an ANN kind's one-shot cost from a build and a search on a sample.

    The sample is ``params.batch_probe_items`` random item vectors; up to 256 query
    vectors (or item vectors) are searched. Build and per-query search seconds are scaled
    to the full size by the kind's work count (see the module's docstring); the recall
    check (``recall_sample`` exact and ANN searches) is added to the build.

    Returns:
        The estimate, its ``basis`` naming the sample and the measured sample figures.
    """
    n, dim = vectors.shape
    rng = np.random.default_rng(params.seed)
    s = min(n, params.batch_probe_items)
    sample = vectors if s == n else vectors[np.sort(rng.choice(n, s, replace=False))]
    probe_q = queries if queries is not None and len(queries) else sample
    probe_q = as_vectors(probe_q[: min(256, len(probe_q))], "queries", dim)
    start = time.perf_counter()
    index = build_faiss_index(kind, sample, params)
    build_sample = time.perf_counter() - start
    kk = min(k, s)
    start = time.perf_counter()
    search_faiss(index, probe_q, kk, params)
    per_query_sample = (time.perf_counter() - start) / len(probe_q)
    del index
    build_scale, search_scale = _work_ratios(kind, n, s, dim, k, params)
    build_s = build_sample * build_scale
    per_query = per_query_sample * search_scale
    recall_q = min(params.recall_sample, n_queries)
    check_s = recall_q * (n * exact_pair_s + per_query)
    basis = (f"probe on {s:,} items: build {build_sample:.2f} s, {per_query_sample * 1e3:.3f} ms/query; "
             f"scaled x{build_scale:.1f} (build), x{search_scale:.2f} (search); recall check {check_s:.1f} s")
    return CostEstimate(kind, build_s + check_s, n_queries * per_query, basis)


def _work_ratios(kind: str, n: int, s: int, dim: int, k: int, params: IndexParams) -> tuple[float, float]:
    """(build, per-query search) work at ``n`` items over the same at ``s`` items."""
    if n <= s:
        return 1.0, 1.0
    if kind == "hnsw":
        return (n * math.log(n)) / (s * math.log(s)), math.log(n) / math.log(s)
    ksub = 2**params.pq_nbits

    def build_work(m: int) -> float:
        nlist = params.nlist_for(m)
        train = min(m, nlist * params.ivf_train_per_list)
        return train * nlist + min(train, 256 * ksub) * ksub + m * (nlist + ksub)

    def search_work(m: int) -> float:
        nlist = params.nlist_for(m)
        return nlist + min(params.ivf_nprobe, nlist) * m / nlist + params.refine_k_factor * k

    return build_work(n) / build_work(s), search_work(n) / search_work(s)
