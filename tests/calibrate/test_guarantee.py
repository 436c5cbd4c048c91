"""Guaranteed mode: fixed-sequence testing keeps the risk of accepted pairs under alpha with probability 1 - delta."""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.stats import binom

from relforge.calibrate import (
    ABSTAIN,
    binomial_p_value,
    candidate_thresholds,
    fixed_sequence_threshold,
    guaranteed_cascade,
    guaranteed_routing,
    min_accepted,
    start_accepted,
)


def _draw(rng, n):
    """Confidence ``1 - 0.75 U^2`` (U uniform), right with probability = confidence.

    The risk of the pairs above threshold t is (1 - t) / 3: alpha = 0.1 is met from t = 0.7,
    which accepts 63% of pairs.
    """
    conf = 1.0 - 0.75 * rng.random(n) ** 2
    return conf, rng.random(n) < conf


def test_p_value_and_the_smallest_useful_acceptance_by_hand():
    assert binomial_p_value(3, 50, 0.1) == pytest.approx(binom.cdf(3, 50, 0.1))
    assert min_accepted(0.1, 0.1) == 22 and 0.9**22 <= 0.1 < 0.9**21
    assert min_accepted(0.2, 0.05) == 14


def test_candidates_run_strict_to_lenient_and_start_where_a_rejection_is_possible():
    conf = np.random.default_rng(0).uniform(0.3, 1.0, 300)
    cands = candidate_thresholds(conf, alpha=0.1, delta=0.1, n_candidates=20)
    assert np.all(np.diff(cands) < 0)
    assert cands[-1] == conf.min()
    # the default start: the fewest pairs with which floor(alpha / 2 * m) disagreements reject
    assert np.sum(conf >= cands[0]) == start_accepted(0.1, 0.1, 300) == 38
    assert binom.cdf(1, 38, 0.1) <= 0.1 < binom.cdf(1, 37, 0.1)
    # plan_risk 0: from the fewest pairs that can reject at all; below that, no candidate
    strict = candidate_thresholds(conf, alpha=0.1, delta=0.1, n_candidates=20, plan_risk=0.0)
    assert np.sum(conf >= strict[0]) == 22
    assert candidate_thresholds(conf[:21], alpha=0.1, delta=0.1).size == 0
    assert start_accepted(0.1, 0.1, 30) == 22  # too few pairs for the plan: the lowest possible start


def test_realised_risk_exceeds_alpha_in_at_most_about_delta_of_calib_draws():
    alpha, delta, draws, n_calib = 0.1, 0.1, 400, 500
    rng = np.random.default_rng(2024)
    fresh_conf, fresh_ok = _draw(rng, 400_000)
    order = np.argsort(-fresh_conf)
    sorted_conf = fresh_conf[order]
    errors_above = np.cumsum(~fresh_ok[order])
    violations = chosen = 0
    coverage = []
    for _ in range(draws):
        res = fixed_sequence_threshold(*_draw(rng, n_calib), alpha=alpha, delta=delta, n_candidates=200)
        if res.threshold is None:
            continue
        chosen += 1
        coverage.append(res.coverage)
        accepted = np.searchsorted(-sorted_conf, -res.threshold, side="right")
        violations += errors_above[accepted - 1] / accepted > alpha
    assert chosen > 0.9 * draws  # the test has power: almost every draw certifies some threshold ...
    assert np.mean(coverage) > 0.4  # ... accepting most of the 63% an oracle would
    assert violations / draws <= delta + 0.03


def test_realised_risk_would_exceed_alpha_often_without_the_test():
    # the naive rule (most lenient threshold whose calib risk is <= alpha) fails about half the draws
    alpha, rng = 0.1, np.random.default_rng(7)
    over = 0
    for _ in range(200):
        conf, ok = _draw(rng, 400)
        order = np.argsort(-conf)
        risk = np.cumsum(~ok[order]) / np.arange(1, 401)
        last = np.flatnonzero(risk <= alpha)[-1]
        threshold = conf[order][last]
        over += (1 - threshold) / 3 > alpha  # the true risk above the threshold
    assert over / 200 > 0.3


def test_nothing_meets_the_guarantee_when_the_tier_is_a_coin_flip():
    rng = np.random.default_rng(3)
    conf = rng.uniform(0.5, 1.0, 2000)
    ok = rng.random(2000) < 0.5
    res = fixed_sequence_threshold(conf, ok, alpha=0.1, delta=0.1)
    assert res.threshold is None and not res.guaranteed
    assert res.coverage == 0.0 and res.n_accepted == 0 and np.isnan(res.agreement)
    assert res.n_tested == 1  # the strictest candidate already fails: the sequence stops
    json.dumps(res.as_dict(), allow_nan=False)


def _cascade_probs(rng, n, quality):
    """Two-grade probabilities whose confidence c is right with probability (1 - quality) * 0.5 + quality * c."""
    conf = rng.uniform(0.5, 1.0, n)
    y = rng.integers(0, 2, n)
    right = rng.random(n) < (1 - quality) * 0.5 + quality * conf
    top = np.where(right, y, 1 - y)
    probs = np.zeros((n, 2))
    probs[np.arange(n), top] = conf
    probs[np.arange(n), 1 - top] = 1 - conf
    return probs, y


def test_each_tier_is_tested_on_the_pairs_that_reach_it():
    rng = np.random.default_rng(5)
    p0, y = _cascade_probs(rng, 3000, quality=1.0)
    p1 = _cascade_probs(np.random.default_rng(6), 3000, quality=1.0)[0]
    p1[y != np.argmax(p1, axis=1)] = p1[y != np.argmax(p1, axis=1)][:, ::-1]  # tier 2 agrees more
    gc = guaranteed_cascade([p0, p1], y, target_agreement=0.85, delta=0.1)
    t0, t1 = gc.tiers
    assert t0.guaranteed and t0.n_reached == 3000
    assert t1.n_reached == 3000 - t0.n_accepted
    assert t0.agreement >= 0.85 - 0.05 and (not t1.guaranteed or t1.agreement >= 0.85 - 0.05)
    tier = guaranteed_routing([p0, p1], gc.thresholds)
    assert np.sum(tier == 0) == t0.n_accepted and np.sum(tier == 1) == t1.n_accepted
    assert gc.coverage == pytest.approx(np.mean(tier != ABSTAIN))
    assert gc.coverage == pytest.approx(t0.coverage + t1.coverage)
    d = gc.as_dict()
    assert d["abstained"] == pytest.approx(1 - gc.coverage)
    json.dumps(d, allow_nan=False)


def test_a_cascade_where_no_tier_can_meet_the_target_abstains_on_everything():
    rng = np.random.default_rng(9)
    tiers = [_cascade_probs(rng, 1000, quality=0.0) for _ in range(3)]
    y = tiers[0][1]
    coin = [t[0] for t in tiers]
    gc = guaranteed_cascade(coin, y, target_agreement=0.9)
    assert not gc.guaranteed and gc.thresholds == [None, None, None]
    assert gc.coverage == 0.0 and np.isnan(gc.agreement)
    assert np.all(guaranteed_routing(coin, gc.thresholds) == ABSTAIN)
    assert [t.n_reached for t in gc.tiers] == [1000, 1000, 1000]


def test_levels_out_of_range_are_refused():
    conf, ok = _draw(np.random.default_rng(0), 50)
    with pytest.raises(ValueError, match="alpha"):
        fixed_sequence_threshold(conf, ok, alpha=0.0, delta=0.1)
    with pytest.raises(ValueError, match="delta"):
        fixed_sequence_threshold(conf, ok, alpha=0.1, delta=1.0)
