"""Guaranteed mode: thresholds with a finite-sample guarantee of agreement with human grades.

Fixed-sequence testing as in Jung, Brahman and Choi, "Trust or Escalate: LLM Judges with
Provable Guarantees for Human Agreement" (2024, cascaded selective evaluation). For one tier,
with ``alpha = 1 - target agreement``:

1. candidate thresholds, strict to lenient, chosen from the confidences alone (no labels);
2. for each, the accepted calib pairs (confidence >= threshold), their disagreements ``e`` out
   of ``m``, and the exact binomial p-value of H0 "the risk of accepted pairs exceeds alpha":
   ``P(Binomial(m, alpha) <= e)``;
3. test in sequence at level ``delta``; stop at the first non-rejection. The chosen threshold
   is the most lenient rejected one (``None`` if the first is not rejected: the tier accepts
   nothing).

Then, over calib draws, ``P(risk of the pairs the chosen threshold accepts > alpha) <= delta``.

Where the sequence starts matters for power, not for validity (any order fixed without the
labels is valid): a candidate that accepts few pairs is rarely rejected even when its risk is
low, and its non-rejection ends the sequence. A candidate accepting fewer than
:func:`min_accepted` pairs can never be rejected (even zero disagreements are not enough).
So the strictest candidate accepts :func:`start_accepted` pairs: the fewest ``m`` with which
``floor(plan_risk * m)`` disagreements (``plan_risk`` defaults to ``alpha / 2``) would be
rejected; from there the candidates step evenly in accepted count to all pairs. ``plan_risk=0`` starts at
``min_accepted``, where only a flawless top is certified.

In a cascade each tier is tested on the calib pairs that reach it; unlike plain routing, the
last tier also has a tested threshold, and the pairs no tier accepts are abstained on (they
go to human review).

Example:
    >>> gc = guaranteed_cascade(calibrated, y, target_agreement=0.9, delta=0.1)   # doctest: +SKIP
    >>> [t.threshold for t in gc.tiers], gc.coverage                              # doctest: +SKIP
    ([0.93, 0.88, None], 0.41)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from scipy.stats import binom

from relforge.calibrate._arrays import check_grades, check_tiers
from relforge.calibrate._decision import DEFAULT_DECISION, decide, decided_confidence

DEFAULT_CANDIDATES = 50
#: the tier index :func:`guaranteed_routing` gives a pair no tier accepts (human review)
ABSTAIN = -1


def binomial_p_value(errors: np.ndarray | int, accepted: np.ndarray | int, alpha: float) -> np.ndarray | float:
    """``P(Binomial(accepted, alpha) <= errors)``: the p-value of H0 "risk > alpha" after ``errors`` in ``accepted``.

    Example:
        >>> round(float(binomial_p_value(0, 22, 0.1)), 4)
        0.0985
    """
    return binom.cdf(errors, accepted, alpha)


def min_accepted(alpha: float, delta: float) -> int:
    """The fewest accepted pairs with which zero disagreements reject H0 at level ``delta``.

    Example:
        >>> min_accepted(0.1, 0.1)
        22
    """
    return max(1, math.ceil(math.log(delta) / math.log1p(-alpha) - 1e-12))


def start_accepted(alpha: float, delta: float, n: int, plan_risk: float | None = None) -> int | None:
    """The accepted count of the strictest candidate: the fewest pairs (<= n) with which ``plan_risk`` rejects.

    That is the smallest ``m`` with ``P(Binomial(m, alpha) <= floor(plan_risk * m)) <= delta``;
    ``plan_risk`` defaults to ``alpha / 2``. Where no ``m <= n`` qualifies, :func:`min_accepted`
    (if ``n`` reaches it); ``None`` when ``n`` is below even that.

    Example:
        >>> start_accepted(0.1, 0.1, 1000), start_accepted(0.1, 0.1, 1000, plan_risk=0.0)
        (38, 22)
    """
    _check_levels(alpha, delta)
    lowest = min_accepted(alpha, delta)
    if n < lowest:
        return None
    plan = alpha / 2 if plan_risk is None else plan_risk
    if not 0 <= plan < alpha:
        raise ValueError(f"plan_risk must be in [0, alpha), got {plan}")
    m = np.arange(lowest, n + 1)
    ok = np.flatnonzero(binom.cdf(np.floor(plan * m + 1e-9), m, alpha) <= delta)
    return int(m[ok[0]]) if ok.size else lowest


def _check_levels(alpha: float, delta: float) -> None:
    if not 0 < alpha < 1:
        raise ValueError(f"alpha (1 - target agreement) must be in (0, 1), got {alpha}")
    if not 0 < delta < 1:
        raise ValueError(f"delta must be in (0, 1), got {delta}")


def candidate_thresholds(
    confidence: np.ndarray,
    alpha: float,
    delta: float,
    n_candidates: int = DEFAULT_CANDIDATES,
    plan_risk: float | None = None,
) -> np.ndarray:
    """Candidate thresholds, strict to lenient, from the confidences alone.

    The ``j``-th candidate is the confidence of the pair ranked ``m_j`` (descending), with
    ``m_j`` evenly spaced from :func:`start_accepted` to all pairs; ties collapse. Empty when
    there are fewer pairs than :func:`min_accepted`.
    """
    conf = np.sort(np.asarray(confidence, dtype=np.float64))[::-1]
    lo = start_accepted(alpha, delta, len(conf), plan_risk)
    if lo is None:
        return np.array([])
    counts = np.unique(np.round(np.linspace(lo, len(conf), max(1, n_candidates))).astype(np.int64))
    thresholds = conf[counts - 1]
    return thresholds[np.concatenate([[True], np.diff(thresholds) < 0])]


@dataclass(frozen=True)
class TierGuarantee:
    """One tier's fixed-sequence result.

    Attributes:
        threshold: the most lenient rejected candidate, or ``None`` (the tier accepts nothing).
        guaranteed: whether any threshold met the guarantee (``threshold is not None``).
        n_reached: calib pairs that reached the tier (were tested on).
        n_accepted: of those, accepted at ``threshold``.
        coverage: ``n_accepted`` over all calib pairs of the cascade.
        agreement: empirical agreement of the accepted pairs (``nan`` when none).
        p_value: the chosen threshold's p-value (``nan`` when none).
        n_tested: candidates tested before the sequence stopped (rejections + the first non-rejection).
    """

    threshold: float | None
    guaranteed: bool
    n_reached: int
    n_accepted: int
    coverage: float
    agreement: float
    p_value: float
    n_tested: int

    def as_dict(self) -> dict[str, object]:
        d = asdict(self)
        return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in d.items()}


def fixed_sequence_threshold(
    confidence: np.ndarray,
    correct: np.ndarray,
    alpha: float,
    delta: float,
    n_candidates: int = DEFAULT_CANDIDATES,
    n_total: int | None = None,
    plan_risk: float | None = None,
) -> TierGuarantee:
    """Fixed-sequence testing for one tier on the calib pairs that reach it.

    Args:
        confidence: (m,) the tier's calibrated confidence on the pairs that reach it.
        correct: (m,) whether its decided grade equals the human grade.
        alpha: the tolerated risk, ``1 - target agreement``.
        delta: the error level of the guarantee.
        n_total: the pairs coverage is a share of (default: ``m``).
        plan_risk: where the sequence starts (see :func:`start_accepted`).

    Example:
        >>> conf = np.linspace(0.3, 1, 200); ok = conf > 0.4
        >>> fixed_sequence_threshold(conf, ok, alpha=0.1, delta=0.1).guaranteed
        True
    """
    _check_levels(alpha, delta)
    conf = np.asarray(confidence, dtype=np.float64)
    ok = np.asarray(correct, dtype=bool)
    if conf.shape != ok.shape or conf.ndim != 1:
        raise ValueError("confidence and correct must be (m,) arrays of one length")
    total = len(conf) if n_total is None else n_total
    candidates = candidate_thresholds(conf, alpha, delta, n_candidates, plan_risk)
    if candidates.size == 0:
        return TierGuarantee(None, False, len(conf), 0, 0.0, math.nan, math.nan, 0)
    accepted = conf[None, :] >= candidates[:, None]
    n_acc = accepted.sum(axis=1)
    errors = (accepted & ~ok[None, :]).sum(axis=1)
    p = binomial_p_value(errors, n_acc, alpha)
    not_rejected = np.flatnonzero(p > delta)
    stop = int(not_rejected[0]) if not_rejected.size else len(candidates)
    n_tested = min(stop + 1, len(candidates))
    if stop == 0:
        return TierGuarantee(None, False, len(conf), 0, 0.0, math.nan, math.nan, n_tested)
    j = stop - 1
    m = int(n_acc[j])
    return TierGuarantee(
        threshold=float(candidates[j]),
        guaranteed=True,
        n_reached=len(conf),
        n_accepted=m,
        coverage=m / total if total else 0.0,
        agreement=1.0 - float(errors[j]) / m,
        p_value=float(p[j]),
        n_tested=n_tested,
    )


@dataclass(frozen=True)
class GuaranteedCascade:
    """Guaranteed thresholds for every tier of a cascade.

    Attributes:
        tiers: per tier, its :class:`TierGuarantee` (tested on the calib pairs that reach it).
        target_agreement, alpha, delta: what was asked (``alpha = 1 - target_agreement``).
        coverage: share of calib pairs some tier accepts; the rest are abstained on.
        agreement: empirical agreement of all accepted calib pairs (``nan`` when none).
        guaranteed: whether any tier met the guarantee.
    """

    tiers: list[TierGuarantee]
    target_agreement: float
    alpha: float
    delta: float
    coverage: float
    agreement: float
    guaranteed: bool

    @property
    def thresholds(self) -> list[float | None]:
        return [t.threshold for t in self.tiers]

    def as_dict(self) -> dict[str, object]:
        return {
            "tiers": [t.as_dict() for t in self.tiers],
            "target_agreement": self.target_agreement,
            "alpha": self.alpha,
            "delta": self.delta,
            "coverage": self.coverage,
            "abstained": 1.0 - self.coverage,
            "agreement": None if math.isnan(self.agreement) else self.agreement,
            "guaranteed": self.guaranteed,
        }


def guaranteed_routing(
    probs: Sequence[np.ndarray], thresholds: Sequence[float | None], decision: str = DEFAULT_DECISION
) -> np.ndarray:
    """Per pair, the tier that accepts it under guaranteed thresholds, or ``ABSTAIN`` (-1).

    ``None`` thresholds accept nothing; the last tier does not accept everything.
    """
    ps, _ = check_tiers(probs)
    if len(thresholds) != len(ps):
        raise ValueError(f"guaranteed mode needs one threshold per tier ({len(ps)}), got {len(thresholds)}")
    tier = np.full(len(ps[0]), ABSTAIN, dtype=np.int64)
    for t, (p, thr) in enumerate(zip(ps, thresholds)):
        if thr is not None:
            tier[(tier == ABSTAIN) & (decided_confidence(p, decision) >= thr)] = t
    return tier


def guaranteed_cascade(
    probs: Sequence[np.ndarray],
    y: np.ndarray,
    target_agreement: float,
    delta: float = 0.1,
    n_candidates: int = DEFAULT_CANDIDATES,
    plan_risk: float | None = None,
    decision: str = DEFAULT_DECISION,
) -> GuaranteedCascade:
    """Fixed-sequence thresholds for each tier in turn, each tested on the calib pairs that reach it.

    Args:
        probs: per tier, (n, K) calibrated class probabilities of the same calib pairs, cheapest first.
        y: (n,) human grades.
        target_agreement: the agreement the accepted pairs must reach (``alpha = 1 - target``).
        delta: the probability, over calib draws, that a tier's guarantee fails.
        n_candidates, plan_risk: the candidate sequence (see :func:`candidate_thresholds`).
        decision: the rule that gives each tier's grade and its confidence.

    Example:
        >>> gc = guaranteed_cascade([p1, p2], y, target_agreement=0.85)   # doctest: +SKIP
        >>> gc.tiers[0].coverage, gc.tiers[0].agreement                   # doctest: +SKIP
        (0.38, 0.91)
    """
    ps, _ = check_tiers(probs)
    n = len(ps[0])
    g = check_grades(y, ps[0].shape[1], n)
    alpha = 1.0 - target_agreement
    _check_levels(alpha, delta)
    reached = np.ones(n, dtype=bool)
    accepted_ok = accepted_all = 0
    results = []
    for p in ps:
        grade, conf = decide(p, decision)
        ok = grade == g
        res = fixed_sequence_threshold(
            conf[reached], ok[reached], alpha, delta, n_candidates, n_total=n, plan_risk=plan_risk
        )
        results.append(res)
        if res.threshold is not None:
            take = reached & (conf >= res.threshold)
            accepted_all += int(take.sum())
            accepted_ok += int((take & ok).sum())
            reached &= ~take
    return GuaranteedCascade(
        tiers=results,
        target_agreement=float(target_agreement),
        alpha=alpha,
        delta=float(delta),
        coverage=accepted_all / n if n else 0.0,
        agreement=accepted_ok / accepted_all if accepted_all else math.nan,
        guaranteed=any(r.guaranteed for r in results),
    )
