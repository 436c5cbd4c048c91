"""Synthetic tiers: class probabilities of known quality and miscalibration, costs, query groups.

Tier ``t`` sees the human grade through logits ``signal[t] * onehot(grade) + noise`` (plus a
per-query offset, so that pairs of one query are alike), and reports them over-confidently
(``softmax(overconfidence * logits)``): what calibration has to undo. The grades follow an
ESCI-like prevalence with a rare grade 1 (Complement).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from scipy.special import softmax

PREVALENCE = np.array([0.25, 0.05, 0.2, 0.5])


@dataclass
class Cascade:
    probs: list[np.ndarray]
    costs: list[np.ndarray]
    y: np.ndarray
    groups: np.ndarray


def synthetic_cascade(
    n_queries: int = 60,
    pairs_per_query: int = 20,
    signals: tuple[float, ...] = (1.0, 2.0, 3.0),
    base_costs: tuple[float, ...] = (1.0, 4.0, 16.0),
    overconfidence: float = 1.8,
    seed: int = 0,
) -> Cascade:
    rng = np.random.default_rng(seed)
    n = n_queries * pairs_per_query
    k = len(PREVALENCE)
    groups = np.repeat(np.array([f"q{i:03d}" for i in range(n_queries)]), pairs_per_query)
    y = rng.choice(k, size=n, p=PREVALENCE)
    query_offset = rng.normal(0, 0.5, size=(n_queries, k))[np.repeat(np.arange(n_queries), pairs_per_query)]
    probs, costs = [], []
    for signal, base in zip(signals, base_costs):
        logits = signal * np.eye(k)[y] + rng.normal(0, 1, size=(n, k)) + query_offset + np.log(PREVALENCE)
        probs.append(softmax(overconfidence * logits, axis=1))
        costs.append(base * rng.uniform(0.8, 1.2, size=n))
    return Cascade(probs, costs, y, groups)


@pytest.fixture(scope="module")
def cascade() -> Cascade:
    return synthetic_cascade()


def calibrated_pairs(n: int, k: int = 4, seed: int = 0, temperature: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """``(probs, y)`` with ``y`` drawn from ``softmax(z)`` and ``probs = softmax(z / temperature)``.

    ``temperature`` 1: perfectly calibrated; < 1: over-confident.
    """
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 1.5, size=(n, k))
    truth = softmax(z, axis=1)
    y = (rng.random(n)[:, None] > np.cumsum(truth, axis=1)).sum(axis=1)
    return softmax(z / temperature, axis=1), np.minimum(y, k - 1)
