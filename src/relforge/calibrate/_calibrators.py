"""Calibrators: maps from a tier's class probabilities to calibrated class probabilities.

One interface, four methods (``CALIBRATION_METHODS``):

- ``none``: the identity (the uncalibrated baseline);
- ``temperature``: one temperature on the log-probabilities, fitted by NLL (scikit-learn's
  ``CalibratedClassifierCV(method="temperature")`` over a frozen pass-through classifier);
- ``top-label-isotonic``: an ``IsotonicRegression`` of top-label correctness on top-label
  confidence; the other classes are rescaled so that the row sums to 1;
- ``per-class-isotonic`` (the product's method): one ``IsotonicRegression`` per class on that
  class's one-vs-rest probability, then renormalised.

**Rare classes.** An isotonic map fitted on a handful of positives is a step function with at
most that many steps, placed wherever those few positives happen to fall (two positives: the
class's probability jumps from 0 to some value at the lower positive's score, and is 0 below
it). So a class with fewer than ``min_positives`` positive calib pairs, or fewer than
``min_positives`` negative ones, keeps the identity map: its probability passes through
unchanged before the row is renormalised (``top-label-isotonic``: the same rule on correct /
wrong top labels, else the whole map is the identity). The default, 20, is where a map starts
to pay: in a simulation of a grade at 4% prevalence whose model is moderately over-confident
(true logit = 0.6 * model logit - 0.8), the mean squared error of the isotonic map against the
true probability on fresh pairs was 0.0110 / 0.0050 / 0.0032 / 0.0021 / 0.0011 at 2 / 5 / 10 /
20 / 40 positives, the identity's 0.0022 (the map's error falls about as 1 / positives). ESCI's
Complement grade (under 5% of pairs) has about 40-60 positives in a 1,300-pair calib split, so
it is calibrated, also in each 4/5 used by 5-fold cross-fitting; a fold or a small data set
that leaves a grade with 2 positives keeps that grade's probabilities as they were.

**Floor.** Every fitted calibrator (not ``none``) renormalises its row, raises each
probability to at least ``floor`` (default 1e-4) and renormalises again, so that no calibrated
row is all zeros (where every per-class map returns 0 the row becomes uniform) and no
probability is an exact 0, which would make the NLL of that grade infinite. 1e-4 is below
the resolution of any calib split we have (1 / 1,300 pairs is 7.7e-4), so the floor never
hides a probability the data support; a floored wrong grade costs ``-ln(1e-4) = 9.2`` nats
instead of infinity.

**Saving.** ``to_state()`` is a JSON-able dict (``format``, ``version``, the method, the counts it
was fitted on and the fitted parameters: the temperature, or each isotonic map's breakpoints);
:func:`save_calibrator` / :func:`load_calibrator` write and read it as a JSON file beside the
tier model. No pickle: a state is data, and loading it runs no code.

Example:
    >>> cal = make_calibrator("per-class-isotonic").fit(calib_probs, calib_grades)   # doctest: +SKIP
    >>> cal.transform(test_probs).sum(axis=1)                                        # doctest: +SKIP
    array([1., 1., ...])
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from scipy.special import softmax
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.calibration import CalibratedClassifierCV
from sklearn.exceptions import NotFittedError
from sklearn.frozen import FrozenEstimator
from sklearn.isotonic import IsotonicRegression

from relforge.calibrate._arrays import check_grades, check_probs
from relforge.errors import ModelError

CALIBRATION_METHODS = ("none", "temperature", "top-label-isotonic", "per-class-isotonic")
#: the version of the saved state; a state of another version is refused, not guessed at
STATE_VERSION = 1
STATE_FORMAT = "relforge.calibrator"
DEFAULT_MIN_POSITIVES = 20
DEFAULT_FLOOR = 1e-4
#: the file name of a saved calibrator beside its tier model
CALIBRATOR_FILE = "calibrator.json"
# sklearn's _convert_to_logits adds this before taking the log of probabilities
_LOG_EPS = 1e-12


class Calibrator:
    """The interface: ``fit(probs, y) -> self``, ``transform(probs) -> probs``, ``to_state()`` / ``from_state()``.

    Attributes (after ``fit``):
        n_grades: K, the number of grades (columns of ``probs``).
        n_pairs: the number of calib pairs it was fitted on.
        positives: per grade, the calib pairs with that human grade.

    Args:
        floor: the least probability a fitted calibrator returns (then rows are renormalised).
    """

    method: ClassVar[str] = ""

    def __init__(self, floor: float = DEFAULT_FLOOR):
        if not 0 < floor < 0.5:
            raise ValueError(f"floor must be in (0, 0.5), got {floor}")
        self.floor = float(floor)
        self.n_grades: int | None = None
        self.n_pairs = 0
        self.positives: list[int] = []

    # -- the interface -------------------------------------------------------------------
    def fit(self, probs: np.ndarray, y: np.ndarray) -> Calibrator:
        """Fit on calib pairs: ``probs`` (n, K) uncalibrated class probabilities, ``y`` (n,) human grades.

        Returns:
            ``self``.
        """
        p = check_probs(probs)
        if len(p) == 0:
            raise ValueError("cannot fit a calibrator on 0 pairs")
        g = check_grades(y, p.shape[1], len(p))
        self.n_grades, self.n_pairs = p.shape[1], len(p)
        self.positives = np.bincount(g, minlength=p.shape[1]).astype(int).tolist()
        self._fit(p, g)
        return self

    def transform(self, probs: np.ndarray) -> np.ndarray:
        """Calibrated probabilities, (n, K), every row summing to 1."""
        if self.n_grades is None:
            raise NotFittedError(f"this {self.method} calibrator is not fitted yet")
        p = check_probs(probs)
        if p.shape[1] != self.n_grades:
            raise ValueError(f"probs has {p.shape[1]} grades, the calibrator was fitted on {self.n_grades}")
        return self._transform(p)

    def fit_transform(self, probs: np.ndarray, y: np.ndarray) -> np.ndarray:
        return self.fit(probs, y).transform(probs)

    def to_state(self) -> dict[str, Any]:
        """A JSON-able dict from which :meth:`from_state` rebuilds the same calibrator."""
        if self.n_grades is None:
            raise NotFittedError(f"this {self.method} calibrator is not fitted yet")
        return {
            "format": STATE_FORMAT,
            "version": STATE_VERSION,
            "method": self.method,
            "n_grades": self.n_grades,
            "n_pairs": self.n_pairs,
            "positives": list(self.positives),
            "options": self._options(),
            "params": self._params(),
        }

    @staticmethod
    def from_state(state: dict[str, Any]) -> Calibrator:
        """The calibrator a :meth:`to_state` dict describes (any method).

        Raises:
            ValueError: the dict is not a calibrator state of this version.
        """
        if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
            raise ValueError("not a relforge calibrator state")
        if state.get("version") != STATE_VERSION:
            raise ValueError(f"calibrator state version {state.get('version')}, this relforge reads {STATE_VERSION}")
        cls = _METHOD_CLASSES.get(state.get("method", ""))
        if cls is None:
            raise ValueError(f"unknown calibration method {state.get('method')!r}")
        cal = cls(**state.get("options", {}))
        cal.n_grades, cal.n_pairs = int(state["n_grades"]), int(state["n_pairs"])
        cal.positives = [int(v) for v in state["positives"]]
        cal._load(state["params"])
        return cal

    # -- what a method defines -----------------------------------------------------------
    def _fit(self, p: np.ndarray, y: np.ndarray) -> None:
        raise NotImplementedError

    def _transform(self, p: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _options(self) -> dict[str, Any]:
        return {"floor": self.floor}

    def _params(self) -> dict[str, Any]:
        return {}

    def _load(self, params: dict[str, Any]) -> None:
        pass

    def _finish(self, p: np.ndarray) -> np.ndarray:
        """Renormalise (a row of zeros becomes uniform), floor, renormalise: every entry >= floor / (1 + K floor)."""
        total = p.sum(axis=1, keepdims=True)
        p = np.divide(p, total, out=np.full_like(p, 1.0 / p.shape[1]), where=total > 0)
        p = np.maximum(p, self.floor)
        return p / p.sum(axis=1, keepdims=True)

    def __repr__(self) -> str:
        fitted = f"n_pairs={self.n_pairs}, positives={self.positives}" if self.n_grades else "unfitted"
        return f"{type(self).__name__}({fitted})"


class NoCalibrator(Calibrator):
    """``none``: the identity; the probabilities pass through exactly (no floor)."""

    method = "none"

    def _fit(self, p: np.ndarray, y: np.ndarray) -> None:
        pass

    def _transform(self, p: np.ndarray) -> np.ndarray:
        return p.copy()


class _PassThroughClassifier(ClassifierMixin, BaseEstimator):
    """A 'classifier' whose ``predict_proba`` is its input: lets sklearn calibrate given probabilities."""

    def __init__(self, n_grades: int = 2):
        self.n_grades = n_grades

    def fit(self, X: np.ndarray, y: np.ndarray | None = None) -> _PassThroughClassifier:
        self.classes_ = np.arange(self.n_grades)
        return self

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(X, dtype=np.float64)

    def predict(self, X: np.ndarray) -> np.ndarray:
        return np.argmax(np.asarray(X), axis=1)


class TemperatureCalibrator(Calibrator):
    """``temperature``: ``softmax(log(p) / T)`` with one temperature ``T`` fitted by NLL.

    Fitted with scikit-learn's ``CalibratedClassifierCV(FrozenEstimator(pass-through),
    method="temperature")``, which minimises the NLL over the inverse temperature with
    ``scipy.optimize.minimize_scalar``. ``transform`` applies the fitted temperature itself
    (one line, the formula sklearn's ``_TemperatureScaling.predict`` uses) so that a calibrator
    loaded from its JSON state needs no sklearn object; a test checks the two agree.

    Attributes:
        temperature: ``T`` (> 1 softens over-confident probabilities, < 1 sharpens them).
    """

    method = "temperature"

    def __init__(self, floor: float = DEFAULT_FLOOR):
        super().__init__(floor)
        self.temperature: float | None = None

    def _fit(self, p: np.ndarray, y: np.ndarray) -> None:
        k = p.shape[1]
        # sklearn's cross_val_predict (inside CalibratedClassifierCV) needs every grade among the
        # labels, and a calib fold may lack a rare one. One zero-weight row per grade makes every
        # grade present without changing the fit: the weights enter the NLL only (FrozenEstimator
        # takes none, which is the warning silenced below). cv: a single split, all rows in it,
        # since the pass-through needs no held-out predictions.
        x = np.vstack([p, np.full((k, k), 1.0 / k)])
        labels = np.concatenate([y, np.arange(k)])
        weights = np.concatenate([np.ones(len(y)), np.zeros(k)])
        rows = np.arange(len(labels))
        frozen = FrozenEstimator(_PassThroughClassifier(k).fit(x))
        model = CalibratedClassifierCV(frozen, method="temperature", cv=[(rows, rows)])
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Since FrozenEstimator does not appear to accept")
            model.fit(x, labels, sample_weight=weights)
        beta = float(model.calibrated_classifiers_[0].calibrators[0].beta_)
        self.temperature = 1.0 / beta

    def _transform(self, p: np.ndarray) -> np.ndarray:
        return self._finish(softmax(np.log(p + _LOG_EPS) / self.temperature, axis=1))

    def _params(self) -> dict[str, Any]:
        return {"temperature": self.temperature}

    def _load(self, params: dict[str, Any]) -> None:
        self.temperature = float(params["temperature"])


def _isotonic() -> IsotonicRegression:
    return IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0, increasing=True)


def _isotonic_state(model: IsotonicRegression | None) -> dict[str, Any]:
    if model is None:
        return {"identity": True}
    return {"x": model.X_thresholds_.tolist(), "y": model.y_thresholds_.tolist()}


def _isotonic_from_state(state: dict[str, Any]) -> IsotonicRegression | None:
    # Refitting on a fitted map's own breakpoints returns the same map (they are already
    # monotone and free of redundant points), so the loaded map is sklearn's, not a copy of it.
    if state.get("identity"):
        return None
    return _isotonic().fit(np.asarray(state["x"], dtype=np.float64), np.asarray(state["y"], dtype=np.float64))


class _IsotonicCalibrator(Calibrator):
    def __init__(self, min_positives: int = DEFAULT_MIN_POSITIVES, floor: float = DEFAULT_FLOOR):
        super().__init__(floor)
        if min_positives < 1:
            raise ValueError(f"min_positives must be >= 1, got {min_positives}")
        self.min_positives = int(min_positives)

    def _options(self) -> dict[str, Any]:
        return {"min_positives": self.min_positives, "floor": self.floor}

    def _enough(self, positives: int, negatives: int) -> bool:
        return positives >= self.min_positives and negatives >= self.min_positives


class PerClassIsotonicCalibrator(_IsotonicCalibrator):
    """``per-class-isotonic``: one isotonic map per grade on its one-vs-rest probability, renormalised.

    A grade with fewer than ``min_positives`` positive (or negative) calib pairs keeps the
    identity map (see the module docstring).

    Attributes:
        identity_grades: the grades that kept the identity map.

    Example:
        >>> cal = PerClassIsotonicCalibrator(min_positives=20).fit(probs, y)   # doctest: +SKIP
        >>> cal.identity_grades                                              # doctest: +SKIP
        [1]
    """

    method = "per-class-isotonic"

    def __init__(self, min_positives: int = DEFAULT_MIN_POSITIVES, floor: float = DEFAULT_FLOOR):
        super().__init__(min_positives, floor)
        self.maps: list[IsotonicRegression | None] = []

    @property
    def identity_grades(self) -> list[int]:
        return [k for k, m in enumerate(self.maps) if m is None]

    def _fit(self, p: np.ndarray, y: np.ndarray) -> None:
        self.maps = []
        for k in range(p.shape[1]):
            is_k = (y == k).astype(np.float64)
            pos = int(is_k.sum())
            self.maps.append(_isotonic().fit(p[:, k], is_k) if self._enough(pos, len(y) - pos) else None)

    def _transform(self, p: np.ndarray) -> np.ndarray:
        out = p.copy()
        for k, model in enumerate(self.maps):
            if model is not None:
                out[:, k] = model.predict(p[:, k])
        return self._finish(out)

    def _params(self) -> dict[str, Any]:
        return {"maps": [_isotonic_state(m) for m in self.maps]}

    def _load(self, params: dict[str, Any]) -> None:
        self.maps = [_isotonic_from_state(s) for s in params["maps"]]
        if len(self.maps) != self.n_grades:
            raise ValueError(f"{len(self.maps)} isotonic maps for {self.n_grades} grades")


class TopLabelIsotonicCalibrator(_IsotonicCalibrator):
    """``top-label-isotonic``: isotonic map of P(top label correct) on the top-label confidence.

    The top grade's probability becomes the mapped confidence; the other grades share the
    rest in their original proportions (equally where they had none). When the mapped
    confidence falls below another grade's rescaled probability the predicted grade changes,
    a known property of top-label calibration. Fewer than ``min_positives`` correct (or wrong)
    top labels: the identity map.

    Attributes:
        top_label_counts: ``(correct, wrong)`` top labels on the calib pairs.
    """

    method = "top-label-isotonic"

    def __init__(self, min_positives: int = DEFAULT_MIN_POSITIVES, floor: float = DEFAULT_FLOOR):
        super().__init__(min_positives, floor)
        self.map: IsotonicRegression | None = None
        self.top_label_counts: tuple[int, int] = (0, 0)

    def _fit(self, p: np.ndarray, y: np.ndarray) -> None:
        correct = (p.argmax(axis=1) == y).astype(np.float64)
        right = int(correct.sum())
        self.top_label_counts = (right, len(y) - right)
        self.map = _isotonic().fit(p.max(axis=1), correct) if self._enough(right, len(y) - right) else None

    def _transform(self, p: np.ndarray) -> np.ndarray:
        if self.map is None:
            return self._finish(p.copy())
        rows = np.arange(len(p))
        top = p.argmax(axis=1)
        conf = p[rows, top]
        new = self.map.predict(conf)
        rest = 1.0 - conf
        has_rest = rest > 1e-12
        scale = np.where(has_rest, (1.0 - new) / np.where(has_rest, rest, 1.0), 0.0)
        out = p * scale[:, None]
        even = (1.0 - new) / (p.shape[1] - 1)
        out[~has_rest] = even[~has_rest, None]
        out[rows, top] = new
        return self._finish(out)

    def _params(self) -> dict[str, Any]:
        return {"map": _isotonic_state(self.map), "top_label_counts": list(self.top_label_counts)}

    def _load(self, params: dict[str, Any]) -> None:
        self.map = _isotonic_from_state(params["map"])
        self.top_label_counts = tuple(int(v) for v in params.get("top_label_counts", (0, 0)))


_METHOD_CLASSES: dict[str, type[Calibrator]] = {
    cls.method: cls
    for cls in (NoCalibrator, TemperatureCalibrator, TopLabelIsotonicCalibrator, PerClassIsotonicCalibrator)
}


def make_calibrator(
    method: str, *, min_positives: int = DEFAULT_MIN_POSITIVES, floor: float = DEFAULT_FLOOR
) -> Calibrator:
    """A fresh, unfitted calibrator of ``method`` (one of ``CALIBRATION_METHODS``).

    ``min_positives`` concerns the isotonic methods only; ``floor`` every method but ``none``.

    Example:
        >>> make_calibrator("temperature")
        TemperatureCalibrator(unfitted)
    """
    cls = _METHOD_CLASSES.get(method)
    if cls is None:
        raise ValueError(f"unknown calibration method {method!r}; known: {', '.join(CALIBRATION_METHODS)}")
    if cls is NoCalibrator:
        return NoCalibrator()
    if issubclass(cls, _IsotonicCalibrator):
        return cls(min_positives=min_positives, floor=floor)
    return cls(floor=floor)


def calibrator_factory(
    method: str, *, min_positives: int = DEFAULT_MIN_POSITIVES, floor: float = DEFAULT_FLOOR
) -> Callable[[], Calibrator]:
    """A zero-argument function returning fresh calibrators of ``method`` (what cross-fitting takes).

    Example:
        >>> factory = calibrator_factory("per-class-isotonic", min_positives=10)
        >>> factory().min_positives
        10
    """
    make_calibrator(method, min_positives=min_positives, floor=floor)  # fail here on a bad method

    def factory() -> Calibrator:
        return make_calibrator(method, min_positives=min_positives, floor=floor)

    return factory


def save_calibrator(calibrator: Calibrator, path: str | Path) -> Path:
    """Write ``calibrator``'s state as JSON to ``path`` (a file, or a folder: ``<folder>/calibrator.json``).

    Returns:
        The file written.
    """
    target = Path(path)
    if target.is_dir():
        target = target / CALIBRATOR_FILE
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(json.dumps(calibrator.to_state(), indent=1, allow_nan=False), encoding="utf-8")
    tmp.replace(target)
    return target


def load_calibrator(path: str | Path) -> Calibrator:
    """The calibrator saved at ``path`` (a file, or a folder holding ``calibrator.json``).

    Raises:
        ModelError: naming the file, when it is missing, not JSON, or not a calibrator state
            of this version.
    """
    source = Path(path)
    if source.is_dir():
        source = source / CALIBRATOR_FILE
    try:
        state = json.loads(source.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelError(f"{source}: no calibrator saved here") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ModelError(f"{source}: not a calibrator state (invalid JSON: {exc})") from None
    try:
        return Calibrator.from_state(state)
    except (ValueError, KeyError, TypeError) as exc:
        raise ModelError(f"{source}: not a usable calibrator state: {exc}") from None
