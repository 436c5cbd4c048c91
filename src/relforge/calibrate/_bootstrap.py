"""Query-level bootstrap of means (cost, shares, differences), drawn like ``bootstrap_by_query``.

:func:`relforge.finetune.bootstrap_by_query` gives the CIs of accuracy, macro-F1 and QWK. The
statistics it does not cover (a mean cost per pair, the share of pairs a tier decides, a
paired difference) are ratios of per-query sums, bootstrapped here with the same draws: the
same seed resamples the same queries in the same order, so every CI of one estimate comes
from one set of replicates.

Example:
    >>> draws = query_mean_draws(groups, cost, reps=1000, seed=13)   # doctest: +SKIP
    >>> percentile_ci(draws)                                         # doctest: +SKIP
    (0.41, 0.47)
"""

from __future__ import annotations

import numpy as np


def query_counts(groups: np.ndarray, reps: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(inverse, counts)``: each pair's query index, and per replicate how often each query was drawn.

    The draws are those of :func:`relforge.finetune.bootstrap_by_query` with the same ``seed``.

    Returns:
        ``inverse`` (n,) ints in ``[0, Q)``; ``counts`` (reps, Q).
    """
    _, inverse = np.unique(np.asarray(groups), return_inverse=True)
    n_queries = int(inverse.max()) + 1 if len(inverse) else 0
    rng = np.random.default_rng(seed)
    counts = np.empty((reps, n_queries))
    for r in range(reps):
        counts[r] = np.bincount(rng.integers(0, n_queries, size=n_queries), minlength=n_queries)
    return inverse, counts


def query_mean_draws(groups: np.ndarray, values: np.ndarray, reps: int = 1000, seed: int = 13) -> np.ndarray:
    """Bootstrap replicates of the per-pair mean of ``values``, resampling whole queries.

    Args:
        groups: (n,) query id per pair.
        values: (n,) or (n, m) per-pair values (m statistics at once).

    Returns:
        (reps,) or (reps, m): the mean over the pairs of the queries drawn.
    """
    v = np.asarray(values, dtype=np.float64)
    flat = v.reshape(len(v), -1)
    inverse, counts = query_counts(groups, reps, seed)
    n_queries = counts.shape[1]
    sums = np.zeros((n_queries, flat.shape[1]))
    np.add.at(sums, inverse, flat)
    sizes = np.bincount(inverse, minlength=n_queries).astype(np.float64)
    draws = (counts @ sums) / (counts @ sizes)[:, None]
    return draws.reshape((reps,) + v.shape[1:])


def percentile_ci(draws: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """The percentile interval of bootstrap ``draws`` at ``level``."""
    tail = (1.0 - level) / 2.0
    return float(np.quantile(draws, tail)), float(np.quantile(draws, 1.0 - tail))
