"""Cascade routing: which tier decides each pair, what it costs, and the thresholds that route well.

Tiers are in order, cheapest first. Tier ``t`` accepts a pair when its calibrated confidence
(the probability of the grade the decision rule gives, :mod:`~relforge.calibrate._decision`: the
largest class probability under the default ``most-probable``) is at least ``thresholds[t]``;
otherwise the pair goes to tier ``t + 1``; the last tier accepts every pair that reaches it, so
a cascade of ``T`` tiers has ``T - 1`` thresholds (``0.0`` accepts all, ``inf`` accepts none). A
pair's cost is the sum of the costs of every tier it visited.

Threshold search evaluates a grid (per tier: quantiles of its confidence on the calib pairs,
plus accept-all and accept-none) in one pass of matrix products: the number of correct pairs,
the total cost and the pairs each tier decides, for every combination of thresholds at once
(3-4 tiers with 50 quantiles each take well under a second on 1,000s of pairs). From the grid:
the cheapest point that reaches a target accuracy (``target-accuracy``), the most accurate
point within a mean cost per pair (``budget``), and the cost-accuracy Pareto frontier.

Example:
    >>> choice = search_thresholds(calibrated, costs, y, mode="target-accuracy", target=0.8)  # doctest: +SKIP
    >>> simulate_cascade(calibrated, costs, y, choice.thresholds).mean_cost                    # doctest: +SKIP
    0.42
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from threadpoolctl import threadpool_limits

from relforge.calibrate._arrays import check_grades, check_tiers
from relforge.calibrate._decision import DEFAULT_DECISION, decide, decided_confidence, decided_grade
from relforge.finetune import grade_metrics

ROUTING_MODES = ("target-accuracy", "budget")
ACCEPT_ALL = 0.0
ACCEPT_NONE = math.inf
DEFAULT_GRID = 50
# refuse grids whose largest intermediate (prefix combinations x pairs) would not fit in memory
_MAX_GRID_CELLS = 60_000_000


def _json_threshold(t: float) -> float | None:
    return None if math.isinf(t) else float(t)


@dataclass(frozen=True)
class Routing:
    """Per pair: the grade the cascade gives, its confidence, the deciding tier (0-based), its summed cost,
    and the deciding tier's class probabilities (``(n, K)``)."""

    grade: np.ndarray
    confidence: np.ndarray
    tier: np.ndarray
    cost: np.ndarray
    probs: np.ndarray | None = None


@dataclass(frozen=True)
class OperatingPoint:
    """A cascade's quality and cost on a set of pairs.

    Attributes:
        thresholds: one per tier but the last (``None`` for a cross-fitted estimate, whose
            pairs were routed by their folds' thresholds).
        accuracy, macro_f1, qwk: agreement with the human grades.
        mean_cost: mean summed cost per pair.
        relative_cost: ``mean_cost`` over the mean cost of sending every pair to the top tier alone.
        shares: per tier, the share of pairs it decided (sums to 1).
        n_pairs: pairs evaluated.
    """

    accuracy: float
    macro_f1: float
    qwk: float
    mean_cost: float
    relative_cost: float
    shares: tuple[float, ...]
    n_pairs: int
    thresholds: tuple[float, ...] | None = None

    def as_dict(self) -> dict[str, object]:
        """JSON-able; an accept-none threshold (``inf``) is written as ``None``."""
        return {
            "thresholds": None if self.thresholds is None else [_json_threshold(t) for t in self.thresholds],
            "accuracy": self.accuracy,
            "macro_f1": self.macro_f1,
            "qwk": self.qwk,
            "mean_cost": self.mean_cost,
            "relative_cost": self.relative_cost,
            "shares": list(self.shares),
            "n_pairs": self.n_pairs,
        }


@dataclass(frozen=True)
class ThresholdChoice:
    """The thresholds a search chose, whether they met the constraint, and their calib operating point.

    ``feasible`` is False when no grid point met the constraint; the point chosen is then the
    most accurate one (``target-accuracy``) or the cheapest one (``budget``).
    """

    thresholds: tuple[float, ...]
    feasible: bool
    point: OperatingPoint
    mode: str
    target: float | None = None
    budget: float | None = None


