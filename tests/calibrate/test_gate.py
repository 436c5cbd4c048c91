"""The calibration gate's checks, on cross-fitted estimates of synthetic cascades of known quality."""

from __future__ import annotations

import numpy as np

from relforge.calibrate import (
    calibrator_factory,
    check_gate,
    crossfit_cascade,
    expected_calibration_error,
    guaranteed_cascade,
)
from relforge.config import CalibrateConfig
from tests.calibrate.conftest import synthetic_cascade


def _estimate(cascade, target=0.5):
    est = crossfit_cascade(cascade.probs, cascade.costs, cascade.y, cascade.groups,
                           calibrator_factory("per-class-isotonic"), mode="target-accuracy", target=target, reps=200)
    return est, expected_calibration_error(est.held_out.probs, cascade.y)


def test_a_good_cascade_passes_and_every_check_is_reported(cascade):
    est, ece = _estimate(cascade)
    result = check_gate(est, ece, CalibrateConfig(target_accuracy=0.5, gate_max_ece=0.1))
    assert result.passed and result.reasons == []
    assert [c.name for c in result.checks] == ["accuracy", "ece", "qwk"]
    assert all(c.passed for c in result.checks)


def test_a_target_the_cascade_misses_fails_the_accuracy_check(cascade):
    est, ece = _estimate(cascade, target=0.99)
    result = check_gate(est, ece, CalibrateConfig(target_accuracy=0.99, gate_max_ece=0.1))
    assert not result.passed
    assert [c.name for c in result.checks if not c.passed] == ["accuracy"]
    assert "below the target 0.990" in result.reasons[0]


def test_an_ece_above_the_limit_fails(cascade):
    est, ece = _estimate(cascade)
    result = check_gate(est, ece, CalibrateConfig(target_accuracy=0.5, gate_max_ece=ece / 2))
    assert [c.name for c in result.checks if not c.passed] == ["ece"]


def test_labels_without_ordinal_signal_fail_the_qwk_check():
    noise = synthetic_cascade(signals=(0.0, 0.0), base_costs=(1.0, 4.0), seed=3)
    est, ece = _estimate(noise, target=0.0)
    result = check_gate(est, ece, CalibrateConfig(target_accuracy=0.0, gate_max_ece=None))
    assert not result.passed and [c.name for c in result.checks if not c.passed] == ["qwk"]
    assert "does not beat the majority class" in result.reasons[0]


def test_no_guaranteed_threshold_fails_the_guarantee_check():
    noise = synthetic_cascade(signals=(0.0, 0.0), base_costs=(1.0, 4.0), seed=3)
    est, ece = _estimate(noise, target=0.0)
    cfg = CalibrateConfig(target_accuracy=0.0, gate_max_ece=None, gate_qwk_above_zero=False, guarantee=True,
                          guarantee_agreement=0.95)
    calibrated = [c.transform(p) for c, p in zip(est.calibrators, noise.probs)]
    guaranteed = guaranteed_cascade(calibrated, noise.y, 0.95, cfg.delta)
    result = check_gate(est, ece, cfg, guaranteed)
    assert not result.passed and "guaranteed mode: no tier" in result.reasons[0]


def test_a_gate_turned_off_passes_but_still_reports(cascade):
    est, ece = _estimate(cascade, target=0.99)
    result = check_gate(est, ece, CalibrateConfig(target_accuracy=0.99, gate=False))
    assert result.passed and not result.enabled and result.reasons  # the failing check is still shown
    assert np.isfinite(ece)
