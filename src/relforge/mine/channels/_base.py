"""The retrieval-channel interface and the registry the configuration picks channels from.

A channel indexes the catalog's item texts once per run and answers top-k searches for
batches of query texts. Results are positional: ``item_index[q, r]`` is the catalog position
of query ``q``'s item at rank ``r + 1``, or ``-1`` where the channel retrieved fewer than ``k``
items (a small catalog, an empty query, an item that shares nothing with the query).

Example:
    >>> from relforge.mine.channels import build_channel
    >>> channel = build_channel("bm25", config)                        # doctest: +SKIP
    >>> channel.index(["red shoes", "blue shirt"], ["i1", "i2"])        # doctest: +SKIP
    >>> item_index, scores = channel.search(["red shoe"], k=50)         # doctest: +SKIP
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from relforge.errors import ConfigError
from relforge.tiers._encoder import has_words  # noqa: F401 - the channels' rule, shared with the tiers

if TYPE_CHECKING:
    from relforge.config import RelforgeConfig

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


class Channel(ABC):
    """One retrieval system: indexes item texts, returns the top-k items per query.

    Subclasses set ``name`` (used in the column names ``rank_<name>`` and ``score_<name>``)
    and ``lexical`` (True when the channel matches surface forms, words or characters, rather
    than meaning; the ``lexical_only`` bucket is defined by it).
    """

    name: str = ""
    lexical: bool = False

    @abstractmethod
    def index(self, texts: Sequence[str], item_ids: Sequence[str]) -> None:
        """Build the index over the catalog.

        Args:
            texts: the item texts, in catalog order (position ``i`` is item ``i``).
            item_ids: the item ids in the same order (for channels that key on them).
        """

    @abstractmethod
    def search(self, queries: Sequence[str], k: int) -> tuple[np.ndarray, np.ndarray]:
        """The top ``k`` items per query, best first.

        Args:
            queries: the query texts.
            k: how many items per query at most.

        Returns:
            ``(item_index, scores)``: ``int64`` and ``float32`` arrays of shape
            ``(len(queries), k)``; ``item_index`` is ``-1`` (and ``scores`` NaN) past the
            last item retrieved.
        """

    def expect_queries(self, n: int) -> None:
        """A hint before :meth:`index`: how many queries the run will search in all (a channel
        may plan its index for that workload, e.g. exact or ANN search). The default ignores it."""

    def describe(self) -> dict[str, object]:
        """What the mining report and the table metadata record about this channel."""
        return {"name": self.name, "lexical": self.lexical, "kind": type(self).__name__}


ChannelFactory = Callable[["RelforgeConfig"], Channel]
_REGISTRY: dict[str, ChannelFactory] = {}


def register_channel(name: str, factory: ChannelFactory, *, replace: bool = False) -> None:
    """Make a channel available to ``mine.channels`` in the configuration.

    Args:
        name: lower-case letters, digits and ``_`` (it becomes part of column names).
        factory: builds the channel from the run's configuration.
        replace: allow replacing a registered factory of the same name.

    Example:
        >>> register_channel("two_tower", lambda cfg: TwoTowerChannel(cfg))   # doctest: +SKIP
    """
    if not _NAME.match(name):
        raise ConfigError(f'channel name "{name}" must match [a-z][a-z0-9_]* (it names columns)')
    if name in _REGISTRY and not replace:
        raise ConfigError(f'channel "{name}" is already registered')
    _REGISTRY[name] = factory


def unregister_channel(name: str) -> None:
    """Remove a registered channel (tests, plug-ins that unload)."""
    _REGISTRY.pop(name, None)


def available_channels() -> list[str]:
    """The registered channel names."""
    return sorted(_REGISTRY)


def build_channel(name: str, config: RelforgeConfig) -> Channel:
    """A new, unindexed channel ``name`` configured from ``config``.

    Raises:
        ConfigError: when no channel of that name is registered, or the factory's channel
            reports another name.
    """
    if name not in _REGISTRY:
        raise ConfigError(
            f'field "mine.channels": unknown channel "{name}"; registered: {available_channels()}'
        )
    channel = _REGISTRY[name](config)
    if channel.name != name:
        raise ConfigError(f'channel registered as "{name}" calls itself "{channel.name}"')
    return channel


def top_k_sparse(
    data: np.ndarray, indices: np.ndarray, k: int
) -> tuple[np.ndarray, np.ndarray]:
    """The top ``k`` of one row given by its nonzero entries (``data`` at ``indices``), best first.

    Only entries above 0 are kept; equal scores are ordered by index (which of several
    entries tied at the ``k``-th place is kept is deterministic but unspecified). Selecting among the
    nonzero entries alone is much faster than over the whole catalog, where most items
    score 0 and ties slow down a full partition.

    Returns:
        ``(index, score)`` arrays of at most ``k`` entries.
    """
    keep = data > 0
    data, indices = data[keep], indices[keep]
    if len(data) > k:
        part = np.argpartition(-data, k - 1)[:k]
        data, indices = data[part], indices[part]
    order = np.lexsort((indices, -data))
    return indices[order].astype(np.int64, copy=False), data[order].astype(np.float32, copy=False)


def top_k_rows(scores: np.ndarray, k: int, valid: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The top ``k`` columns of each row of a dense score matrix, best first.

    Entries with a score of 0 or less, or where ``valid`` is False, are not retrieved.
    Within the top ``k``, equal scores are ordered by item position; which of several items
    tied at the ``k``-th place is kept is deterministic but unspecified.

    Args:
        scores: ``(n_queries, n_items)`` float32.
        k: how many per row at most.
        valid: optional ``(n_items,)`` bool mask of retrievable items.

    Returns:
        ``(item_index, scores)`` as :meth:`Channel.search` returns them.
    """
    n, m = scores.shape
    out_idx = np.full((n, k), -1, dtype=np.int64)
    out_scores = np.full((n, k), np.nan, dtype=np.float32)
    if n == 0 or m == 0:
        return out_idx, out_scores
    neg = np.negative(scores, dtype=np.float32)  # the one copy; smallest first below
    if valid is not None:
        neg[:, ~valid] = np.inf
    kk = min(k, m)
    if kk < m:
        part = np.argpartition(neg, kk - 1, axis=1)[:, :kk]
    else:
        part = np.tile(np.arange(m), (n, 1))
    part_neg = np.take_along_axis(neg, part, axis=1)
    order = np.lexsort((part, part_neg), axis=1)
    idx = np.take_along_axis(part, order, axis=1)
    top = -np.take_along_axis(part_neg, order, axis=1)
    keep = top > 0  # also drops the invalid ones (-inf)
    out_idx[:, :kk] = np.where(keep, idx, -1)
    out_scores[:, :kk] = np.where(keep, top, np.nan)
    return out_idx, out_scores
