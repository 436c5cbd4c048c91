"""Cascade routing: per-pair routing and costs, the vectorised grid, threshold search, the frontier."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from relforge.calibrate import (
    ACCEPT_ALL,
    ACCEPT_NONE,
    cost_accuracy_frontier,
    route,
    search_thresholds,
    simulate_cascade,
    single_tier_points,
    threshold_grid,
)
from relforge.calibrate._routing import _evaluate_grid
from relforge.finetune import grade_metrics
from tests.calibrate.conftest import synthetic_cascade


def test_route_by_hand_sums_the_cost_of_every_tier_visited():
    p0 = np.array([[0.9, 0.1], [0.6, 0.4], [0.55, 0.45]])
    p1 = np.array([[0.2, 0.8], [0.1, 0.9], [0.7, 0.3]])
    p2 = np.array([[0.5, 0.5], [0.5, 0.5], [0.0, 1.0]])
    r = route([p0, p1, p2], [1.0, 10.0, np.array([100.0, 100.0, 50.0])], [0.8, 0.75])
    assert r.tier.tolist() == [0, 1, 2]
    assert r.grade.tolist() == [0, 1, 1]
    assert r.confidence.tolist() == [0.9, 0.9, 1.0]
    assert r.cost.tolist() == [1.0, 11.0, 61.0]
    # accept-none sends every pair to the last tier, which accepts all; accept-all stops at tier 0
    assert route([p0, p1, p2], [1, 10, 100], [ACCEPT_NONE, ACCEPT_NONE]).tier.tolist() == [2, 2, 2]
    assert route([p0, p1, p2], [1, 10, 100], [ACCEPT_ALL, ACCEPT_NONE]).cost.tolist() == [1, 1, 1]


def test_simulate_reports_agreement_cost_relative_cost_and_shares(cascade):
    thr = [0.7, 0.6]
    point = simulate_cascade(cascade.probs, cascade.costs, cascade.y, thr)
    r = route(cascade.probs, cascade.costs, thr)
    m = grade_metrics(cascade.y, r.grade, 4)
    assert (point.accuracy, point.qwk, point.macro_f1) == (m["accuracy"], m["qwk"], m["macro_f1"])
    assert point.mean_cost == pytest.approx(r.cost.mean())
    assert point.relative_cost == pytest.approx(r.cost.mean() / cascade.costs[-1].mean())
    assert sum(point.shares) == pytest.approx(1.0)
    assert point.shares == tuple(np.bincount(r.tier, minlength=3) / len(r.tier))
    assert point.thresholds == (0.7, 0.6)
    # everything to the top tier through the cascade costs more than the top tier alone
    through = simulate_cascade(cascade.probs, cascade.costs, cascade.y, [ACCEPT_NONE, ACCEPT_NONE])
    assert through.relative_cost == pytest.approx(sum(c.mean() for c in cascade.costs) / cascade.costs[-1].mean())
    assert through.as_dict()["thresholds"] == [None, None]


def test_threshold_grid_holds_observed_confidences_plus_accept_all_and_none():
    conf = np.random.default_rng(0).uniform(0.3, 1.0, 200)
    grid = threshold_grid(conf, 11)
    assert grid[0] == ACCEPT_ALL and grid[-1] == ACCEPT_NONE
    assert np.all(np.diff(grid) > 0)
    assert set(grid[1:-1]) <= set(conf)
    assert len(grid) == 13


@pytest.mark.parametrize("n_tiers", [2, 3, 4])
def test_vectorised_grid_equals_simulating_every_threshold_vector(n_tiers):
    c = synthetic_cascade(n_queries=10, pairs_per_query=15, signals=(1.0, 1.5, 2.0, 3.0)[:n_tiers],
                          base_costs=(1.0, 3.0, 9.0, 27.0)[:n_tiers], seed=n_tiers)
    grid = _evaluate_grid(c.probs, c.costs, c.y, n_grid=5)
    for idx in itertools.product(*(range(len(g)) for g in grid.thresholds)):
        thr = [grid.thresholds[t][i] for t, i in enumerate(idx)]
        r = route(c.probs, c.costs, thr)
        assert grid.correct[idx] == np.sum(r.grade == c.y)
        assert grid.cost[idx] == pytest.approx(r.cost.sum(), rel=1e-12)
        np.testing.assert_array_equal(grid.decided[(slice(None),) + idx], np.bincount(r.tier, minlength=n_tiers))


def _all_points(c, n_grid):
    grid = _evaluate_grid(c.probs, c.costs, c.y, n_grid)
    return [
        simulate_cascade(c.probs, c.costs, c.y, [grid.thresholds[t][i] for t, i in enumerate(idx)])
        for idx in itertools.product(*(range(len(g)) for g in grid.thresholds))
    ]


@pytest.fixture(scope="module")
def small():
    c = synthetic_cascade(n_queries=12, pairs_per_query=15, seed=11)
    return c, _all_points(c, 8)


def test_target_accuracy_search_finds_the_cheapest_point_reaching_the_target(small):
    c, points = small
    target = 0.62
    choice = search_thresholds(c.probs, c.costs, c.y, "target-accuracy", target=target, n_grid=8)
    assert choice.feasible and choice.point.accuracy >= target
    reaching = [p for p in points if p.accuracy >= target]
    assert choice.point.mean_cost == pytest.approx(min(p.mean_cost for p in reaching))
    # cheaper than the top tier alone, and more accurate than the cheapest tier alone
    alone = single_tier_points(c.probs, c.costs, c.y)
    assert choice.point.mean_cost < alone[-1].mean_cost
    assert choice.point.accuracy > alone[0].accuracy


def test_budget_search_finds_the_most_accurate_point_within_the_budget(small):
    c, points = small
    budget = 6.0
    choice = search_thresholds(c.probs, c.costs, c.y, "budget", budget=budget, n_grid=8)
    assert choice.feasible and choice.point.mean_cost <= budget
    assert choice.point.accuracy == pytest.approx(max(p.accuracy for p in points if p.mean_cost <= budget))
    assert choice.budget == budget and choice.target is None


def test_an_unreachable_target_or_budget_is_reported_not_hidden(small):
    c, points = small
    high = search_thresholds(c.probs, c.costs, c.y, "target-accuracy", target=0.99, n_grid=8)
    assert not high.feasible
    assert high.point.accuracy == pytest.approx(max(p.accuracy for p in points))
    low = search_thresholds(c.probs, c.costs, c.y, "budget", budget=0.1, n_grid=8)
    assert not low.feasible
    assert low.point.mean_cost == pytest.approx(min(p.mean_cost for p in points))


def test_frontier_is_monotone_and_dominates_every_grid_point(small):
    c, points = small
    f = cost_accuracy_frontier(c.probs, c.costs, c.y, n_grid=8)
    assert np.all(np.diff(f.mean_cost) >= 0) and np.all(np.diff(f.accuracy) > 0)
    for p in points:
        assert np.any((f.mean_cost <= p.mean_cost + 1e-12) & (f.accuracy >= p.accuracy - 1e-12))
    # every frontier point is a real threshold vector with that cost and accuracy
    for cost, acc, thr, shares in zip(f.mean_cost, f.accuracy, f.thresholds, f.shares):
        point = simulate_cascade(c.probs, c.costs, c.y, thr)
        assert (point.mean_cost, point.accuracy) == (pytest.approx(cost), pytest.approx(acc))
        np.testing.assert_allclose(point.shares, shares)
    d = f.as_dict()
    assert all(t is None or math.isfinite(t) for row in d["thresholds"] for t in row)


def test_four_tiers_with_a_fine_grid_search_in_one_pass():
    c = synthetic_cascade(n_queries=50, pairs_per_query=30, signals=(1.0, 1.5, 2.2, 3.0),
                          base_costs=(1.0, 3.0, 9.0, 27.0), seed=5)
    choice = search_thresholds(c.probs, c.costs, c.y, "target-accuracy", target=0.6, n_grid=50)
    assert choice.feasible and len(choice.thresholds) == 3
    assert choice.point.mean_cost < c.costs[-1].mean()


def test_bad_arguments_are_refused(cascade):
    with pytest.raises(ValueError, match="2 thresholds"):
        route(cascade.probs, cascade.costs, [0.5])
    with pytest.raises(ValueError, match="target"):
        search_thresholds(cascade.probs, cascade.costs, cascade.y, "target-accuracy")
    with pytest.raises(ValueError, match="budget"):
        search_thresholds(cascade.probs, cascade.costs, cascade.y, "budget")
    with pytest.raises(ValueError, match="unknown routing mode"):
        search_thresholds(cascade.probs, cascade.costs, cascade.y, "cheapest", target=0.5)
    with pytest.raises(ValueError, match="same pairs"):
        route([cascade.probs[0], cascade.probs[1][:10]], [1, 1], [0.5])


def test_a_single_tier_has_no_thresholds_and_decides_everything(cascade):
    choice = search_thresholds(cascade.probs[:1], cascade.costs[:1], cascade.y, "budget", budget=10.0)
    assert choice.thresholds == () and choice.point.shares == (1.0,)
    assert choice.point.relative_cost == pytest.approx(1.0)
    assert choice.point.accuracy == pytest.approx(np.mean(cascade.probs[0].argmax(axis=1) == cascade.y))
