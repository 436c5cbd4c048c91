"""Small clustered unit vectors for the index tests (a few thousand, tens of dimensions)."""

from __future__ import annotations

import numpy as np
import pytest


def clustered(n: int, dim: int = 24, n_clusters: int = 40, seed: int = 0, centers_seed: int = 99) -> np.ndarray:
    crng = np.random.default_rng(centers_seed)
    centers = crng.normal(size=(n_clusters, dim)).astype(np.float32)
    centers /= np.linalg.norm(centers, axis=1, keepdims=True)
    rng = np.random.default_rng(seed)
    x = centers[rng.integers(n_clusters, size=n)] + 0.2 * rng.normal(size=(n, dim)).astype(np.float32)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def brute_force(queries: np.ndarray, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    sims = queries @ vectors.T
    rows = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    return rows, np.take_along_axis(sims, rows, axis=1)


@pytest.fixture(scope="module")
def vectors() -> np.ndarray:
    return clustered(3000)


@pytest.fixture(scope="module")
def queries() -> np.ndarray:
    return clustered(200, seed=1)