@dataclass(frozen=True)
class Frontier:
    """The cost-accuracy Pareto frontier: no grid point is cheaper and at least as accurate.

    Attributes (one row per frontier point, by increasing cost):
        mean_cost, accuracy: (m,).
        thresholds: (m, T - 1).
        shares: (m, T).
    """

    mean_cost: np.ndarray
    accuracy: np.ndarray
    thresholds: np.ndarray
    shares: np.ndarray = field(repr=False)

    def as_dict(self) -> dict[str, object]:
        return {
            "mean_cost": self.mean_cost.tolist(),
            "accuracy": self.accuracy.tolist(),
            "thresholds": [[_json_threshold(t) for t in row] for row in self.thresholds],
            "shares": self.shares.tolist(),
        }


def _check_thresholds(thresholds: Sequence[float], n_tiers: int) -> np.ndarray:
    thr = np.asarray(list(thresholds), dtype=np.float64)
    if thr.shape != (n_tiers - 1,):
        raise ValueError(f"{n_tiers} tiers need {n_tiers - 1} thresholds (the last tier accepts all), got {len(thr)}")
    if np.any(np.isnan(thr)):
        raise ValueError("thresholds must not be NaN")
    return thr


def route(
    probs: Sequence[np.ndarray], costs: Sequence[np.ndarray], thresholds: Sequence[float],
    decision: str = DEFAULT_DECISION,
) -> Routing:
    """Route every pair through the cascade.

    Args:
        probs: per tier, (n, K) calibrated class probabilities of the same pairs, cheapest tier first.
        costs: per tier, (n,) measured cost per pair (or a scalar).
        thresholds: ``T - 1`` confidence thresholds.
        decision: the decision rule (:data:`~relforge.calibrate._decision.DECISIONS`).

    Example:
        >>> p0 = np.array([[0.9, 0.1], [0.6, 0.4]]); p1 = np.array([[0.2, 0.8], [0.3, 0.7]])
        >>> r = route([p0, p1], [1.0, 10.0], [0.8])
        >>> r.tier.tolist(), r.grade.tolist(), r.cost.tolist()
        ([0, 1], [0, 1], [1.0, 11.0])
    """
    ps, cs = check_tiers(probs, [np.asarray(c, dtype=np.float64) for c in costs])
    thr = _check_thresholds(thresholds, len(ps))
    n = len(ps[0])
    tier = np.full(n, len(ps) - 1, dtype=np.int64)
    open_ = np.ones(n, dtype=bool)
    cost = np.zeros(n)
    for t, p in enumerate(ps):
        cost += np.where(open_, cs[t], 0.0)
        if t == len(ps) - 1:
            break
        take = open_ & (decided_confidence(p, decision) >= thr[t])
        tier[take] = t
        open_ &= ~take
    stacked = np.stack(ps)  # (T, n, K)
    decided = stacked[tier, np.arange(n)]
    grade, conf = decide(decided, decision)
    return Routing(grade=grade, confidence=conf, tier=tier, cost=cost, probs=decided)


def operating_point(
    y: np.ndarray,
    grade: np.ndarray,
    tier: np.ndarray,
    cost: np.ndarray,
    top_tier_cost: np.ndarray,
    n_tiers: int,
    n_grades: int,
    thresholds: Sequence[float] | None = None,
) -> OperatingPoint:
    """The :class:`OperatingPoint` of routed pairs (``grade``, ``tier``, ``cost`` per pair) against ``y``."""
    m = grade_metrics(y, grade, n_grades)
    top = float(np.mean(top_tier_cost))
    mean_cost = float(np.mean(cost))
    shares = np.bincount(tier, minlength=n_tiers) / max(len(tier), 1)
    return OperatingPoint(
        accuracy=m["accuracy"],
        macro_f1=m["macro_f1"],
        qwk=m["qwk"],
        mean_cost=mean_cost,
        relative_cost=mean_cost / top if top > 0 else math.nan,
        shares=tuple(float(s) for s in shares),
        n_pairs=len(y),
        thresholds=None if thresholds is None else tuple(float(t) for t in thresholds),
    )


