"""Agreement metrics and the query-level bootstrap."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import confusion_matrix

from relforge.finetune import bootstrap_by_query, grade_metrics, metrics_from_confusion


def test_grade_metrics_by_hand():
    m = grade_metrics(np.array([0, 1, 2, 3]), np.array([0, 1, 2, 2]), 4)
    assert m["accuracy"] == 0.75
    assert m["macro_f1"] == pytest.approx((1 + 1 + 2 / 3 + 0) / 4)
    assert 0.8 < m["qwk"] < 1.0
    perfect = grade_metrics(np.array([0, 3, 1]), np.array([0, 3, 1]), 4)
    assert perfect == {"accuracy": 1.0, "macro_f1": pytest.approx(3 / 4), "qwk": 1.0}


def test_constant_prediction_has_zero_kappa():
    assert grade_metrics(np.array([0, 1, 2]), np.array([2, 2, 2]), 3)["qwk"] == 0.0


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3)), min_size=2, max_size=60))
def test_confusion_formulas_equal_sklearn(pairs):
    y, p = np.array(pairs).T
    cm = confusion_matrix(y, p, labels=range(4))
    fast, ref = metrics_from_confusion(cm), grade_metrics(y, p, 4)
    for key in ref:
        assert fast[key] == pytest.approx(ref[key], abs=1e-9)


def test_bootstrap_ci_brackets_the_estimate_and_resamples_queries():
    rng = np.random.default_rng(0)
    qids = np.repeat([f"q{i}" for i in range(30)], 20)
    truth = rng.integers(0, 4, len(qids))
    pred = np.where(rng.random(len(qids)) < 0.6, truth, rng.integers(0, 4, len(qids)))
    point = grade_metrics(truth, pred, 4)
    ci = bootstrap_by_query(qids, truth, pred, 4, reps=300, seed=1)
    for key, (lo, hi) in ci.items():
        assert lo <= point[key] <= hi and hi - lo > 0.01
    # one query holding every pair: resampling queries changes nothing
    single = bootstrap_by_query(np.zeros(len(qids)), truth, pred, 4, reps=50)
    assert single["accuracy"][0] == pytest.approx(single["accuracy"][1]) == pytest.approx(point["accuracy"])
