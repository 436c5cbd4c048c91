"""Classifier heads' outputs to class probabilities, and the tier model-folder descriptor.

A fine-tuned tier's model folder holds ``relforge_tier.json`` (:class:`TierDescriptor`) saying
which backend loads it and which head it has:

- ``softmax``: one logit per grade;
- ``ordinal``: ``n_grades - 1`` cumulative logits, ``logit_k`` for P(grade > k) (CORAL,
  Cao et al. 2020), which keeps the grades' order.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel

from relforge.grades import GradeScale

DESCRIPTOR = "relforge_tier.json"


class TierDescriptor(BaseModel):
    """What a tier model folder is and how to read its outputs."""

    backend: Literal["cross-encoder", "causal-lm", "probe", "bi-encoder"]
    head: Literal["softmax", "ordinal", "grade-tokens"] = "softmax"
    grade_scale: GradeScale
    base_model: str = ""
    prompt: str | None = None
    max_length: int | None = None  # tokens per pair the model was fine-tuned at (scoring reads the same)

    def save(self, folder: str | Path) -> Path:
        path = Path(folder) / DESCRIPTOR
        path.write_text(self.model_dump_json(indent=2), encoding="utf-8")
        return path

    @classmethod
    def load(cls, folder: str | Path) -> TierDescriptor | None:
        path = Path(folder) / DESCRIPTOR
        if not path.is_file():
            return None
        return cls.model_validate(json.loads(path.read_text(encoding="utf-8")))


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax, numerically stable."""
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return (e / e.sum(axis=-1, keepdims=True)).astype(np.float32)


def ordinal_to_probs(cum_logits: np.ndarray) -> np.ndarray:
    """Class probabilities from cumulative logits ``(n, K-1)`` for P(grade > k).

    The exceedance probabilities are made non-increasing in ``k`` (a running minimum), so the
    class probabilities are never negative even when a head's thresholds cross.

    Example:
        >>> ordinal_to_probs(np.array([[10.0, -10.0]])).round(3).tolist()
        [[0.0, 1.0, 0.0]]
    """
    exceed = 1.0 / (1.0 + np.exp(-np.asarray(cum_logits, dtype=np.float64)))
    exceed = np.minimum.accumulate(exceed, axis=1)
    n = exceed.shape[0]
    upper = np.concatenate([np.ones((n, 1)), exceed], axis=1)
    lower = np.concatenate([exceed, np.zeros((n, 1))], axis=1)
    probs = np.clip(upper - lower, 0.0, 1.0)
    return (probs / probs.sum(axis=1, keepdims=True)).astype(np.float32)


def head_probs(outputs: np.ndarray, head: str) -> np.ndarray:
    """Grade probabilities from a classifier head's raw outputs.

    Args:
        outputs: ``(n, K)`` logits (``softmax``) or ``(n, K - 1)`` cumulative logits (``ordinal``).
        head: ``softmax`` or ``ordinal``.
    """
    outputs = np.asarray(outputs, dtype=np.float64).reshape(len(outputs), -1)
    return ordinal_to_probs(outputs) if head == "ordinal" else softmax(outputs)
