"""The trained two-tower as a mining channel (``two_tower``), for a second round of mining.

It searches the export of the run named by ``export.channel_run`` (the first round): its
published index and query encoder, so the catalog is not encoded again. Register it with
:func:`register_two_tower_channel` and name it in ``mine.channels``.

Example:
    >>> register_two_tower_channel()
    >>> cfg = load_config(overrides=["mine.channels=[bm25, ngram, dense, two_tower]",
    ...                              "export.channel_run=runs/demo"])     # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from relforge.bus import DataBus
from relforge.errors import ConfigError, ModelError
from relforge.mine.channels import Channel, register_channel

if TYPE_CHECKING:
    from relforge.config import RelforgeConfig
    from relforge.twotower._retriever import Retriever

CHANNEL = "two_tower"


class TwoTowerChannel(Channel):
    """A first round's exported retriever as a channel (not lexical).

    Args:
        retriever: the loaded export.
    """

    name = CHANNEL
    lexical = False

    def __init__(self, retriever: Retriever):
        self.retriever = retriever
        self._position: dict[str, int] = {}

    def index(self, texts: Sequence[str], item_ids: Sequence[str]) -> None:
        self._position = {str(i): p for p, i in enumerate(item_ids)}
        exported = {str(i) for i in self.retriever.index.item_ids.tolist()}
        if not exported & set(self._position):
            raise ModelError(f"{self.retriever.folder}: the exported index shares no item with this catalog")

    def search(self, queries: Sequence[str], k: int) -> tuple[np.ndarray, np.ndarray]:
        out_idx = np.full((len(queries), k), -1, dtype=np.int64)
        out_scores = np.full((len(queries), k), np.nan, dtype=np.float32)
        ids, scores = self.retriever.search(list(queries), k)
        for row, (found, s) in enumerate(zip(ids, scores)):
            known = [(self._position[i], s[j]) for j, i in enumerate(found) if i in self._position]
            for col, (pos, score) in enumerate(known[:k]):
                out_idx[row, col], out_scores[row, col] = pos, score
        return out_idx, out_scores

    def describe(self) -> dict[str, object]:
        m = self.retriever.manifest
        return {**super().describe(), "model_version": m.get("model_version"), "index": m.get("kind")}


def _factory(config: RelforgeConfig) -> TwoTowerChannel:
    from pathlib import Path

    from relforge.twotower._retriever import Retriever

    run = config.export.channel_run
    if not run:
        raise ConfigError('field "export.channel_run": the `two_tower` channel needs the run whose export it '
                          "searches (the first round)")
    bus = DataBus(run, config.bus)
    return TwoTowerChannel(Retriever.from_bus(bus, Path(config.models.cache_dir).expanduser(),
                                              batch_size=config.export.batch_size))


def register_two_tower_channel() -> None:
    """Make ``two_tower`` available to ``mine.channels`` (idempotent)."""
    register_channel(CHANNEL, _factory, replace=True)
