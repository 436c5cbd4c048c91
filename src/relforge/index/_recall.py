"""Recall of an index against exact search, measured on a sample of queries."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class RecallReport:
    """Recall@``k`` of an index against exact search.

    Args:
        k: the cutoff.
        recall: mean over the sample of ``|found ∩ exact| / |exact|`` in the top ``k``.
        sample: queries in the sample (0: not measured, exact by construction).
        source: ``queries`` (given query vectors), ``items`` (item vectors as queries, each
            one's own row left out of both lists) or ``exact`` (the index is exact search).
        seconds: the time the measurement took.
    """

    k: int
    recall: float
    sample: int
    source: str
    seconds: float = 0.0

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def recall_at_k(found: np.ndarray, truth: np.ndarray, k: int) -> float:
    """Mean recall@``k`` of ``found`` rows against ``truth`` rows (``-1`` entries ignored).

    Args:
        found: ``(nq, >= k)`` row ids from the index under test, best first.
        truth: ``(nq, >= k)`` row ids from exact search, best first.
        k: the cutoff.

    Returns:
        The mean over queries with at least one true neighbour (1.0 when there are none).

    Example:
        >>> recall_at_k(np.array([[1, 2, 9]]), np.array([[1, 2, 3]]), 3)
        0.6666666666666666
    """
    found, truth = np.asarray(found)[:, :k], np.asarray(truth)[:, :k]
    values = []
    for f, t in zip(found, truth):
        t = t[t >= 0]
        if len(t):
            values.append(len(np.intersect1d(f[f >= 0], t)) / len(t))
    return float(np.mean(values)) if values else 1.0


def drop_self(rows: np.ndarray, self_rows: np.ndarray, k: int) -> np.ndarray:
    """``rows`` with each query's own row removed, cut to ``k`` columns (``-1`` padded)."""
    out = np.full((rows.shape[0], k), -1, dtype=np.int64)
    for i, (row, own) in enumerate(zip(rows, self_rows)):
        kept = row[row != own][:k]
        out[i, : len(kept)] = kept
    return out
