"""Paired comparison of two calibrations on the same pairs: per-class isotonic against the best baseline.

Both sets of probabilities should be out-of-fold (:func:`crossfit_calibrate`), so that neither
method is scored on the pairs it was fitted on. The difference is ``candidate - baseline``:
positive is better for accuracy, negative is better for NLL.

- a **paired bootstrap over queries**: each replicate draws queries with replacement and
  recomputes both methods on the same draw, so the CI of the difference keeps the pairing;
  the two-sided p-value is ``2 * min(P*(diff <= 0), P*(diff >= 0))`` over the replicates
  (with the usual +1 in numerator and denominator, so it is never 0);
- an **exact McNemar test** on per-pair correctness (scipy's ``binomtest`` on the pairs where
  exactly one method is right), a second opinion that ignores the query clustering.

Example:
    >>> cmp = compare_to_best_baseline(groups, y, {"none": oof0, "temperature": oof1,
    ...                                            "per-class-isotonic": oof2})   # doctest: +SKIP
    >>> cmp.baseline, cmp.accuracy.difference, cmp.accuracy.p_value               # doctest: +SKIP
    ('temperature', 0.021, 0.03)
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass

import numpy as np
from scipy.stats import binomtest

from relforge.calibrate._arrays import check_grades, check_groups, check_probs
from relforge.calibrate._bootstrap import percentile_ci, query_mean_draws
from relforge.calibrate._decision import DEFAULT_DECISION, decided_grade
from relforge.calibrate._metrics import negative_log_likelihood

CANDIDATE = "per-class-isotonic"


@dataclass(frozen=True)
class Difference:
    """``candidate - baseline`` of one metric: the point estimate, its CI, and a two-sided p-value."""

    difference: float
    ci: tuple[float, float]
    p_value: float


@dataclass(frozen=True)
class McNemar:
    """Exact McNemar test: ``candidate_only`` pairs right only under the candidate, ``baseline_only`` the reverse."""

    candidate_only: int
    baseline_only: int
    p_value: float


@dataclass(frozen=True)
class PairedComparison:
    """A candidate calibration against a baseline on the same pairs."""

    candidate: str
    baseline: str
    accuracy: Difference
    nll: Difference
    mcnemar: McNemar
    n_pairs: int
    n_queries: int
    reps: int

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def _per_pair_nll(p: np.ndarray, y: np.ndarray) -> np.ndarray:
    # the per-pair terms of sklearn's log_loss (clipped the same way), for the paired bootstrap
    eps = np.finfo(p.dtype).eps
    return -np.log(np.clip(p[np.arange(len(y)), y], eps, 1.0))


def _two_sided_p(draws: np.ndarray) -> float:
    reps = len(draws)
    below, above = int(np.sum(draws <= 0)), int(np.sum(draws >= 0))
    return float(min(1.0, 2.0 * (min(below, above) + 1) / (reps + 1)))


def mcnemar_exact(correct_candidate: np.ndarray, correct_baseline: np.ndarray) -> McNemar:
    """Exact McNemar test on per-pair correctness (two-sided binomial test on the discordant pairs).

    Example:
        >>> mcnemar_exact(np.array([1, 1, 1, 0]), np.array([0, 0, 0, 0])).candidate_only
        3
    """
    a = np.asarray(correct_candidate, dtype=bool)
    b = np.asarray(correct_baseline, dtype=bool)
    only_a, only_b = int(np.sum(a & ~b)), int(np.sum(~a & b))
    p = 1.0 if only_a + only_b == 0 else float(binomtest(only_a, only_a + only_b, 0.5).pvalue)
    return McNemar(candidate_only=only_a, baseline_only=only_b, p_value=p)


def paired_bootstrap(
    groups: np.ndarray,
    y: np.ndarray,
    candidate_probs: np.ndarray,
    baseline_probs: np.ndarray,
    candidate: str = CANDIDATE,
    baseline: str = "baseline",
    reps: int = 2000,
    seed: int = 13,
    level: float = 0.95,
    decision: str = DEFAULT_DECISION,
) -> PairedComparison:
    """Paired bootstrap over queries of the accuracy and NLL differences, plus exact McNemar.

    Args:
        groups: (n,) query ids.
        y: (n,) human grades.
        candidate_probs, baseline_probs: (n, K) calibrated probabilities of the same pairs.
        decision: the rule that turns probabilities into the grade whose agreement is compared.

    Returns:
        A :class:`PairedComparison` (differences are candidate - baseline).
    """
    pa, pb = check_probs(candidate_probs, "candidate_probs"), check_probs(baseline_probs, "baseline_probs")
    if pa.shape != pb.shape:
        raise ValueError(f"the two methods must score the same pairs: shapes {pa.shape} and {pb.shape}")
    g = check_grades(y, pa.shape[1], len(pa))
    q = check_groups(groups, len(pa))
    if len(g) == 0:
        raise ValueError("a paired comparison needs at least one pair")
    right_a, right_b = decided_grade(pa, decision) == g, decided_grade(pb, decision) == g
    per_pair = np.column_stack(
        [right_a.astype(np.float64) - right_b, _per_pair_nll(pa, g) - _per_pair_nll(pb, g)]
    )
    draws = query_mean_draws(q, per_pair, reps=reps, seed=seed)
    acc_diff = float(right_a.mean() - right_b.mean())
    nll_diff = negative_log_likelihood(pa, g) - negative_log_likelihood(pb, g)
    return PairedComparison(
        candidate=candidate,
        baseline=baseline,
        accuracy=Difference(acc_diff, percentile_ci(draws[:, 0], level), _two_sided_p(draws[:, 0])),
        nll=Difference(float(nll_diff), percentile_ci(draws[:, 1], level), _two_sided_p(draws[:, 1])),
        mcnemar=mcnemar_exact(right_a, right_b),
        n_pairs=len(g),
        n_queries=len(np.unique(q)),
        reps=reps,
    )


def compare_to_best_baseline(
    groups: np.ndarray,
    y: np.ndarray,
    probs_by_method: Mapping[str, np.ndarray],
    candidate: str = CANDIDATE,
    select_by: str = "nll",
    reps: int = 2000,
    seed: int = 13,
    level: float = 0.95,
    decision: str = DEFAULT_DECISION,
) -> PairedComparison:
    """The candidate against the best other method on the same (out-of-fold) pairs.

    Args:
        probs_by_method: method name -> (n, K) calibrated probabilities; must hold ``candidate``
            and at least one baseline.
        select_by: how "best baseline" is judged: ``nll`` (lowest) or ``accuracy`` (highest);
            ties go to the first in ``probs_by_method``'s order.

    Example:
        >>> compare_to_best_baseline(groups, y, oof_by_method).baseline   # doctest: +SKIP
        'temperature'
    """
    if candidate not in probs_by_method:
        raise ValueError(f"no probabilities for the candidate {candidate!r}")
    baselines = [m for m in probs_by_method if m != candidate]
    if not baselines:
        raise ValueError("no baseline to compare against")
    if select_by not in ("nll", "accuracy"):
        raise ValueError(f"select_by must be 'nll' or 'accuracy', got {select_by!r}")
    k = check_probs(probs_by_method[candidate]).shape[1]
    g = check_grades(y, k)

    def score(method: str) -> float:
        p = check_probs(probs_by_method[method], method)
        if select_by == "nll":
            return negative_log_likelihood(p, g)
        return -float(np.mean(decided_grade(p, decision) == g))

    best = min(baselines, key=score)
    return paired_bootstrap(
        groups, g, probs_by_method[candidate], probs_by_method[best], candidate, best, reps, seed, level, decision
    )
