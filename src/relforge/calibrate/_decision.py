"""The decision rule: which grade a tier's calibrated class probabilities become, and its confidence.

- ``most-probable``: the grade of largest probability (the argmax). It maximises the expected
  accuracy, and its confidence is the largest probability (top-label confidence).
- ``expected-grade``: the grade nearest the expected grade ``sum_k k p_k``, which minimises the
  expected squared grade error ``sum_k p_k (g - k)^2`` (QWK weighs disagreements by that square).
  Grades keep their order: where a weak tier's calibrated probabilities lean towards the
  majority grade without making another grade most probable, ``most-probable`` gives every pair
  the majority grade (the ordering the tier has is lost: QWK 0), while ``expected-grade`` still
  moves a pair with more weight on low grades down. Its confidence is the probability of the
  grade it gives (below the largest when the two rules differ), so that routing by confidence
  still accepts a tier's label when the label is likely to be right.

The confidence is always the calibrated probability of the decided grade: thresholds, the
guarantee and the ECE of the decided grade mean the same under either rule.

Example:
    >>> p = np.array([[0.1, 0.0, 0.4, 0.5], [0.45, 0.0, 0.0, 0.55]])
    >>> decide(p, "most-probable")[0].tolist(), decide(p, "expected-grade")[0].tolist()
    ([3, 3], [2, 2])
"""

from __future__ import annotations

from typing import get_args

import numpy as np

from relforge.config import DecisionRule

DECISIONS: tuple[str, ...] = get_args(DecisionRule)
DEFAULT_DECISION: DecisionRule = "most-probable"


def decided_grade(probs: np.ndarray, decision: str = DEFAULT_DECISION) -> np.ndarray:
    """Per row of ``probs`` (n, K), the grade ``decision`` gives (int64)."""
    p = np.asarray(probs, dtype=np.float64)
    if decision == "most-probable":
        return p.argmax(axis=1).astype(np.int64)
    if decision == "expected-grade":
        k = p.shape[1]
        total = p.sum(axis=1)
        mean = (p @ np.arange(k, dtype=np.float64)) / np.where(total > 0, total, 1.0)
        # the nearest grade; a mean exactly between two grades goes to the lower one (floor(m + 0.5) would
        # go up): the rule is conservative about relevance
        return np.clip(np.ceil(mean - 0.5), 0, k - 1).astype(np.int64)
    raise ValueError(f"unknown decision rule {decision!r}; expected one of {', '.join(DECISIONS)}")


def decide(probs: np.ndarray, decision: str = DEFAULT_DECISION) -> tuple[np.ndarray, np.ndarray]:
    """``(grade, confidence)`` per row of ``probs`` (n, K): the decided grade and its probability."""
    p = np.asarray(probs, dtype=np.float64)
    grade = decided_grade(p, decision)
    return grade, p[np.arange(len(p)), grade] if len(p) else np.zeros(0)


def decided_confidence(probs: np.ndarray, decision: str = DEFAULT_DECISION) -> np.ndarray:
    """The probability of the decided grade, per row (the top-label confidence under ``most-probable``)."""
    return decide(probs, decision)[1]
