"""Bootstrap intervals over queries and paired comparisons between systems."""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pytest

from relforge.errors import InputError
from relforge.evaluate import bootstrap_mean, compare_systems, summarize


def _per_query(values, ids=None):
    ids = ids or [f"q{i}" for i in range(len(values))]
    return pa.table({"query_id": ids, "ndcg@10": pa.array(values, pa.float64())})


def test_interval_covers_the_mean_and_narrows_with_more_queries():
    rng = np.random.default_rng(0)
    small = summarize(_per_query(rng.uniform(size=30).tolist()))["ndcg@10"]
    large = summarize(_per_query(rng.uniform(size=600).tolist()))["ndcg@10"]
    assert small.low < small.mean < small.high and large.low < large.mean < large.high
    assert (large.high - large.low) < 0.5 * (small.high - small.low)
    assert small.n == 30 and small.confidence == 0.95


def test_nan_values_are_left_out_and_degenerate_data_has_a_point_interval():
    s = summarize(_per_query([0.5, float("nan"), 0.5]))["ndcg@10"]
    assert s.n == 2 and (s.mean, s.low, s.high) == (0.5, 0.5, 0.5)
    assert math.isnan(bootstrap_mean(np.array([0.3]))[1])


def test_a_real_difference_is_significant_and_no_difference_is_not():
    rng = np.random.default_rng(1)
    base = rng.uniform(0.2, 0.8, size=80)
    better = base + 0.05 + rng.normal(0, 0.02, size=80)
    cmp = compare_systems(_per_query(better.tolist()), _per_query(base.tolist()), "ndcg@10", n_resamples=2000)
    assert cmp.n == 80 and cmp.diff == pytest.approx(float(np.mean(better - base)))
    assert cmp.p_value < 0.01 and cmp.low > 0
    noise = base + rng.normal(0, 0.05, size=80)
    null = compare_systems(_per_query(noise.tolist()), _per_query(base.tolist()), "ndcg@10", n_resamples=2000)
    assert null.p_value > 0.05 and null.low < 0 < null.high
    same = compare_systems(_per_query(base.tolist()), _per_query(base.tolist()), "ndcg@10")
    assert same.diff == 0 and same.p_value == 1.0


def test_comparison_pairs_queries_by_id():
    a = _per_query([1.0, 0.0, 0.5], ["q1", "q2", "q3"])
    b = _per_query([0.0, 1.0, float("nan")], ["q2", "q1", "q3"])
    cmp = compare_systems(a, b, "ndcg@10", n_resamples=200)
    assert cmp.n == 2 and cmp.diff == 0.0  # q1: 1 vs 1, q2: 0 vs 0; q3 has no value in b
    with pytest.raises(InputError, match="no query has a value in both"):
        compare_systems(a, _per_query([0.2], ["q9"]), "ndcg@10")
    with pytest.raises(InputError, match='field "recall@100": no such column'):
        compare_systems(a, b, "recall@100")
