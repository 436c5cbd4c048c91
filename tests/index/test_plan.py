"""Choosing the kind: a one-shot batch by its estimated cost, a served index by its size."""

from __future__ import annotations

import logging

import numpy as np
import pytest

import relforge.index._cost as cost
from relforge.index import (
    IndexParams,
    build_for_batch,
    clear_rate_cache,
    measure_exact_rate,
    plan_batch,
    plan_served,
    probe_ann_cost,
)

FAST = IndexParams(rate_probe_items=2048, rate_probe_queries=64, batch_probe_items=1000)


def _no_measuring(*args, **kwargs):
    raise AssertionError("the exact rate must not be measured here")


def test_tiny_work_is_exact_without_measuring(monkeypatch):
    monkeypatch.setattr(cost, "measure_exact_rate", _no_measuring)
    plan = plan_batch(300, 20, 16, params=FAST)
    assert plan.kind == "exact" and plan.exact_pair_s is None and "no bigger than measuring" in plan.reason


def test_exact_rate_is_measured_once_per_setting():
    clear_rate_cache()
    rate = measure_exact_rate(32, 10, FAST)
    assert 1e-12 < rate < 1e-5
    assert measure_exact_rate(32, 10, FAST) == rate  # cached
    clear_rate_cache()


def test_exact_is_chosen_without_probing_when_its_estimate_is_small(monkeypatch, vectors):
    monkeypatch.setattr(cost, "measure_exact_rate", lambda *a, **k: 1e-9)
    monkeypatch.setattr(cost, "probe_ann_cost", _no_measuring)
    plan = plan_batch(len(vectors), 10_000, vectors.shape[1], params=FAST, vectors=vectors)
    # 3,000 x 10,000 pairs at 1 ns: 0.03 s, under the 60 s worth probing for
    assert plan.kind == "exact" and plan.estimates[0].total_s == pytest.approx(0.03)
    assert "worth probing" in plan.reason


def test_ann_wins_only_when_exact_is_estimated_far_costlier(monkeypatch, vectors, queries, caplog):
    params = FAST.with_(batch_probe_min_exact_s=0.0)
    monkeypatch.setattr(cost, "measure_exact_rate", lambda *a, **k: 1e-3)  # a very slow machine
    with caplog.at_level(logging.INFO, logger="relforge.index"):
        plan = plan_batch(len(vectors), 100_000, vectors.shape[1], 10, params, vectors, queries)
    assert plan.kind in ("hnsw", "ivfpq")
    kinds = [e.kind for e in plan.estimates]
    assert kinds == ["exact", "hnsw", "ivfpq"]
    chosen = next(e for e in plan.estimates if e.kind == plan.kind)
    assert chosen.total_s * params.batch_ann_margin < plan.estimates[0].total_s
    assert any("index plan" in r.getMessage() and plan.kind in r.getMessage() for r in caplog.records)

    monkeypatch.setattr(cost, "measure_exact_rate", lambda *a, **k: 1e-12)  # a very fast one
    plan = plan_batch(len(vectors), 100_000, vectors.shape[1], 10, params, vectors, queries)
    assert plan.kind == "exact" and len(plan.estimates) == 3 and "margin" in plan.reason


def test_probe_extrapolates_to_larger_catalogs(vectors):
    params = FAST.with_(batch_probe_items=1000)
    small = probe_ann_cost("hnsw", vectors[:1000], 1000, 10, params, 1e-9)
    large = probe_ann_cost("hnsw", vectors, 1000, 10, params, 1e-9)
    assert "probe on 1,000 items" in large.basis
    assert "x1.0 (build)" in small.basis and "x1.0 (build)" not in large.basis
    ratio_build = float(large.basis.split("scaled x")[1].split(" ")[0])
    assert ratio_build > 3  # 3x the items, n log n
    ivf = probe_ann_cost("ivfpq", vectors, 1000, 10, params.with_(pq_nbits=6), 1e-9)
    assert ivf.kind == "ivfpq" and ivf.build_s > 0 and ivf.search_s > 0


def test_served_plan_is_a_size_rule():
    params = IndexParams(served_exact_max_items=1000, served_ann_kind="ivfpq")
    assert plan_served(1000, 8, params).kind == "exact"
    plan = plan_served(1001, 8, params)
    assert plan.kind == "ivfpq" and plan.workload == "served" and "1,001" in plan.reason


def test_build_for_batch_measures_recall_of_an_ann_choice(monkeypatch, vectors, queries):
    monkeypatch.setattr(cost, "measure_exact_rate", lambda *a, **k: 1e-3)
    params = FAST.with_(batch_probe_min_exact_s=0.0, batch_ann_kinds=("hnsw",), hnsw_m=16)
    index = build_for_batch(vectors, 100_000, k=10, params=params, queries=queries)
    assert index.kind == "hnsw" and index.plan.kind == "hnsw"
    assert index.recall.source == "queries" and index.recall.recall >= 0.9
    np.testing.assert_array_equal(index.item_ids[:3], [0, 1, 2])
