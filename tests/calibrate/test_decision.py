"""The decision rule: most-probable is the argmax; expected-grade minimises the expected squared grade
error, keeps the order a weak tier has, and routing, metrics and the guarantee use the decided grade's
probability as its confidence."""

from __future__ import annotations

import numpy as np
import pytest

from relforge.calibrate import (
    DECISIONS,
    calibration_metrics,
    decide,
    decided_grade,
    expected_calibration_error,
    guaranteed_cascade,
    route,
    search_thresholds,
)
from relforge.config import load_config


def _random_probs(rng, n, k):
    p = rng.dirichlet(np.full(k, 0.7), size=n)
    return p / p.sum(axis=1, keepdims=True)


def test_the_rules_on_a_few_rows():
    p = np.array([[0.1, 0.0, 0.4, 0.5], [0.45, 0.0, 0.0, 0.55], [0.25, 0.25, 0.25, 0.25]])
    grade, conf = decide(p, "most-probable")
    assert grade.tolist() == [3, 3, 0] and conf.tolist() == [0.5, 0.55, 0.25]
    grade, conf = decide(p, "expected-grade")
    # expected grades 2.3, 1.65 and 1.5 (a tie between two grades goes to the lower one)
    assert grade.tolist() == [2, 2, 1] and conf.tolist() == [0.4, 0.0, 0.25]
    with pytest.raises(ValueError, match="unknown decision rule 'median'"):
        decided_grade(p, "median")
    assert set(DECISIONS) == {"most-probable", "expected-grade"}


def test_expected_grade_minimises_the_expected_squared_error_and_most_probable_maximises_accuracy():
    rng = np.random.default_rng(3)
    for k in (2, 3, 4, 5):
        p = _random_probs(rng, 500, k)
        grades = np.arange(k)
        loss = p @ (grades[None, :] - grades[:, None]) ** 2  # (n, K): expected squared error of each grade
        chosen = decided_grade(p, "expected-grade")
        assert np.allclose(loss[np.arange(len(p)), chosen], loss.min(axis=1))
        assert (decided_grade(p, "most-probable") == p.argmax(axis=1)).all()


def _weak_ordered_tier(rng, n=3000):
    """A tier whose calibrated probabilities always make the majority grade (3) most probable, but whose
    weight on the low grades follows the human grade: the argmax loses the order, the expected grade keeps it."""
    y = rng.choice(4, size=n, p=[0.15, 0.05, 0.25, 0.55])
    low = np.clip(0.35 - 0.1 * y + rng.normal(0, 0.05, n), 0.0, 0.45)
    p = np.column_stack([low, np.full(n, 0.02), np.full(n, 0.02), 1.0 - low - 0.04])
    return p, y


def test_expected_grade_keeps_the_order_a_weak_tier_has_where_the_argmax_gives_the_majority_grade():
    p, y = _weak_ordered_tier(np.random.default_rng(5))
    argmax = calibration_metrics(p, y, decision="most-probable")
    expected = calibration_metrics(p, y, decision="expected-grade")
    assert (decided_grade(p, "most-probable") == 3).all()
    assert argmax["qwk"] == pytest.approx(0.0)
    assert expected["qwk"] > 0.2 and len(np.unique(decided_grade(p, "expected-grade"))) > 1


def test_routing_accepts_by_the_probability_of_the_decided_grade():
    # tier 0: argmax 3 with 0.55, but the expected grade (1.65 -> 2) has probability 0
    p0 = np.array([[0.45, 0.0, 0.0, 0.55], [0.0, 0.0, 0.1, 0.9]])
    p1 = np.array([[0.9, 0.1, 0.0, 0.0], [0.9, 0.1, 0.0, 0.0]])
    most = route([p0, p1], [1.0, 10.0], [0.5], "most-probable")
    assert most.tier.tolist() == [0, 0] and most.grade.tolist() == [3, 3]
    exp = route([p0, p1], [1.0, 10.0], [0.5], "expected-grade")
    assert exp.tier.tolist() == [1, 0] and exp.grade.tolist() == [0, 3]
    assert exp.confidence.tolist() == [0.9, 0.9] and exp.cost.tolist() == [11.0, 1.0]


def test_thresholds_ece_and_guarantee_follow_the_rule():
    rng = np.random.default_rng(8)
    p, y = _weak_ordered_tier(rng, 1500)
    top = _random_probs(rng, 1500, 4)
    top[np.arange(1500), y] += 2.0  # a strong top tier
    top /= top.sum(axis=1, keepdims=True)
    costs = [np.full(1500, 1.0), np.full(1500, 20.0)]
    for rule in DECISIONS:
        choice = search_thresholds([p, top], costs, y, target=0.8, decision=rule)
        r = route([p, top], costs, choice.thresholds, rule)
        assert choice.point.accuracy == pytest.approx(float(np.mean(r.grade == y)))
        grade, conf = decide(p, rule)
        hit = grade == y
        assert expected_calibration_error(p, y, n_bins=1, decision=rule) == pytest.approx(abs(conf.mean() - hit.mean()))
        g = guaranteed_cascade([p, top], y, target_agreement=0.8, delta=0.1, decision=rule)
        assert g.tiers[-1].guaranteed


def test_the_configured_rule_is_validated():
    assert load_config(None, []).calibrate.decision == "most-probable"
    assert load_config(None, ["calibrate.decision=expected-grade"]).calibrate.decision == "expected-grade"
    with pytest.raises(Exception, match="decision"):
        load_config(None, ["calibrate.decision=median"])