def simulate_cascade(
    probs: Sequence[np.ndarray], costs: Sequence[np.ndarray], y: np.ndarray, thresholds: Sequence[float],
    decision: str = DEFAULT_DECISION,
) -> OperatingPoint:
    """Accuracy, macro-F1, QWK, mean cost, relative cost and per-tier shares of one threshold vector.

    Example:
        >>> p0 = np.array([[0.9, 0.1], [0.6, 0.4]]); p1 = np.array([[0.2, 0.8], [0.3, 0.7]])
        >>> simulate_cascade([p0, p1], [1.0, 10.0], np.array([0, 1]), [0.8]).shares
        (0.5, 0.5)
    """
    ps, cs = check_tiers(probs, [np.asarray(c, dtype=np.float64) for c in costs])
    g = check_grades(y, ps[0].shape[1], len(ps[0]))
    r = route(ps, cs, thresholds, decision)
    return operating_point(g, r.grade, r.tier, r.cost, cs[-1], len(ps), ps[0].shape[1], thresholds)


def single_tier_points(
    probs: Sequence[np.ndarray], costs: Sequence[np.ndarray], y: np.ndarray, decision: str = DEFAULT_DECISION
) -> list[OperatingPoint]:
    """Each tier alone: every pair sent straight to tier ``t`` (cost: that tier's only)."""
    ps, cs = check_tiers(probs, [np.asarray(c, dtype=np.float64) for c in costs])
    g = check_grades(y, ps[0].shape[1], len(ps[0]))
    n, T = len(g), len(ps)
    return [
        operating_point(g, decided_grade(p, decision), np.full(n, t), c, cs[-1], T, p.shape[1])
        for t, (p, c) in enumerate(zip(ps, cs))
    ]


def threshold_grid(confidence: np.ndarray, n_grid: int = DEFAULT_GRID) -> np.ndarray:
    """Candidate thresholds for one tier: ``n_grid`` quantiles of its confidence, plus 0 (all) and inf (none).

    The quantiles are observed confidences (``inverted_cdf``), so each candidate accepts a
    different set of calib pairs. Sorted ascending.
    """
    if n_grid < 1:
        raise ValueError(f"n_grid must be >= 1, got {n_grid}")
    conf = np.asarray(confidence, dtype=np.float64)
    qs = np.quantile(conf, np.linspace(0.0, 1.0, n_grid), method="inverted_cdf") if conf.size else np.array([])
    return np.unique(np.concatenate([[ACCEPT_ALL], qs, [ACCEPT_NONE]]))


@dataclass(frozen=True)
class _Grid:
    """Totals over every combination of thresholds: axes ``(G_0, ..., G_{T-2})``."""

    thresholds: list[np.ndarray]
    correct: np.ndarray
    cost: np.ndarray
    decided: np.ndarray  # (T, G_0, ..., G_{T-2})
    n_pairs: int

    def combination(self, flat_index: int) -> tuple[float, ...]:
        idx = np.unravel_index(flat_index, self.correct.shape)
        return tuple(float(self.thresholds[t][i]) for t, i in enumerate(idx))


def _evaluate_grid(
    ps: list[np.ndarray], cs: list[np.ndarray], y: np.ndarray, n_grid: int, decision: str = DEFAULT_DECISION
) -> _Grid:
    # The products are small (tens of rows by thousands of pairs): one BLAS thread does them in
    # milliseconds, while OpenBLAS's threads on a busy machine spin and were measured 100x
    # slower (2 cores, load 5: 0.55 s against 5 ms for 3 tiers). threadpoolctl is a dependency
    # of scikit-learn.
    with threadpool_limits(limits=1, user_api="blas"):
        return _grid_totals(ps, cs, y, n_grid, decision)


