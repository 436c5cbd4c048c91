"""Vector indexes over L2-normalised item vectors (inner product): one module for the dense
mining channel and the retriever's export.

Three kinds, built with faiss: ``exact`` (``IndexFlatIP``, searched in large BLAS blocks),
``hnsw`` (``IndexHNSWFlat``) and ``ivfpq`` (``IndexIVFPQ`` with a refine step). Which one is
chosen depends on the work (:mod:`relforge.index._cost`):

- a **one-shot batch search** (mining: every query once) takes the kind with the least
  estimated build + search time, from a measured exact-search rate and ANN costs probed on a
  sample (:func:`plan_batch`, :func:`build_for_batch`, :func:`batch_search`);
- a **served index** (export: single queries for a long time) is exact up to a size and ANN
  above (:func:`plan_served`, :func:`build_for_serving`).

An ANN index's recall@10 against exact search is measured when it is built, and
:func:`publish` refuses (:class:`~relforge.errors.RecallGateError`) an index under the
minimum. :func:`load_index` checks the files against the manifest.

Example:
    >>> import numpy as np
    >>> from relforge.index import IndexParams, build_for_serving, publish, load_index
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(2_000, 32)).astype(np.float32)
    >>> x /= np.linalg.norm(x, axis=1, keepdims=True)
    >>> idx = build_for_serving(x, [f"i{n}" for n in range(2_000)])
    >>> idx.kind
    'exact'
    >>> rows, scores = idx.search(x[:1], 3)
    >>> idx.ids(rows)[0][0]
    'i0'
"""

from relforge.index._cost import (
    CostEstimate,
    IndexPlan,
    clear_rate_cache,
    measure_exact_rate,
    plan_batch,
    plan_served,
    probe_ann_cost,
)
from relforge.index._item_index import (
    ItemIndex,
    batch_search,
    build_for_batch,
    build_for_serving,
)
from relforge.index._kinds import build_faiss_index, exact_knn, search_faiss
from relforge.index._params import ANN_KINDS, INDEX_KINDS, IndexKind, IndexParams
from relforge.index._recall import RecallReport, recall_at_k
from relforge.index._store import load_index, publish, read_manifest

__all__ = [
    "ANN_KINDS",
    "INDEX_KINDS",
    "CostEstimate",
    "IndexKind",
    "IndexParams",
    "IndexPlan",
    "ItemIndex",
    "RecallReport",
    "batch_search",
    "build_faiss_index",
    "build_for_batch",
    "build_for_serving",
    "clear_rate_cache",
    "exact_knn",
    "load_index",
    "measure_exact_rate",
    "plan_batch",
    "plan_served",
    "probe_ann_cost",
    "publish",
    "read_manifest",
    "recall_at_k",
    "search_faiss",
]
