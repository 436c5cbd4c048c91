"""Paired comparison: bootstrap over queries of accuracy / NLL differences, exact McNemar, best baseline."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.special import softmax

from relforge.calibrate import (
    calibrator_factory,
    compare_to_best_baseline,
    crossfit_calibrate,
    mcnemar_exact,
    negative_log_likelihood,
    paired_bootstrap,
)


def _pairs(n_queries=40, per_query=25, seed=0):
    rng = np.random.default_rng(seed)
    groups = np.repeat(np.arange(n_queries), per_query)
    y = rng.integers(0, 4, n_queries * per_query)
    return rng, groups, y


def _probs_with_accuracy(rng, y, accuracy, confidence=0.7):
    n = len(y)
    right = rng.random(n) < accuracy
    top = np.where(right, y, (y + rng.integers(1, 4, n)) % 4)
    p = np.full((n, 4), (1 - confidence) / 3)
    p[np.arange(n), top] = confidence
    return p


def test_identical_methods_differ_by_nothing():
    rng, groups, y = _pairs()
    p = _probs_with_accuracy(rng, y, 0.6)
    cmp = paired_bootstrap(groups, y, p, p.copy(), reps=300)
    assert cmp.accuracy.difference == 0 and cmp.nll.difference == 0
    assert cmp.accuracy.ci == (0.0, 0.0) and cmp.accuracy.p_value == 1.0
    assert cmp.mcnemar.candidate_only == cmp.mcnemar.baseline_only == 0 and cmp.mcnemar.p_value == 1.0


def test_a_clearly_better_candidate_is_significant_with_the_right_signs():
    rng, groups, y = _pairs(seed=1)
    good = _probs_with_accuracy(rng, y, 0.75)
    bad = good.copy()
    flip = rng.random(len(y)) < 0.2  # the baseline gets 20% of pairs wrong that the candidate may have right
    bad[flip] = np.roll(bad[flip], 1, axis=1)
    cmp = paired_bootstrap(groups, y, good, bad, "per-class-isotonic", "temperature", reps=1000)
    assert cmp.accuracy.difference > 0.05 and cmp.accuracy.ci[0] > 0
    assert cmp.accuracy.p_value < 0.01
    assert cmp.nll.difference < 0 and cmp.nll.ci[1] < 0  # lower NLL: better
    assert cmp.nll.difference == pytest.approx(negative_log_likelihood(good, y) - negative_log_likelihood(bad, y))
    assert cmp.mcnemar.candidate_only > cmp.mcnemar.baseline_only and cmp.mcnemar.p_value < 0.01
    assert (cmp.n_pairs, cmp.n_queries) == (1000, 40)
    # swapping the two flips the signs, not the evidence
    swapped = paired_bootstrap(groups, y, bad, good, reps=1000)
    assert swapped.accuracy.difference == pytest.approx(-cmp.accuracy.difference)
    assert swapped.mcnemar.p_value == pytest.approx(cmp.mcnemar.p_value)


def test_a_difference_carried_by_few_queries_is_wider_over_queries_than_mcnemar_thinks():
    rng, groups, y = _pairs(n_queries=40, per_query=25, seed=2)
    base = _probs_with_accuracy(rng, y, 0.6)
    cand = base.copy()
    # the candidate fixes every pair of 3 queries, and nothing elsewhere
    few = np.isin(groups, [0, 1, 2])
    cand[few] = 0.1 / 3
    cand[few, y[few]] = 0.9
    cmp = paired_bootstrap(groups, y, cand, base, reps=1000)
    assert cmp.mcnemar.p_value < 0.001  # pairs treated as independent: overwhelming
    assert cmp.accuracy.p_value > cmp.mcnemar.p_value * 10  # queries resampled: much less certain
    assert cmp.accuracy.ci[1] - cmp.accuracy.ci[0] > 0.02


def test_mcnemar_by_hand():
    res = mcnemar_exact(np.array([1, 1, 1, 1, 1, 0, 1]), np.array([0, 0, 0, 0, 0, 0, 1]))
    assert (res.candidate_only, res.baseline_only) == (5, 0)
    assert res.p_value == pytest.approx(2 * 0.5**5)


def test_the_best_baseline_is_picked_by_nll_and_isotonic_is_compared_with_it():
    rng = np.random.default_rng(4)
    n_q, per = 60, 25
    groups = np.repeat(np.arange(n_q), per)
    z = rng.normal(0, 1.5, (n_q * per, 4))
    y = (rng.random(len(z))[:, None] > np.cumsum(softmax(z, axis=1), axis=1)).sum(axis=1).clip(0, 3)
    raw = softmax(2.5 * z, axis=1)  # over-confident
    oof = {
        method: crossfit_calibrate(raw, y, groups, calibrator_factory(method), folds=5)
        for method in ("none", "temperature", "top-label-isotonic", "per-class-isotonic")
    }
    cmp = compare_to_best_baseline(groups, y, oof, reps=500)
    best = min((m for m in oof if m != "per-class-isotonic"), key=lambda m: negative_log_likelihood(oof[m], y))
    assert cmp.baseline == best != "none"
    assert cmp.candidate == "per-class-isotonic"
    assert cmp.as_dict()["accuracy"]["ci"][0] <= cmp.accuracy.difference <= cmp.as_dict()["accuracy"]["ci"][1]
    by_accuracy = compare_to_best_baseline(groups, y, oof, select_by="accuracy", reps=100)
    assert by_accuracy.baseline in oof
    with pytest.raises(ValueError, match="candidate"):
        compare_to_best_baseline(groups, y, {"none": raw})
    with pytest.raises(ValueError, match="baseline"):
        compare_to_best_baseline(groups, y, {"per-class-isotonic": raw})
