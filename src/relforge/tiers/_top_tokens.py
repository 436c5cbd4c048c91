"""Grade probabilities from a server's top-n next tokens (``tgi`` and ``openai`` backends).

A server returns the ``n`` most probable next tokens with their log-probabilities, not the
whole distribution. A grade token among them gets its probability. A grade token missing from
them gets the remainder mass (one minus the top-n mass), shared equally among the missing
grade tokens and capped at the smallest top-n probability (a token outside the top-n cannot be
more probable than one inside it): an upper bound on its true probability. The grade
probabilities are then renormalised to sum to one. When no grade token is among the top-n,
the answer says nothing about the grades and the pair fails (it is never given a uniform or
made-up label).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TopToken:
    """One of the top next tokens: its text, log-probability and (where the server says) id."""

    text: str
    logprob: float
    id: int | None = None


def grade_probs_from_top(top: Sequence[TopToken], grade_ids: Sequence[int], grade_texts: Sequence[str]) -> np.ndarray:
    """The grade probabilities from the top-n tokens (see the module docstring).

    Tokens are matched to grades by id where the server gives ids, else by their exact text.

    Raises:
        RemoteError: (not retryable) when no grade token is among the top tokens.

    Example:
        >>> top = [TopToken("2", math.log(0.6)), TopToken("x", math.log(0.3)), TopToken("0", math.log(0.05))]
        >>> [round(float(p), 3) for p in grade_probs_from_top(top, [10, 11, 12], ["0", "1", "2"])]
        [0.071, 0.071, 0.857]
    """
    from relforge.tiers._remote import RemoteError

    unique: dict[object, float] = {}
    for t in top:
        key = ("id", t.id) if t.id is not None else ("text", t.text)
        p = math.exp(t.logprob) if t.logprob is not None and math.isfinite(t.logprob) else 0.0
        unique[key] = max(unique.get(key, 0.0), p)
    k = len(grade_ids)
    probs = np.zeros(k, dtype=np.float64)
    found = np.zeros(k, dtype=bool)
    for g, (gid, gtext) in enumerate(zip(grade_ids, grade_texts)):
        for key in (("id", gid), ("text", gtext)):
            if key in unique:
                probs[g] = max(probs[g], unique[key])
                found[g] = True
    if not found.any():
        shown = ", ".join(repr(t.text) for t in top[:5])
        raise RemoteError(f"no grade token among the top {len(unique)} tokens ({shown}, ...)", retryable=False)
    missing = ~found
    if missing.any():
        remainder = max(0.0, 1.0 - sum(unique.values()))
        floor = min(unique.values())
        probs[missing] = min(remainder / missing.sum(), floor)
    total = probs.sum()
    if total <= 0:
        raise RemoteError("the grade tokens among the top tokens have zero probability", retryable=False)
    return (probs / total).astype(np.float32)
