"""Calibration metrics of class probabilities against human grades.

Agreement (accuracy, macro-F1, QWK) is :func:`relforge.finetune.grade_metrics` on the grade the
decision rule gives (:mod:`~relforge.calibrate._decision`; the argmax by default), and the
top-label ECE and reliability bins are those of that grade's probability (its confidence);
Brier and NLL are scikit-learn's ``brier_score_loss`` / ``log_loss``; the ECEs use
**equal-mass bins** (each bin holds the same number of pairs, give or take one), which
scikit-learn's ``calibration_curve(strategy="quantile")`` does not give with the per-bin counts
the ECE weights by (and it merges bins on tied edges), so the binning is done here.

Example:
    >>> m = calibration_metrics(probs, y, n_bins=15)                 # doctest: +SKIP
    >>> sorted(m)                                                    # doctest: +SKIP
    ['accuracy', 'brier', 'classwise_ece', 'ece', 'macro_f1', 'n_pairs', 'nll', 'qwk']
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.metrics import brier_score_loss, log_loss

from relforge.calibrate._arrays import check_grades, check_probs
from relforge.calibrate._decision import DEFAULT_DECISION, decide
from relforge.finetune import grade_metrics

DEFAULT_BINS = 15


@dataclass(frozen=True)
class ReliabilityBins:
    """Reliability-diagram data: per equal-mass bin of top-label confidence.

    Attributes:
        confidence: mean top-label confidence of the bin's pairs.
        accuracy: share of the bin's pairs whose top label is the human grade.
        count: pairs in the bin.
    """

    confidence: np.ndarray
    accuracy: np.ndarray
    count: np.ndarray

    def as_dict(self) -> dict[str, list[float]]:
        return {k: getattr(self, k).tolist() for k in ("confidence", "accuracy", "count")}


def _equal_mass_bins(score: np.ndarray, n_bins: int) -> list[np.ndarray]:
    """Indices of ``score`` sorted ascending, cut into ``min(n_bins, n)`` bins of equal size (+-1)."""
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    order = np.argsort(score, kind="stable")
    return [b for b in np.array_split(order, min(n_bins, len(score))) if b.size]


def _binned_gap(score: np.ndarray, hit: np.ndarray, n_bins: int) -> float:
    """``sum_b (n_b / n) |mean(hit_b) - mean(score_b)|`` over equal-mass bins of ``score``."""
    n = len(score)
    if n == 0:
        return 0.0
    return float(sum(len(b) / n * abs(hit[b].mean() - score[b].mean()) for b in _equal_mass_bins(score, n_bins)))


def reliability_bins(
    probs: np.ndarray, y: np.ndarray, n_bins: int = DEFAULT_BINS, decision: str = DEFAULT_DECISION
) -> ReliabilityBins:
    """Per equal-mass bin of top-label confidence: mean confidence, accuracy and count.

    Example:
        >>> rb = reliability_bins(np.array([[0.9, 0.1], [0.6, 0.4]]), np.array([0, 1]), n_bins=2)
        >>> rb.accuracy.tolist(), rb.count.tolist()
        ([0.0, 1.0], [1, 1])
    """
    p = check_probs(probs)
    g = check_grades(y, p.shape[1], len(p))
    grade, conf = decide(p, decision)
    hit = (grade == g).astype(np.float64)
    bins = _equal_mass_bins(conf, n_bins) if len(p) else []
    return ReliabilityBins(
        confidence=np.array([conf[b].mean() for b in bins]),
        accuracy=np.array([hit[b].mean() for b in bins]),
        count=np.array([len(b) for b in bins], dtype=np.int64),
    )


def expected_calibration_error(
    probs: np.ndarray, y: np.ndarray, n_bins: int = DEFAULT_BINS, decision: str = DEFAULT_DECISION
) -> float:
    """Top-label ECE: the count-weighted mean |accuracy - confidence| over equal-mass confidence bins.

    Example:
        >>> expected_calibration_error(np.array([[0.9, 0.1], [0.6, 0.4]]), np.array([0, 1]), n_bins=2)
        0.35
    """
    p = check_probs(probs)
    g = check_grades(y, p.shape[1], len(p))
    grade, conf = decide(p, decision)
    return _binned_gap(conf, (grade == g).astype(np.float64), n_bins)


def classwise_ece(probs: np.ndarray, y: np.ndarray, n_bins: int = DEFAULT_BINS) -> float:
    """Class-wise ECE: per grade k, the equal-mass-binned gap between P(k) and the share of grade k.

    The mean over grades (each grade's bins are cut on its own probability).
    """
    p = check_probs(probs)
    g = check_grades(y, p.shape[1], len(p))
    return float(np.mean([_binned_gap(p[:, k], (g == k).astype(np.float64), n_bins) for k in range(p.shape[1])]))


def brier_score(probs: np.ndarray, y: np.ndarray) -> float:
    """Multi-class Brier score: mean over pairs of ``sum_k (p_k - [y = k])^2`` (0 best, 2 worst)."""
    p = check_probs(probs)
    g = check_grades(y, p.shape[1], len(p))
    # scale_by_half=False: the sum over all K grades also for K = 2 (sklearn would halve it there)
    return float(brier_score_loss(g, p, labels=list(range(p.shape[1])), scale_by_half=False))


def negative_log_likelihood(probs: np.ndarray, y: np.ndarray) -> float:
    """Mean ``-ln p[y]`` (sklearn's ``log_loss``, which clips probabilities at float eps)."""
    p = check_probs(probs)
    g = check_grades(y, p.shape[1], len(p))
    return float(log_loss(g, p, labels=list(range(p.shape[1]))))


def calibration_metrics(
    probs: np.ndarray, y: np.ndarray, n_bins: int = DEFAULT_BINS, decision: str = DEFAULT_DECISION
) -> dict[str, float]:
    """Everything for one set of probabilities: accuracy, macro-F1, QWK, ECE, class-wise ECE, Brier, NLL.

    Returns:
        ``{"accuracy", "macro_f1", "qwk", "ece", "classwise_ece", "brier", "nll", "n_pairs"}``.

    Example:
        >>> m = calibration_metrics(np.array([[0.8, 0.2], [0.3, 0.7]]), np.array([0, 1]), n_bins=2)
        >>> m["accuracy"], round(m["brier"], 3)
        (1.0, 0.13)
    """
    p = check_probs(probs)
    g = check_grades(y, p.shape[1], len(p))
    if len(p) == 0:
        raise ValueError("calibration metrics need at least one pair")
    out: dict[str, float] = dict(grade_metrics(g, decide(p, decision)[0], p.shape[1]))
    out.update(
        ece=expected_calibration_error(p, g, n_bins, decision),
        classwise_ece=classwise_ece(p, g, n_bins),
        brier=brier_score(p, g),
        nll=negative_log_likelihood(p, g),
        n_pairs=float(len(p)),
    )
    return out
