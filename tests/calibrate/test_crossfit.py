"""Cross-fitting over queries: held-out pairs never choose their own thresholds or fit their calibrators."""

from __future__ import annotations

import json
from typing import ClassVar

import numpy as np
import pytest

from relforge.calibrate import (
    Calibrator,
    calibrator_factory,
    crossfit_calibrate,
    crossfit_cascade,
    make_calibrator,
    query_folds,
    search_thresholds,
)
from relforge.calibrate._calibrators import PerClassIsotonicCalibrator
from tests.calibrate.conftest import synthetic_cascade


def test_query_folds_hold_out_every_pair_once_and_never_split_a_query(cascade):
    seen = np.zeros(len(cascade.y), dtype=int)
    for fit_idx, held in query_folds(cascade.groups, folds=5, seed=1):
        assert not set(cascade.groups[fit_idx]) & set(cascade.groups[held])
        assert len(np.intersect1d(fit_idx, held)) == 0
        seen[held] += 1
    assert np.all(seen == 1)
    with pytest.raises(ValueError, match="at least 7 queries"):
        list(query_folds(np.repeat(["a", "b", "c"], 4), folds=7))


class _Spy(PerClassIsotonicCalibrator):
    """Remembers the rows (as bytes) it was fitted on and each set of rows it was asked to calibrate."""

    log: ClassVar[list[_Spy]] = []

    def fit(self, probs, y):
        self.fitted_rows = {r.tobytes() for r in np.asarray(probs)}
        self.transformed: list[set[bytes]] = []
        _Spy.log.append(self)
        return super().fit(probs, y)

    def transform(self, probs):
        self.transformed.append({r.tobytes() for r in np.asarray(probs)})
        return super().transform(probs)


def test_held_out_pairs_are_calibrated_and_routed_by_what_was_fitted_without_them(cascade):
    _Spy.log = []
    est = crossfit_cascade(cascade.probs, cascade.costs, cascade.y, cascade.groups, _Spy,
                           target=0.6, folds=4, n_grid=20, reps=200)
    assert len(_Spy.log) == 3 * (4 + 1)  # every tier on all calib, then once per fold
    fold_spies = _Spy.log[3:]
    for spy in fold_spies:
        fit_rows, held_rows = spy.transformed[0], spy.transformed[1]
        assert fit_rows == spy.fitted_rows  # thresholds chosen on the fold's own fit pairs ...
        assert not held_rows & spy.fitted_rows  # ... and the held-out pairs were never among them
    assert len(est.fold_thresholds) == 4 and len(est.fold_feasible) == 4


@pytest.fixture(scope="module")
def estimate(cascade):
    return crossfit_cascade(
        cascade.probs, cascade.costs, cascade.y, cascade.groups,
        calibrator_factory("per-class-isotonic"), mode="target-accuracy", target=0.6,
        folds=5, n_grid=30, reps=300, seed=3,
    )


def test_the_estimate_reports_thresholds_agreement_cost_shares_and_their_cis(estimate, cascade):
    full = [make_calibrator("per-class-isotonic").fit(p, cascade.y) for p in cascade.probs]
    again = search_thresholds([c.transform(p) for c, p in zip(full, cascade.probs)], cascade.costs,
                              cascade.y, "target-accuracy", target=0.6, n_grid=30)
    assert estimate.thresholds == again.thresholds  # chosen on all calib pairs
    assert estimate.feasible and estimate.calib.accuracy >= 0.6
    cf = estimate.crossfit
    assert cf.thresholds is None and cf.n_pairs == len(cascade.y)
    assert sum(cf.shares) == pytest.approx(1.0)
    for key, value in [("accuracy", cf.accuracy), ("qwk", cf.qwk), ("mean_cost", cf.mean_cost),
                       ("relative_cost", cf.relative_cost)]:
        lo, hi = estimate.ci[key]
        assert lo <= value <= hi and hi > lo
    for share, (lo, hi) in zip(cf.shares, estimate.share_ci):
        assert lo <= share <= hi
    assert cf.relative_cost < 1.0  # the cascade is cheaper than the top tier alone
    assert [c.n_pairs for c in estimate.calibrators] == [len(cascade.y)] * 3
    json.dumps(estimate.as_dict(), allow_nan=False)


def test_cross_fitting_is_less_optimistic_than_scoring_the_pairs_that_chose():
    # tiers with no signal at all: any accuracy above chance on calib is selection on noise
    gaps = []
    for seed in range(5):
        c = synthetic_cascade(n_queries=40, pairs_per_query=10, signals=(0.0, 0.0, 0.0), seed=seed)
        est = crossfit_cascade(c.probs, c.costs, c.y, c.groups, calibrator_factory("none"),
                               mode="budget", budget=3.0, folds=5, n_grid=40, reps=100)
        gaps.append(est.calib.accuracy - est.crossfit.accuracy)
    assert np.mean(gaps) > 0.01


def test_without_a_factory_nothing_is_calibrated(cascade):
    est = crossfit_cascade(cascade.probs, cascade.costs, cascade.y, cascade.groups, None,
                           mode="budget", budget=5.0, folds=3, n_grid=10, reps=100)
    assert all(c.method == "none" for c in est.calibrators)
    assert est.budget == 5.0 and est.target is None


def test_out_of_fold_calibration_never_scores_a_pair_with_a_map_fitted_on_it(cascade):
    p, y, g = cascade.probs[1], cascade.y, cascade.groups
    oof = crossfit_calibrate(p, y, g, calibrator_factory("per-class-isotonic"), folds=5, seed=2)
    in_sample = make_calibrator("per-class-isotonic").fit(p, y).transform(p)
    np.testing.assert_allclose(oof.sum(axis=1), 1.0)
    assert not np.allclose(oof, in_sample)
    for fit_idx, held in query_folds(g, 5, 2):
        fold = make_calibrator("per-class-isotonic").fit(p[fit_idx], y[fit_idx])
        np.testing.assert_array_equal(oof[held], fold.transform(p[held]))
    assert isinstance(calibrator_factory("temperature")(), Calibrator)
