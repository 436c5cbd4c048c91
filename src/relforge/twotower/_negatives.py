"""The false-negative filter of mined hard negatives, and the choice among those that pass.

A mined "negative" (a candidate labelled irrelevant) is often an unjudged relevant item. As
sentence-transformers' ``mine_hard_negatives`` and NV-Retriever (Moreira et al. 2024, "TopK-PercPos")
do, a negative is kept only when the current model scores it clearly below the positive it is
paired with: ``neg < pos - absolute_margin`` and ``neg < pos - relative_margin * |pos|``.

Example:
    >>> import numpy as np
    >>> false_negative_filter(np.float32(0.8), np.array([0.9, 0.77, 0.5]), relative_margin=0.05).tolist()
    [False, False, True]
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


def false_negative_filter(
    positive_score: float | np.ndarray,
    negative_scores: np.ndarray,
    relative_margin: float | None = 0.05,
    absolute_margin: float | None = None,
) -> np.ndarray:
    """Which negatives pass: scored below the positive by both margins (each unset: not applied).

    Args:
        positive_score: the model's similarity of the query and its positive.
        negative_scores: the similarities of the query and each candidate negative.
        relative_margin: a share of the positive's score magnitude the negative must stay below it.
        absolute_margin: a similarity margin the negative must stay below it.

    Returns:
        A boolean mask over ``negative_scores``.
    """
    neg = np.asarray(negative_scores, dtype=np.float64)
    pos = np.asarray(positive_score, dtype=np.float64)
    keep = np.ones(neg.shape, dtype=bool)
    if absolute_margin is not None:
        keep &= neg < pos - absolute_margin
    if relative_margin is not None:
        keep &= neg < pos - relative_margin * np.abs(pos)
    return keep


@dataclass
class NegativeStats:
    """What the filter did in one stage."""

    positives: int = 0
    candidates: int = 0
    filtered_out: int = 0
    chosen: int = 0
    filled_random: int = 0
    per_positive_short: int = field(default=0)

    def as_dict(self) -> dict[str, int | float]:
        d = dict(self.__dict__)
        d["filtered_share"] = round(self.filtered_out / self.candidates, 4) if self.candidates else 0.0
        return d


def choose_negatives(
    positive_score: float,
    candidate_rows: np.ndarray,
    candidate_scores: np.ndarray,
    n: int,
    *,
    relative_margin: float | None,
    absolute_margin: float | None,
    strategy: str,
    rng: np.random.Generator,
    stats: NegativeStats,
) -> np.ndarray:
    """Up to ``n`` of ``candidate_rows`` that pass the filter: the most similar (``top``) or random ones."""
    stats.candidates += len(candidate_rows)
    if len(candidate_rows) == 0 or n == 0:
        return np.zeros(0, dtype=np.int64)
    keep = false_negative_filter(positive_score, candidate_scores, relative_margin, absolute_margin)
    stats.filtered_out += int((~keep).sum())
    rows, scores = candidate_rows[keep], candidate_scores[keep]
    if strategy == "top":
        order = np.argsort(-scores, kind="stable")[:n]
    else:
        order = rng.permutation(len(rows))[:n]
    chosen = rows[order]
    stats.chosen += len(chosen)
    return chosen
