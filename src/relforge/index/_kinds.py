"""Building and searching the three index kinds with faiss (inner product, normalised vectors)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import faiss
import numpy as np

from relforge.errors import ConfigError
from relforge.index._params import IndexParams


def as_vectors(vectors: np.ndarray, what: str = "vectors", dim: int | None = None) -> np.ndarray:
    """``vectors`` as a C-contiguous ``(n, d)`` float32 array.

    Raises:
        ConfigError: when the array is not two-dimensional or its width is not ``dim``.
    """
    array = np.ascontiguousarray(vectors, dtype=np.float32)
    if array.ndim != 2:
        raise ConfigError(f"{what}: expected a 2-d array (n, dim), got shape {array.shape}")
    if dim is not None and array.shape[1] != dim:
        raise ConfigError(f"{what}: dimension {array.shape[1]} does not match the index's {dim}")
    return array


@contextmanager
def faiss_threads(params: IndexParams) -> Iterator[None]:
    """faiss's OpenMP threads set to ``params.threads`` (when set), restored after."""
    if params.threads is None:
        yield
        return
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(params.threads)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


@contextmanager
def blas_blocks(params: IndexParams, dim: int) -> Iterator[None]:
    """faiss's exact search with large catalog blocks and its BLAS path from
    ``params.blas_min_queries`` queries on; the process-wide settings are restored after.

    faiss 1.15 takes the BLAS path only when ``n_queries * dim >= 128,000``; below, its
    other path is 5-15x slower per pair. That also slows k-means on few points in few
    dimensions: training a PQ (8-dim sub-vectors) on fewer than 16,000 points took 28 s
    against 2.6 s on 16,384 (measured), which this setting removes.
    """
    before = (
        faiss.cvar.distance_compute_blas_database_bs,
        faiss.cvar.distance_compute_blas_threshold,
    )
    faiss.cvar.distance_compute_blas_database_bs = max(before[0], params.blas_database_block)
    faiss.cvar.distance_compute_blas_threshold = min(before[1], params.blas_min_queries * dim)
    try:
        yield
    finally:
        faiss.cvar.distance_compute_blas_database_bs, faiss.cvar.distance_compute_blas_threshold = before


