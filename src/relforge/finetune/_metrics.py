"""Agreement with human grades: accuracy, macro-F1, quadratic-weighted kappa, and query-level bootstrap CIs."""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.metrics import accuracy_score, cohen_kappa_score, f1_score

METRICS = ("accuracy", "macro_f1", "qwk")


def grade_metrics(y_true: np.ndarray, y_pred: np.ndarray, n_grades: int) -> dict[str, float]:
    """Accuracy, macro-F1 (over all ``n_grades`` grades) and quadratic-weighted Cohen's kappa.

    Kappa is 0 where it is undefined (one grade only in both truth and prediction).

    Example:
        >>> grade_metrics(np.array([0, 1, 2, 2]), np.array([0, 1, 2, 1]), 3)["accuracy"]
        0.75
    """
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    labels = list(range(n_grades))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        qwk = cohen_kappa_score(y_true, y_pred, labels=labels, weights="quadratic")
    return {
        "accuracy": float(accuracy_score(y_true, y_pred)),
        "macro_f1": float(f1_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)),
        "qwk": 0.0 if not np.isfinite(qwk) else float(qwk),
    }


def metrics_from_confusion(cm: np.ndarray) -> dict[str, float]:
    """:func:`grade_metrics` from a confusion matrix ``cm[true, pred]`` (the same formulas as sklearn)."""
    cm = np.asarray(cm, dtype=np.float64)
    n = cm.sum()
    k = cm.shape[0]
    tp = np.diag(cm)
    pred, true = cm.sum(axis=0), cm.sum(axis=1)
    denom = pred + true
    f1 = np.where(denom > 0, 2 * tp / np.where(denom > 0, denom, 1), 0.0)
    grid = np.arange(k)
    w = (grid[:, None] - grid[None, :]) ** 2 / (k - 1) ** 2
    expected = np.outer(true, pred) / n if n else np.zeros_like(cm)
    den = (w * expected).sum()
    qwk = 1.0 - (w * cm).sum() / den if den > 0 else 0.0
    return {"accuracy": float(tp.sum() / n) if n else 0.0, "macro_f1": float(f1.mean()), "qwk": float(qwk)}


def bootstrap_by_query(
    query_ids: np.ndarray,
    y_true: np.ndarray,
    y_pred: np.ndarray,
    n_grades: int,
    reps: int = 1000,
    seed: int = 13,
    level: float = 0.95,
) -> dict[str, tuple[float, float]]:
    """Percentile bootstrap CIs of :func:`grade_metrics`, resampling whole queries with replacement.

    Pairs of one query are not independent (same query, similar items), so the unit of
    resampling is the query. Each replicate sums the per-query confusion matrices of the
    queries drawn.

    Returns:
        ``{metric: (low, high)}``.

    Example:
        >>> ci = bootstrap_by_query(qids, truth, pred, 4)                # doctest: +SKIP
        >>> ci["qwk"]                                                    # doctest: +SKIP
        (0.21, 0.38)
    """
    y_true = np.asarray(y_true, dtype=np.int64)
    y_pred = np.asarray(y_pred, dtype=np.int64)
    _, inverse = np.unique(np.asarray(query_ids), return_inverse=True)
    n_queries = int(inverse.max()) + 1
    per_query = np.zeros((n_queries, n_grades, n_grades))
    np.add.at(per_query, (inverse, y_true, y_pred), 1.0)
    rng = np.random.default_rng(seed)
    draws = {m: np.empty(reps) for m in METRICS}
    for r in range(reps):
        counts = np.bincount(rng.integers(0, n_queries, size=n_queries), minlength=n_queries)
        values = metrics_from_confusion(np.tensordot(counts, per_query, axes=1))
        for m in METRICS:
            draws[m][r] = values[m]
    alpha = (1.0 - level) / 2.0
    return {m: (float(np.quantile(draws[m], alpha)), float(np.quantile(draws[m], 1 - alpha))) for m in METRICS}
