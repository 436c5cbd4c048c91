"""The `calibrate` configuration section (relforge.config): defaults, validation, forbidden keys."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from relforge.calibrate import CALIBRATION_METHODS, DEFAULT_FLOOR, DEFAULT_MIN_POSITIVES
from relforge.config import CalibrateConfig, load_config


def test_defaults_match_the_code_they_configure():
    cfg = CalibrateConfig()
    assert cfg.method == "per-class-isotonic"
    assert set(cfg.baselines) | {cfg.method} == set(CALIBRATION_METHODS)
    assert cfg.min_positives == DEFAULT_MIN_POSITIVES and cfg.floor == DEFAULT_FLOOR
    assert cfg.routing == "target-accuracy" and cfg.folds == 5 and not cfg.guarantee
    assert cfg.agreement_to_guarantee == cfg.target_accuracy
    assert cfg.gate and cfg.gate_qwk_above_zero and cfg.gate_max_ece is not None
    assert cfg.max_pairs is None  # every calib pair, unless capped


def test_it_is_the_calibrate_section_of_the_configuration():
    cfg = load_config(overrides=["calibrate.target_accuracy=0.5", "calibrate.gate=false"])
    assert cfg.calibrate.target_accuracy == 0.5 and not cfg.calibrate.gate
    assert isinstance(cfg.calibrate, CalibrateConfig)


def test_invalid_settings_are_refused():
    with pytest.raises(ValidationError, match="budget"):
        CalibrateConfig(routing="budget")
    assert CalibrateConfig(routing="budget", budget=2.5).budget == 2.5
    with pytest.raises(ValidationError, match="extra"):
        CalibrateConfig(tresholds=[0.5])
    with pytest.raises(ValidationError):
        CalibrateConfig(method="platt")
    with pytest.raises(ValidationError, match="baseline"):
        CalibrateConfig(baselines=["per-class-isotonic"])
    with pytest.raises(ValidationError):
        CalibrateConfig(folds=1)
    with pytest.raises(ValidationError, match="agreement"):
        CalibrateConfig(guarantee=True, target_accuracy=1.0)
    cfg = CalibrateConfig()
    with pytest.raises(ValidationError):
        cfg.delta = 2.0  # assignments are validated too