def exact_knn(queries: np.ndarray, vectors: np.ndarray, k: int, params: IndexParams) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-``k`` inner products of ``queries`` against ``vectors`` without copying
    ``vectors`` into an index (``faiss.knn`` in large BLAS blocks).

    Returns:
        ``(scores, rows)`` as faiss returns them (``rows`` is ``-1`` past the catalog's end).
    """
    queries, vectors = as_vectors(queries, "queries"), as_vectors(vectors)
    with faiss_threads(params), blas_blocks(params, vectors.shape[1]):
        return faiss.knn(queries, vectors, k, metric=faiss.METRIC_INNER_PRODUCT)


def stored_vectors(index: faiss.Index) -> np.ndarray:
    """A read-only ``(n, d)`` view of the vectors an ``IndexFlat`` holds (no copy)."""
    flat = faiss.downcast_index(index)
    if not isinstance(flat, faiss.IndexFlat):
        raise TypeError(f"{type(flat).__name__} does not store plain vectors")
    view = faiss.rev_swig_ptr(flat.get_xb(), flat.ntotal * flat.d).reshape(flat.ntotal, flat.d)
    view.flags.writeable = False
    return view


def kind_of(index: faiss.Index) -> str:
    """The relforge kind (``exact``, ``hnsw``, ``ivfpq``) of a faiss index, or its class
    name when it is none of them."""
    index = faiss.downcast_index(index)
    if isinstance(index, (faiss.IndexRefine, faiss.IndexRefineFlat)):
        base = faiss.downcast_index(index.base_index)
        return "ivfpq" if isinstance(base, faiss.IndexIVFPQ) else type(index).__name__
    if isinstance(index, faiss.IndexIVFPQ):
        return "ivfpq"
    if isinstance(index, faiss.IndexHNSWFlat):
        return "hnsw"
    if isinstance(index, faiss.IndexFlat):
        return "exact"
    return type(index).__name__


def build_faiss_index(kind: str, vectors: np.ndarray, params: IndexParams) -> faiss.Index:
    """A trained faiss index of ``kind`` holding ``vectors`` (row ``i`` is id ``i``).

    Args:
        kind: ``exact`` (``IndexFlatIP``), ``hnsw`` (``IndexHNSWFlat``, inner product) or
            ``ivfpq`` (``IndexIVFPQ`` over an ``IndexFlatIP`` quantizer, wrapped in
            ``IndexRefineFlat`` / ``IndexRefine`` with an 8-bit scalar quantizer as
            ``params.refine`` says).
        vectors: ``(n, d)`` float32, L2-normalised.
        params: the build parameters.

    Returns:
        The faiss index; ``ntotal == n``.

    Example:
        >>> x = np.eye(4, dtype=np.float32)
        >>> build_faiss_index("exact", x, IndexParams()).ntotal
        4
    """
    vectors = as_vectors(vectors)
    n, d = vectors.shape
    if kind == "exact":
        index = faiss.IndexFlatIP(d)
    elif kind == "hnsw":
        index = faiss.IndexHNSWFlat(d, params.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = params.hnsw_ef_construction
    elif kind != "ivfpq":
        raise ConfigError(f"unknown index kind {kind!r} (known: exact, hnsw, ivfpq)")
    with faiss_threads(params), blas_blocks(params, d):
        if kind == "ivfpq":
            index = _ivfpq(vectors, params)
        if n:
            index.add(vectors)
    return index


def _ivfpq(vectors: np.ndarray, params: IndexParams) -> faiss.Index:
    n, d = vectors.shape
    nlist, m = params.nlist_for(n), params.pq_m_for(d)
    quantizer = faiss.IndexFlatIP(d)
    ivf = faiss.IndexIVFPQ(quantizer, d, nlist, m, params.pq_nbits, faiss.METRIC_INNER_PRODUCT)
    ivf.cp.seed = params.seed
    if params.refine == "flat":
        index: faiss.Index = faiss.IndexRefineFlat(ivf)
    elif params.refine == "sq8":
        sq = faiss.IndexScalarQuantizer(d, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT)
        index = faiss.IndexRefine(ivf, sq)
    else:
        index = ivf
    train_n = min(n, nlist * params.ivf_train_per_list)
    rng = np.random.default_rng(params.seed)
    sample = vectors if train_n >= n else vectors[np.sort(rng.choice(n, train_n, replace=False))]
    index.train(np.ascontiguousarray(sample))
    return index


def search_faiss(index: faiss.Index, queries: np.ndarray, k: int, params: IndexParams) -> tuple[np.ndarray, np.ndarray]:
    """Top ``k`` of ``queries`` in ``index`` with ``params``' search settings.

    Exact indexes search in large BLAS blocks (see :func:`blas_blocks`); HNSW with
    ``efSearch = max(hnsw_ef_search, k)``; IVF-PQ with ``nprobe`` and the refine factor.

    Returns:
        ``(scores, rows)``, faiss's layout: ``float32`` and ``int64`` of shape ``(nq, k)``.
    """
    queries = as_vectors(queries, "queries", index.d)
    index = faiss.downcast_index(index)
    with faiss_threads(params):
        if isinstance(index, faiss.IndexHNSW):
            index.hnsw.efSearch = max(params.hnsw_ef_search, k)
            return index.search(queries, k)
        if isinstance(index, (faiss.IndexRefine, faiss.IndexRefineFlat)):
            index.k_factor = float(params.refine_k_factor)
            base = faiss.extract_index_ivf(index.base_index)
            base.nprobe = min(params.ivf_nprobe, base.nlist)
            return index.search(queries, k)
        if isinstance(index, faiss.IndexIVF):
            index.nprobe = min(params.ivf_nprobe, index.nlist)
            return index.search(queries, k)
        with blas_blocks(params, index.d):
            return index.search(queries, k)
