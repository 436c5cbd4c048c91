"""Calibration metrics: equal-mass ECEs, Brier, NLL, reliability bins, and the agreement metrics reused."""

from __future__ import annotations

import numpy as np
import pytest

from relforge.calibrate import (
    brier_score,
    calibration_metrics,
    classwise_ece,
    expected_calibration_error,
    negative_log_likelihood,
    reliability_bins,
)
from relforge.finetune import grade_metrics
from tests.calibrate.conftest import calibrated_pairs


def test_ece_by_hand_with_equal_mass_bins():
    probs = np.array([[0.9, 0.1], [0.8, 0.2], [0.6, 0.4], [0.55, 0.45]])
    y = np.array([0, 1, 0, 1])
    # bins of 2 by confidence: {0.55 wrong, 0.6 right} -> |0.5 - 0.575|; {0.8 wrong, 0.9 right} -> |0.5 - 0.85|
    assert expected_calibration_error(probs, y, n_bins=2) == pytest.approx(0.5 * 0.075 + 0.5 * 0.35)
    # one bin: |accuracy - mean confidence|
    assert expected_calibration_error(probs, y, n_bins=1) == pytest.approx(abs(0.5 - 0.7125))


def test_bins_hold_equal_mass_and_cover_every_pair():
    probs, y = calibrated_pairs(1003, seed=2)
    rb = reliability_bins(probs, y, n_bins=10)
    assert len(rb.count) == 10 and rb.count.sum() == 1003
    assert rb.count.max() - rb.count.min() <= 1
    assert np.all(np.diff(rb.confidence) >= 0)
    conf, hit = probs.max(axis=1), probs.argmax(axis=1) == y
    assert np.average(rb.accuracy, weights=rb.count) == pytest.approx(hit.mean())
    assert np.average(rb.confidence, weights=rb.count) == pytest.approx(conf.mean())
    # more bins than pairs: one pair per bin
    assert reliability_bins(probs[:4], y[:4], n_bins=15).count.tolist() == [1, 1, 1, 1]


def test_calibrated_probabilities_have_small_ece_and_overconfident_ones_large():
    good, y = calibrated_pairs(20000, seed=3)
    bad, y_bad = calibrated_pairs(20000, seed=3, temperature=0.4)
    assert expected_calibration_error(good, y) < 0.02
    assert classwise_ece(good, y) < 0.02
    assert expected_calibration_error(bad, y_bad) > 0.1
    assert classwise_ece(bad, y_bad) > 0.03


def test_brier_and_nll_match_their_definitions():
    probs, y = calibrated_pairs(500, k=3, seed=4)
    onehot = np.eye(3)[y]
    assert brier_score(probs, y) == pytest.approx(np.mean(np.sum((probs - onehot) ** 2, axis=1)))
    assert negative_log_likelihood(probs, y) == pytest.approx(-np.mean(np.log(probs[np.arange(500), y])))
    # two grades: the multi-class Brier (sum over both), not sklearn's halved binary one
    two = np.array([[0.8, 0.2], [0.3, 0.7]])
    assert brier_score(two, np.array([0, 1])) == pytest.approx(0.13)
    # an exact zero on the true grade is a large, finite NLL (clipped), not inf
    assert np.isfinite(negative_log_likelihood(np.array([[1.0, 0.0]]), np.array([1])))


def test_calibration_metrics_bundles_everything_and_reuses_grade_metrics():
    probs, y = calibrated_pairs(800, seed=5)
    m = calibration_metrics(probs, y, n_bins=10)
    assert set(m) == {"accuracy", "macro_f1", "qwk", "ece", "classwise_ece", "brier", "nll", "n_pairs"}
    agreement = grade_metrics(y, probs.argmax(axis=1), 4)
    for key in ("accuracy", "macro_f1", "qwk"):
        assert m[key] == agreement[key]
    assert m["ece"] == expected_calibration_error(probs, y, 10)
    assert m["n_pairs"] == 800


def test_metrics_refuse_mismatched_inputs():
    probs, y = calibrated_pairs(10, seed=6)
    with pytest.raises(ValueError, match="entries"):
        calibration_metrics(probs, y[:5])
    with pytest.raises(ValueError, match="n_bins"):
        expected_calibration_error(probs, y, n_bins=0)