def _grid_totals(
    ps: list[np.ndarray], cs: list[np.ndarray], y: np.ndarray, n_grid: int, decision: str = DEFAULT_DECISION
) -> _Grid:
    """Correct pairs, total cost and decided pairs per tier for every threshold combination.

    With ``A_t[j]`` the pairs tier ``t`` accepts at its ``j``-th threshold and ``R`` the pairs
    that reach a tier, each total is a sum over pairs of products of per-tier masks; the
    products over earlier tiers (``R``, flattened over their thresholds) are built once and
    each tier's terms are one matrix product ``R @ X.T``. The last thresholded tier's ``R`` is
    never expanded, so the largest array is (combinations of all but the last two tiers) x n.
    """
    n, T = len(y), len(ps)
    decided_ = [decide(p, decision) for p in ps]
    correct = [(grade == y).astype(np.float64) for grade, _ in decided_]
    conf = [c for _, c in decided_]
    if T == 1:
        return _Grid([], np.array(correct[0].sum()), np.array(cs[0].sum()), np.array([float(n)]), n)
    grids = [threshold_grid(c, n_grid) for c in conf[:-1]]
    cells = math.prod(len(g) for g in grids[:-1]) * n
    if cells > _MAX_GRID_CELLS:
        raise ValueError(
            f"a grid of {[len(g) for g in grids]} thresholds over {n} pairs is too large; lower n_grid"
        )
    reach = np.ones((1, n))  # rows: combinations of earlier tiers' thresholds
    shape: tuple[int, ...] = ()
    tot_correct = np.zeros(())
    tot_cost = np.zeros(())
    decided: list[np.ndarray] = []
    for t in range(T - 1):
        accept = (conf[t][None, :] >= grids[t][:, None]).astype(np.float64)  # (G_t, n)
        reject = 1.0 - accept
        g_t = len(grids[t])
        new_shape = shape + (g_t,)
        tot_cost = (tot_cost + (reach @ cs[t]).reshape(shape))[..., None]
        tot_correct = tot_correct[..., None] + (reach @ (accept * correct[t]).T).reshape(new_shape)
        decided = [d[..., None] for d in decided] + [(reach @ accept.T).reshape(new_shape)]
        if t < T - 2:
            reach = (reach[:, None, :] * reject[None, :, :]).reshape(-1, n)
        else:  # the last tier: everything that reaches it, without expanding ``reach``
            tot_cost = tot_cost + (reach @ (reject * cs[-1]).T).reshape(new_shape)
            tot_correct = tot_correct + (reach @ (reject * correct[-1]).T).reshape(new_shape)
            decided.append((reach @ reject.T).reshape(new_shape))
        shape = new_shape
    full = tuple(len(g) for g in grids)
    return _Grid(
        thresholds=grids,
        correct=np.broadcast_to(tot_correct, full).copy(),
        cost=np.broadcast_to(tot_cost, full).copy(),
        decided=np.stack([np.broadcast_to(d, full) for d in decided]),
        n_pairs=n,
    )


def _pick(grid: _Grid, mode: str, target: float | None, budget: float | None) -> tuple[int, bool]:
    acc = grid.correct.ravel() / grid.n_pairs
    cost = grid.cost.ravel() / grid.n_pairs
    tol = 1e-12
    if mode == "target-accuracy":
        ok = acc >= target - tol
        # least cost, then most accurate; if none reaches the target: most accurate, then cheapest
        order = np.lexsort((-acc, cost)) if ok.any() else np.lexsort((cost, -acc))
    else:
        ok = cost <= budget + tol
        # most accurate, then cheapest; if nothing fits the budget: cheapest, then most accurate
        order = np.lexsort((cost, -acc)) if ok.any() else np.lexsort((-acc, cost))
    if ok.any():
        order = order[ok[order]]
    return int(order[0]), bool(ok.any())


