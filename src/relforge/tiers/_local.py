"""What the local backends share: batches of similar length, and the measured cost of a batch.

Cost of a local tier: the wall seconds of each forward pass, shared by the batch's pairs in
proportion to their token counts (compute grows with tokens), times a price per second.
With ``cost_per_second=1`` the cost unit is seconds of this machine's time.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def length_buckets(lengths: Sequence[int], batch_size: int) -> list[np.ndarray]:
    """Indices grouped into batches of similar length, longest first (memory peaks early).

    Example:
        >>> [b.tolist() for b in length_buckets([3, 9, 1, 8], 2)]
        [[1, 3], [0, 2]]
    """
    if batch_size <= 0:
        raise ValueError("batch_size must be positive")
    order = np.argsort(-np.asarray(lengths, dtype=np.int64), kind="stable")
    return [order[i : i + batch_size] for i in range(0, len(order), batch_size)]


def share_seconds(seconds: float, tokens: Sequence[int], cost_per_second: float) -> np.ndarray:
    """A batch's cost split over its pairs in proportion to their tokens.

    Example:
        >>> share_seconds(2.0, [1, 3], cost_per_second=1.0).tolist()
        [0.5, 1.5]
    """
    weights = np.asarray(tokens, dtype=np.float64)
    weights = weights / weights.sum() if weights.sum() > 0 else np.full(len(weights), 1.0 / max(len(weights), 1))
    return (seconds * cost_per_second * weights).astype(np.float32)
