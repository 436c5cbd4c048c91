"""Calibrators: valid probabilities, the rare-grade rule, the floor, sklearn agreement, saved states."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from sklearn.calibration import CalibratedClassifierCV
from sklearn.exceptions import NotFittedError
from sklearn.frozen import FrozenEstimator

from relforge.calibrate import (
    CALIBRATION_METHODS,
    Calibrator,
    PerClassIsotonicCalibrator,
    TemperatureCalibrator,
    TopLabelIsotonicCalibrator,
    calibration_metrics,
    calibrator_factory,
    load_calibrator,
    make_calibrator,
    negative_log_likelihood,
    save_calibrator,
)
from relforge.calibrate._calibrators import _PassThroughClassifier
from relforge.errors import ModelError
from tests.calibrate.conftest import calibrated_pairs


@pytest.fixture(scope="module")
def overconfident():
    """Fit and test halves of over-confident probabilities (true temperature 2)."""
    probs, y = calibrated_pairs(6000, seed=1, temperature=0.5)
    return probs[:3000], y[:3000], probs[3000:], y[3000:]


@pytest.mark.parametrize("method", CALIBRATION_METHODS)
def test_every_method_returns_valid_probabilities_and_records_its_counts(method, overconfident):
    fit_p, fit_y, test_p, _ = overconfident
    cal = make_calibrator(method).fit(fit_p, fit_y)
    out = cal.transform(test_p)
    assert out.shape == test_p.shape
    np.testing.assert_allclose(out.sum(axis=1), 1.0, atol=1e-12)
    assert np.all(out >= 0) and np.all(out <= 1)
    if method != "none":
        assert out.min() >= cal.floor / (1 + cal.floor * out.shape[1])
    assert cal.n_pairs == 3000
    assert cal.positives == np.bincount(fit_y, minlength=4).tolist()
    assert cal.method == method


@pytest.mark.parametrize("method", ["temperature", "top-label-isotonic", "per-class-isotonic"])
def test_fitted_methods_fix_overconfidence_on_held_out_pairs(method, overconfident):
    fit_p, fit_y, test_p, test_y = overconfident
    raw = calibration_metrics(test_p, test_y)
    cal = calibration_metrics(make_calibrator(method).fit(fit_p, fit_y).transform(test_p), test_y)
    assert raw["ece"] > 0.1
    assert cal["ece"] < raw["ece"] / 2
    assert cal["nll"] < raw["nll"]


def test_none_passes_probabilities_through_exactly(overconfident):
    fit_p, fit_y, test_p, _ = overconfident
    np.testing.assert_array_equal(make_calibrator("none").fit(fit_p, fit_y).transform(test_p), test_p)


def test_temperature_recovers_a_known_temperature_and_matches_sklearn(overconfident):
    fit_p, fit_y, test_p, _ = overconfident
    cal = TemperatureCalibrator().fit(fit_p, fit_y)
    assert cal.temperature == pytest.approx(2.0, rel=0.1)
    reference = CalibratedClassifierCV(
        FrozenEstimator(_PassThroughClassifier(4).fit(fit_p)), method="temperature"
    ).fit(fit_p, fit_y)
    expected = reference.predict_proba(test_p)
    expected = np.maximum(expected, cal.floor)
    np.testing.assert_allclose(cal.transform(test_p), expected / expected.sum(axis=1, keepdims=True), atol=1e-9)


def test_temperature_fits_when_a_grade_is_missing_from_the_calib_pairs(overconfident):
    fit_p, fit_y, test_p, _ = overconfident
    keep = fit_y != 1
    cal = TemperatureCalibrator().fit(fit_p[keep], fit_y[keep])
    assert cal.positives[1] == 0
    assert np.isfinite(cal.temperature) and cal.temperature > 1
    np.testing.assert_allclose(cal.transform(test_p).sum(axis=1), 1.0)


def test_per_class_isotonic_is_sklearns_per_class_isotonic_where_every_grade_is_common(overconfident):
    fit_p, fit_y, test_p, _ = overconfident
    ours = PerClassIsotonicCalibrator(floor=1e-9).fit(fit_p, fit_y).transform(test_p)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sk = CalibratedClassifierCV(
            FrozenEstimator(_PassThroughClassifier(4).fit(fit_p)), method="isotonic"
        ).fit(fit_p, fit_y)
    np.testing.assert_allclose(ours, sk.predict_proba(test_p), atol=1e-6)


def _with_rare_grade(n: int = 2000, rare_positives: int = 2, seed: int = 3):
    probs, y = calibrated_pairs(n, seed=seed, temperature=0.6)
    y = np.where(y == 1, 0, y)  # no grade 1 ...
    y[np.argsort(-probs[:, 1])[:rare_positives]] = 1  # ... except `rare_positives` pairs
    return probs, y


def test_a_grade_with_two_positives_keeps_the_identity_map_not_a_step():
    probs, y = _with_rare_grade()
    cal = PerClassIsotonicCalibrator().fit(probs, y)
    assert cal.positives[1] == 2
    assert cal.identity_grades == [1]
    out = cal.transform(probs)
    # grade 1 passes through, then the row is renormalised: beside a mapped grade, its odds are the input's
    unfloored = np.all(out > 10 * cal.floor, axis=1)
    assert unfloored.mean() > 0.5
    mapped_0 = cal.maps[0].predict(probs[unfloored, 0])
    np.testing.assert_allclose(
        out[unfloored, 1] / out[unfloored, 0], probs[unfloored, 1] / mapped_0, rtol=1e-9
    )
    assert len(np.unique(np.round(out[:, 1], 12))) > 500  # a smooth pass-through, not a few levels

    # without the rule the map is a degenerate step: a handful of levels, mostly at the floor
    step = PerClassIsotonicCalibrator(min_positives=1).fit(probs, y)
    assert step.identity_grades == []
    stepped = step.transform(probs)[:, 1]
    assert len(step.maps[1].y_thresholds_) <= 4
    assert np.mean(stepped <= 2 * step.floor) > 0.9


def test_rare_grade_probabilities_stay_valid_and_the_nll_finite():
    probs, y = _with_rare_grade(rare_positives=2)
    for method in ("per-class-isotonic", "top-label-isotonic"):
        cal = make_calibrator(method).fit(probs[:1000], y[:1000])
        out = cal.transform(probs[1000:])
        assert np.all(out > 0)
        np.testing.assert_allclose(out.sum(axis=1), 1.0, atol=1e-12)
        assert np.isfinite(negative_log_likelihood(out, y[1000:]))


def test_a_grade_with_enough_positives_gets_a_fitted_map():
    probs, y = _with_rare_grade(rare_positives=40)
    cal = PerClassIsotonicCalibrator(min_positives=20).fit(probs, y)
    assert cal.identity_grades == [] and cal.positives[1] == 40


def test_a_grade_that_is_almost_always_positive_keeps_the_identity_too():
    probs, y = calibrated_pairs(500, seed=4)
    y = np.full(500, 2)
    y[:5] = 0
    cal = PerClassIsotonicCalibrator().fit(probs, y)
    assert 2 in cal.identity_grades  # 495 positives but only 5 negatives
    assert 0 in cal.identity_grades


def test_a_row_every_map_sends_to_zero_becomes_uniform_not_zeros():
    state = PerClassIsotonicCalibrator().fit(*calibrated_pairs(400, k=3, seed=5)).to_state()
    state["params"]["maps"] = [{"x": [0.0, 1.0], "y": [0.0, 0.0]}] * 3
    cal = Calibrator.from_state(state)
    out = cal.transform(np.array([[0.2, 0.3, 0.5], [1.0, 0.0, 0.0]]))
    np.testing.assert_allclose(out, 1 / 3)


def test_top_label_isotonic_keeps_the_proportions_of_the_other_grades(overconfident):
    fit_p, fit_y, test_p, _ = overconfident
    cal = TopLabelIsotonicCalibrator(floor=1e-12).fit(fit_p, fit_y)
    assert cal.map is not None and sum(cal.top_label_counts) == 3000
    out = cal.transform(test_p)
    top = test_p.argmax(axis=1)
    rows = np.arange(len(test_p))
    np.testing.assert_allclose(out[rows, top], cal.map.predict(test_p[rows, top]).clip(1e-12), atol=1e-9)
    others = np.ones_like(test_p, dtype=bool)
    others[rows, top] = False
    ratio = out[others].reshape(-1, 3) / test_p[others].reshape(-1, 3)
    unfloored = np.all(out[others].reshape(-1, 3) > 1e-9, axis=1)
    assert unfloored.mean() > 0.9
    np.testing.assert_allclose(ratio[unfloored], ratio[unfloored, :1].repeat(3, axis=1), rtol=1e-6)


@pytest.mark.parametrize("method", CALIBRATION_METHODS)
def test_state_round_trips_through_json_and_a_file(method, overconfident, tmp_path):
    fit_p, fit_y, test_p, _ = overconfident
    cal = make_calibrator(method, min_positives=10, floor=1e-3).fit(fit_p, fit_y)
    state = json.loads(json.dumps(cal.to_state(), allow_nan=False))
    assert state["version"] == 1 and state["method"] == method
    again = Calibrator.from_state(state)
    np.testing.assert_array_equal(again.transform(test_p), cal.transform(test_p))
    assert (again.n_pairs, again.positives) == (cal.n_pairs, cal.positives)
    written = save_calibrator(cal, tmp_path)
    assert written.name == "calibrator.json"
    np.testing.assert_array_equal(load_calibrator(tmp_path).transform(test_p), cal.transform(test_p))


def test_loading_a_bad_state_names_the_file(tmp_path, overconfident):
    with pytest.raises(ModelError, match="no calibrator saved"):
        load_calibrator(tmp_path / "missing.json")
    garbage = tmp_path / "garbage.json"
    garbage.write_text("{not json")
    with pytest.raises(ModelError, match="garbage.json"):
        load_calibrator(garbage)
    state = make_calibrator("temperature").fit(*overconfident[:2]).to_state()
    state["version"] = 99
    future = tmp_path / "future.json"
    future.write_text(json.dumps(state))
    with pytest.raises(ModelError, match="version 99"):
        load_calibrator(future)


def test_misuse_is_refused(overconfident):
    fit_p, fit_y, _, _ = overconfident
    with pytest.raises(ValueError, match="unknown calibration method"):
        make_calibrator("platt")
    with pytest.raises(NotFittedError):
        make_calibrator("per-class-isotonic").transform(fit_p)
    cal = make_calibrator("per-class-isotonic").fit(fit_p, fit_y)
    with pytest.raises(ValueError, match="3 grades"):
        cal.transform(fit_p[:, :3] / fit_p[:, :3].sum(axis=1, keepdims=True))
    with pytest.raises(ValueError, match="sums to"):
        make_calibrator("temperature").fit(fit_p * 0.9, fit_y)
    with pytest.raises(ValueError, match="outside"):
        make_calibrator("temperature").fit(fit_p, fit_y + 1)


def test_factory_makes_fresh_independent_calibrators(overconfident):
    fit_p, fit_y, _, _ = overconfident
    factory = calibrator_factory("per-class-isotonic", min_positives=7)
    a, b = factory(), factory()
    assert a is not b and a.min_positives == 7
    a.fit(fit_p, fit_y)
    assert b.n_grades is None
    with pytest.raises(ValueError):
        calibrator_factory("nope")
