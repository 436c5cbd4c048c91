"""Checks on the arrays every calibration function takes: class probabilities, grades, groups, costs.

Errors here are programming errors (a caller passed the wrong array), so they are
``ValueError`` naming the argument, not :class:`relforge.errors.InputError` (no file, no row).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

#: rows of ``probs`` must sum to 1 within this (float32 tables round near 1e-7; scores near 1e-6)
ROW_SUM_TOLERANCE = 1e-3


def check_probs(probs: np.ndarray, name: str = "probs") -> np.ndarray:
    """``probs`` as a float64 ``(n, K)`` array of class probabilities (K >= 2, rows sum to 1).

    Example:
        >>> check_probs([[0.2, 0.8]]).dtype
        dtype('float64')
    """
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] < 2:
        raise ValueError(f"{name} must be an (n, K) array with K >= 2 grades, got shape {p.shape}")
    if not np.all(np.isfinite(p)):
        raise ValueError(f"{name} holds NaN or infinite values")
    if p.size and (p.min() < 0 or p.max() > 1 + ROW_SUM_TOLERANCE):
        raise ValueError(f"{name} must lie in [0, 1], got [{p.min():.4g}, {p.max():.4g}]")
    sums = p.sum(axis=1)
    bad = np.flatnonzero(np.abs(sums - 1.0) > ROW_SUM_TOLERANCE)
    if bad.size:
        raise ValueError(f"{name}: row {int(bad[0])} sums to {sums[bad[0]]:.6f}, not 1 ({bad.size} such rows)")
    return p


def check_grades(y: np.ndarray, n_grades: int, n: int | None = None, name: str = "y") -> np.ndarray:
    """``y`` as an int64 ``(n,)`` array of grades in ``[0, n_grades)``."""
    g = np.asarray(y)
    if g.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {g.shape}")
    if g.size and not np.issubdtype(g.dtype, np.integer) and not np.all(np.equal(np.mod(g, 1), 0)):
        raise ValueError(f"{name} must hold integer grades")
    g = g.astype(np.int64)
    if n is not None and len(g) != n:
        raise ValueError(f"{name} has {len(g)} entries, expected {n}")
    if g.size and (g.min() < 0 or g.max() >= n_grades):
        raise ValueError(f"{name} holds grades outside [0, {n_grades - 1}]: [{g.min()}, {g.max()}]")
    return g


def check_groups(groups: np.ndarray, n: int, name: str = "groups") -> np.ndarray:
    """``groups`` (one query id per pair) as an ``(n,)`` array."""
    g = np.asarray(groups)
    if g.ndim != 1 or len(g) != n:
        raise ValueError(f"{name} must be an ({n},) array of query ids, got shape {g.shape}")
    return g


def check_cost(cost: np.ndarray, n: int, name: str = "cost") -> np.ndarray:
    """``cost`` (a tier's measured cost per pair) as a non-negative float64 ``(n,)`` array."""
    c = np.asarray(cost, dtype=np.float64)
    if c.ndim == 0:
        c = np.full(n, float(c))
    if c.shape != (n,):
        raise ValueError(f"{name} must be an ({n},) array, got shape {c.shape}")
    if not np.all(np.isfinite(c)) or (c.size and c.min() < 0):
        raise ValueError(f"{name} must be finite and >= 0")
    return c


def check_tiers(
    probs: Sequence[np.ndarray], costs: Sequence[np.ndarray] | None = None
) -> tuple[list[np.ndarray], list[np.ndarray] | None]:
    """Per-tier probabilities (same pairs, same K, cheapest tier first) and costs, checked together."""
    if len(probs) < 1:
        raise ValueError("at least one tier is needed")
    ps = [check_probs(p, f"probs[{t}]") for t, p in enumerate(probs)]
    n, k = ps[0].shape
    for t, p in enumerate(ps):
        if p.shape != (n, k):
            raise ValueError(f"probs[{t}] has shape {p.shape}, tier 0 has {(n, k)}: tiers must score the same pairs")
    if costs is None:
        return ps, None
    if len(costs) != len(ps):
        raise ValueError(f"{len(costs)} cost arrays for {len(ps)} tiers")
    return ps, [check_cost(c, n, f"costs[{t}]") for t, c in enumerate(costs)]
