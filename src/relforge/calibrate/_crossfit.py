"""Cross-fitting over queries: estimates of a calibrated cascade that are never fitted on themselves.

The calib pairs choose the thresholds (and fit the calibrators), so the accuracy and cost of
the chosen operating point measured on those same pairs is optimistic. Cross-fitting splits
the calib *queries* into ``k`` folds (pairs of one query are never split: they are not
independent); for each fold, the calibrators are refitted and the thresholds chosen on the
other ``k - 1`` folds, then the fold's pairs are routed with them. The pooled held-out
routing is the estimate, with percentile-bootstrap CIs over queries. The thresholds and
calibrators to use are those fitted on all calib pairs.

Example:
    >>> est = crossfit_cascade(raw_probs, costs, y, groups, calibrator_factory("per-class-isotonic"),
    ...                        mode="target-accuracy", target=0.8)            # doctest: +SKIP
    >>> est.thresholds, est.crossfit.accuracy, est.ci["accuracy"]            # doctest: +SKIP
    ((0.74, 0.69), 0.81, (0.77, 0.85))
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.model_selection import GroupKFold

from relforge.calibrate._arrays import check_grades, check_groups, check_probs, check_tiers
from relforge.calibrate._bootstrap import percentile_ci, query_mean_draws
from relforge.calibrate._calibrators import Calibrator, NoCalibrator
from relforge.calibrate._decision import DEFAULT_DECISION, decided_confidence
from relforge.calibrate._routing import (
    DEFAULT_GRID,
    Frontier,
    OperatingPoint,
    Routing,
    _check_mode,
    cost_accuracy_frontier,
    operating_point,
    route,
    search_thresholds,
    single_tier_points,
)
from relforge.finetune import bootstrap_by_query

CalibratorFactory = Callable[[], Calibrator]
DEFAULT_FOLDS = 5


def query_folds(
    groups: np.ndarray, folds: int = DEFAULT_FOLDS, seed: int = 13
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """``(fit, held_out)`` pair indices for ``folds`` folds of whole queries (sklearn's shuffled ``GroupKFold``).

    Raises:
        ValueError: fewer distinct queries than folds.
    """
    g = np.asarray(groups)
    n_queries = len(np.unique(g))
    if folds < 2:
        raise ValueError(f"cross-fitting needs at least 2 folds, got {folds}")
    if n_queries < folds:
        raise ValueError(f"{folds} folds need at least {folds} queries, the calib pairs have {n_queries}")
    splitter = GroupKFold(n_splits=folds, shuffle=True, random_state=seed)
    yield from splitter.split(np.zeros((len(g), 1)), groups=g)


def crossfit_calibrate(
    probs: np.ndarray,
    y: np.ndarray,
    groups: np.ndarray,
    calibrator_factory: CalibratorFactory,
    folds: int = DEFAULT_FOLDS,
    seed: int = 13,
) -> np.ndarray:
    """Out-of-fold calibrated probabilities: each fold's pairs calibrated by a calibrator fitted on the other folds.

    What calibration methods are compared on (:mod:`relforge.calibrate._stats`): a method is
    never scored on the pairs it was fitted on.

    Example:
        >>> oof = crossfit_calibrate(probs, y, groups, calibrator_factory("temperature"))   # doctest: +SKIP
    """
    p = check_probs(probs)
    g = check_grades(y, p.shape[1], len(p))
    q = check_groups(groups, len(p))
    out = np.empty_like(p)
    for fit_idx, held in query_folds(q, folds, seed):
        out[held] = calibrator_factory().fit(p[fit_idx], g[fit_idx]).transform(p[held])
    return out


@dataclass(frozen=True)
class CascadeEstimate:
    """A calibrated cascade fitted on calib, and its cross-fitted estimate.

    Attributes:
        thresholds: chosen on all calib pairs (with calibrators fitted on all of them): use these.
        feasible: whether they meet the target (or the budget) on the calib pairs.
        calibrators: per tier, fitted on all calib pairs.
        calib: the chosen point measured on the calib pairs that chose it (optimistic).
        crossfit: the held-out estimate: every pair routed by thresholds and calibrators fitted
            without its query.
        ci: percentile-bootstrap CIs over queries of the cross-fitted ``accuracy``,
            ``macro_f1``, ``qwk``, ``mean_cost``, ``relative_cost``.
        share_ci: per tier, the CI of the cross-fitted share of pairs it decides.
        fold_thresholds, fold_feasible: per fold, the thresholds chosen without it.
        frontier: the cost-accuracy frontier on all calib pairs (calibrated).
        single_tiers: each tier alone on all calib pairs (calibrated).
        mode, target, budget: what was asked.
        decision: the rule that turned calibrated probabilities into grades and confidences.
        held_out: the cross-fitted routing itself, per pair (grade, confidence, deciding tier,
            cost, the deciding tier's calibrated probabilities): what the cascade's ECE,
            reliability diagram and confusion matrix are computed on.
    """

    thresholds: tuple[float, ...]
    feasible: bool
    calibrators: list[Calibrator]
    calib: OperatingPoint
    crossfit: OperatingPoint
    ci: dict[str, tuple[float, float]]
    share_ci: list[tuple[float, float]]
    fold_thresholds: list[tuple[float, ...]]
    fold_feasible: list[bool]
    frontier: Frontier
    single_tiers: list[OperatingPoint]
    mode: str
    target: float | None
    budget: float | None
    held_out: Routing | None = None
    decision: str = DEFAULT_DECISION

    def as_dict(self) -> dict[str, object]:
        """JSON-able summary (the calibrators' states are saved separately, beside each tier)."""
        return {
            "mode": self.mode,
            "decision": self.decision,
            "target": self.target,
            "budget": self.budget,
            "thresholds": self.calib.as_dict()["thresholds"],
            "feasible": self.feasible,
            "calib": self.calib.as_dict(),
            "crossfit": self.crossfit.as_dict(),
            "ci": {k: list(v) for k, v in self.ci.items()},
            "share_ci": [list(v) for v in self.share_ci],
            "fold_thresholds": [[None if np.isinf(t) else t for t in f] for f in self.fold_thresholds],
            "fold_feasible": list(self.fold_feasible),
            "frontier": self.frontier.as_dict(),
            "single_tiers": [p.as_dict() for p in self.single_tiers],
            "calibration": [
                {"method": c.method, "n_pairs": c.n_pairs, "positives": list(c.positives)} for c in self.calibrators
            ],
        }


def _calibrate_tiers(
    factory: CalibratorFactory, ps: Sequence[np.ndarray], y: np.ndarray, fit_idx: np.ndarray
) -> list[Calibrator]:
    return [factory().fit(p[fit_idx], y[fit_idx]) for p in ps]


def crossfit_cascade(
    probs: Sequence[np.ndarray],
    costs: Sequence[np.ndarray],
    y: np.ndarray,
    groups: np.ndarray,
    calibrator_factory: CalibratorFactory | None = None,
    *,
    mode: str = "target-accuracy",
    target: float | None = None,
    budget: float | None = None,
    folds: int = DEFAULT_FOLDS,
    n_grid: int = DEFAULT_GRID,
    seed: int = 13,
    reps: int = 1000,
    level: float = 0.95,
    decision: str = DEFAULT_DECISION,
) -> CascadeEstimate:
    """Fit the calibrated cascade on calib pairs and estimate its operating point by cross-fitting.

    Args:
        probs: per tier, (n, K) *uncalibrated* class probabilities of the same calib pairs, cheapest first.
        costs: per tier, (n,) measured cost per pair.
        y: (n,) human grades.
        groups: (n,) query ids: the unit of the folds and of the bootstrap.
        calibrator_factory: returns a fresh calibrator (one per tier and fold), e.g.
            ``calibrator_factory("per-class-isotonic")``; ``None``: no calibration.
        mode, target, budget: as in :func:`search_thresholds`.
        folds: query folds for cross-fitting.
        reps, level: bootstrap replicates and CI level.
        decision: the rule that turns calibrated probabilities into a grade and its confidence.

    Returns:
        A :class:`CascadeEstimate`.
    """
    _check_mode(mode, target, budget)
    ps, cs = check_tiers(probs, [np.asarray(c, dtype=np.float64) for c in costs])
    n, k = ps[0].shape
    g = check_grades(y, k, n)
    q = check_groups(groups, n)
    factory = calibrator_factory or NoCalibrator
    n_tiers = len(ps)
    search = {"mode": mode, "target": target, "budget": budget, "n_grid": n_grid, "decision": decision}

    everything = np.arange(n)
    calibrators = _calibrate_tiers(factory, ps, g, everything)
    calibrated = [c.transform(p) for c, p in zip(calibrators, ps)]
    choice = search_thresholds(calibrated, cs, g, **search)

    grade, tier, cost = np.empty(n, dtype=np.int64), np.empty(n, dtype=np.int64), np.empty(n)
    held_probs_all = np.empty((n, k))
    fold_thresholds, fold_feasible = [], []
    for fit_idx, held in query_folds(q, folds, seed):
        fold_cals = _calibrate_tiers(factory, ps, g, fit_idx)
        fit_probs = [c.transform(p[fit_idx]) for c, p in zip(fold_cals, ps)]
        fold_choice = search_thresholds(fit_probs, [c[fit_idx] for c in cs], g[fit_idx], **search)
        held_probs = [c.transform(p[held]) for c, p in zip(fold_cals, ps)]
        r = route(held_probs, [c[held] for c in cs], fold_choice.thresholds, decision)
        grade[held], tier[held], cost[held] = r.grade, r.tier, r.cost
        held_probs_all[held] = r.probs
        fold_thresholds.append(fold_choice.thresholds)
        fold_feasible.append(fold_choice.feasible)
    held_out = operating_point(g, grade, tier, cost, cs[-1], n_tiers, k)

    ci = bootstrap_by_query(q, g, grade, k, reps=reps, seed=seed, level=level)
    columns = np.column_stack([cost, cs[-1], np.eye(n_tiers)[tier]])
    draws = query_mean_draws(q, columns, reps=reps, seed=seed)
    with np.errstate(divide="ignore", invalid="ignore"):
        relative = draws[:, 0] / draws[:, 1]
    ci = {
        "accuracy": ci["accuracy"],
        "macro_f1": ci["macro_f1"],
        "qwk": ci["qwk"],
        "mean_cost": percentile_ci(draws[:, 0], level),
        "relative_cost": percentile_ci(relative, level) if np.all(np.isfinite(relative)) else (np.nan, np.nan),
    }
    return CascadeEstimate(
        thresholds=choice.thresholds,
        feasible=choice.feasible,
        calibrators=calibrators,
        calib=choice.point,
        crossfit=held_out,
        ci=ci,
        share_ci=[percentile_ci(draws[:, 2 + t], level) for t in range(n_tiers)],
        fold_thresholds=fold_thresholds,
        fold_feasible=fold_feasible,
        frontier=cost_accuracy_frontier(calibrated, cs, g, n_grid, decision),
        single_tiers=single_tier_points(calibrated, cs, g, decision),
        mode=mode,
        target=choice.target,
        budget=choice.budget,
        held_out=Routing(grade=grade, confidence=decided_confidence(held_probs_all, decision), tier=tier, cost=cost,
                         probs=held_probs_all),
        decision=decision,
    )
