"""Recall measured at build time, against exact search, on given or sampled queries."""

from __future__ import annotations

import numpy as np
import pytest

from relforge.index import IndexParams, ItemIndex, build_for_serving, recall_at_k
from tests.index.conftest import brute_force


def test_recall_at_k_counts_overlap_and_ignores_padding():
    assert recall_at_k(np.array([[1, 2, 3]]), np.array([[3, 2, 1]]), 3) == 1.0
    assert recall_at_k(np.array([[1, -1, -1]]), np.array([[1, 2, -1]]), 3) == 0.5
    assert recall_at_k(np.array([[5, 6], [1, 2]]), np.array([[1, 2], [1, 2]]), 2) == 0.5


def test_measured_recall_matches_a_direct_count_on_given_queries(vectors, queries):
    params = IndexParams(ivf_nprobe=1, refine="none", pq_m=4, recall_sample=200)
    index = ItemIndex.build(vectors, kind="ivfpq", params=params)
    report = index.measure_recall(vectors, queries)
    truth, _ = brute_force(queries, vectors, 10)
    direct = recall_at_k(index.search(queries, 10)[0], truth, 10)
    assert report.source == "queries" and report.sample == 200 and report.k == 10
    assert report.recall == pytest.approx(direct)
    assert report.recall < 0.9  # a deliberately poor index is seen as poor
    assert index.recall is report


def test_recall_on_item_vectors_leaves_each_query_out(vectors):
    """An index that always finds the query itself must not get credit for it."""
    params = IndexParams(ivf_nprobe=1, refine="none", pq_m=4, recall_sample=300)
    index = ItemIndex.build(vectors, kind="ivfpq", params=params)
    report = index.measure_recall(vectors)
    pick = np.sort(np.random.default_rng(params.seed).choice(len(vectors), 300, replace=False))
    truth, _ = brute_force(vectors[pick], vectors, 11)
    found, _ = index.search(vectors[pick], 11)
    with_self = recall_at_k(found[:, :10], truth[:, :10], 10)
    assert report.source == "items" and report.sample == 300
    assert report.recall < with_self  # the self match inflates the naive figure


def test_build_for_serving_measures_recall(vectors, queries):
    index = build_for_serving(vectors, params=IndexParams(served_exact_max_items=1000, hnsw_m=16), queries=queries)
    assert index.kind == "hnsw" and index.plan.workload == "served"
    assert index.recall.sample == len(queries) and index.recall.recall >= 0.9
    small = build_for_serving(vectors[:500], params=IndexParams(served_exact_max_items=1000))
    assert small.kind == "exact" and small.recall.recall == 1.0
