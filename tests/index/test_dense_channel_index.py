"""The dense mining channel on relforge.index: a one-shot batch plan, not a size threshold."""

from __future__ import annotations

import numpy as np

import relforge.index._cost as cost
from relforge.index import IndexParams
from relforge.mine.channels import DenseChannel, VectorIndex
from tests.index.conftest import brute_force


def test_batch_search_ignores_the_served_size_threshold(vectors, queries):
    # exact_max_items=100 would make build() an HNSW index; a one-shot batch stays exact
    served = VectorIndex(exact_max_items=100, hnsw_m=16)
    served.build(vectors)
    batch = VectorIndex(exact_max_items=100, hnsw_m=16)
    batch.prepare_batch(vectors)
    idx, _ = batch.search(queries, 10)
    assert served.kind == "IndexHNSWFlat"
    assert batch.kind == "IndexFlatIP" and batch.plan.workload == "batch" and batch.plan.kind == "exact"
    assert np.array_equal(idx, brute_force(queries, vectors, 10)[0])


def test_channel_switches_to_ann_when_exact_would_cost_more(monkeypatch, vectors, queries):
    monkeypatch.setattr(cost, "measure_exact_rate", lambda *a, **k: 1e-3)
    params = IndexParams(batch_probe_min_exact_s=0.0, batch_probe_items=1000, batch_ann_kinds=("hnsw",))
    channel = DenseChannel(encoder=None, index=VectorIndex(hnsw_m=16, params=params), expected_queries=50_000)
    positions = np.arange(len(vectors)) + 7
    channel.index_vectors(vectors, positions)
    assert channel.describe()["index"] == "IndexFlatIP"  # until the first search decides
    idx, _ = channel.search_vectors(queries, 10)
    assert channel.describe()["index"] == "IndexHNSWFlat"
    truth = brute_force(queries, vectors, 10)[0] + 7
    overlap = np.mean([len(set(a) & set(b)) / 10 for a, b in zip(idx, truth)])
    assert overlap >= 0.9 and idx.min() >= 7
    assert channel.vectors.plan.n_queries == 50_000