def _check_mode(mode: str, target: float | None, budget: float | None) -> None:
    if mode not in ROUTING_MODES:
        raise ValueError(f"unknown routing mode {mode!r}; known: {', '.join(ROUTING_MODES)}")
    if mode == "target-accuracy" and (target is None or not 0 <= target <= 1):
        raise ValueError(f"mode target-accuracy needs a target accuracy in [0, 1], got {target}")
    if mode == "budget" and (budget is None or budget < 0):
        raise ValueError(f"mode budget needs a budget (mean cost per pair) >= 0, got {budget}")


def search_thresholds(
    probs: Sequence[np.ndarray],
    costs: Sequence[np.ndarray],
    y: np.ndarray,
    mode: str = "target-accuracy",
    target: float | None = None,
    budget: float | None = None,
    n_grid: int = DEFAULT_GRID,
    decision: str = DEFAULT_DECISION,
) -> ThresholdChoice:
    """Choose the thresholds on calib pairs.

    Args:
        probs, costs: per tier, calibrated probabilities and cost per pair (same pairs).
        y: human grades.
        mode: ``target-accuracy`` (the least mean cost with accuracy >= ``target``) or
            ``budget`` (the best accuracy with mean cost <= ``budget``).
        n_grid: quantiles of each tier's confidence tried (plus accept-all and accept-none).
        decision: the decision rule (accuracy and confidence are those of the grade it gives).

    Returns:
        A :class:`ThresholdChoice`; ``feasible`` says whether the constraint was met.

    Example:
        >>> choice = search_thresholds(calibrated, costs, y, "budget", budget=2.5)   # doctest: +SKIP
        >>> choice.thresholds, choice.point.accuracy                               # doctest: +SKIP
        ((0.71, 0.64), 0.83)
    """
    _check_mode(mode, target, budget)
    ps, cs = check_tiers(probs, [np.asarray(c, dtype=np.float64) for c in costs])
    g = check_grades(y, ps[0].shape[1], len(ps[0]))
    if len(g) == 0:
        raise ValueError("threshold search needs at least one calib pair")
    grid = _evaluate_grid(ps, cs, g, n_grid, decision)
    best, feasible = _pick(grid, mode, target, budget)
    thresholds = grid.combination(best)
    return ThresholdChoice(
        thresholds=thresholds,
        feasible=feasible,
        point=simulate_cascade(ps, cs, g, thresholds, decision),
        mode=mode,
        target=target if mode == "target-accuracy" else None,
        budget=budget if mode == "budget" else None,
    )


def cost_accuracy_frontier(
    probs: Sequence[np.ndarray], costs: Sequence[np.ndarray], y: np.ndarray, n_grid: int = DEFAULT_GRID,
    decision: str = DEFAULT_DECISION,
) -> Frontier:
    """The Pareto frontier of mean cost and accuracy over the threshold grid (by increasing cost).

    Example:
        >>> f = cost_accuracy_frontier(calibrated, costs, y)     # doctest: +SKIP
        >>> bool(np.all(np.diff(f.accuracy) > 0))                 # doctest: +SKIP
        True
    """
    ps, cs = check_tiers(probs, [np.asarray(c, dtype=np.float64) for c in costs])
    g = check_grades(y, ps[0].shape[1], len(ps[0]))
    if len(g) == 0:
        raise ValueError("the frontier needs at least one calib pair")
    grid = _evaluate_grid(ps, cs, g, n_grid, decision)
    acc = grid.correct.ravel() / grid.n_pairs
    cost = grid.cost.ravel() / grid.n_pairs
    order = np.lexsort((-acc, cost))  # by cost, the more accurate first among equal costs
    best_before = np.concatenate([[-np.inf], np.maximum.accumulate(acc[order])[:-1]])
    idx = order[acc[order] > best_before + 1e-12]  # strictly more accurate than everything cheaper
    decided = grid.decided.reshape(len(ps), -1)[:, idx].T / grid.n_pairs
    thresholds = np.array([grid.combination(i) for i in idx], dtype=np.float64).reshape(len(idx), len(ps) - 1)
    return Frontier(mean_cost=cost[idx], accuracy=acc[idx], thresholds=thresholds, shares=decided)
