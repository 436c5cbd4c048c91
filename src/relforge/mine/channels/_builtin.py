"""The built-in channels' factories: each reads its settings from ``config.mine``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from relforge.mine.channels._base import register_channel
from relforge.mine.channels._bm25 import BM25Channel
from relforge.mine.channels._dense import (
    DenseChannel,
    EmbeddingCache,
    VectorIndex,
    load_encoder,
    model_fingerprint,
)
from relforge.mine.channels._ngram import NgramChannel

if TYPE_CHECKING:
    from relforge.config import RelforgeConfig


def resolve_model_dir(ref: str, config: RelforgeConfig) -> Path:
    """A model reference (a local folder, ``packaged:...``, ``s3://...``) as a local folder,
    through :func:`relforge.models.resolve_model` (S3 reached with the bus settings).

    Raises:
        ModelError: when the reference cannot be resolved.
    """
    from relforge.models import resolve_model

    return Path(resolve_model(ref, config.models, bus=config.bus))


def _bm25(config: RelforgeConfig) -> BM25Channel:
    return BM25Channel(k1=config.mine.bm25_k1, b=config.mine.bm25_b)


def _ngram(config: RelforgeConfig) -> NgramChannel:
    return NgramChannel(ngram_range=config.mine.ngram_range, n_features=config.mine.ngram_features)


def _dense(config: RelforgeConfig) -> DenseChannel:
    mine = config.mine
    model_dir = resolve_model_dir(mine.dense_model, config)
    encoder = load_encoder(model_dir, batch_size=mine.batch_size, max_seq_length=mine.dense_max_seq_length)
    index = VectorIndex(hnsw_m=mine.hnsw_m, ef_search=mine.hnsw_ef_search)
    cache = None
    if mine.dense_cache_embeddings:
        key = model_fingerprint(model_dir, mine.dense_max_seq_length)
        cache = EmbeddingCache(Path(config.models.cache_dir).expanduser() / "embeddings", key)
    return DenseChannel(encoder, index, cache=cache)


def register_builtin_channels() -> None:
    """Register ``bm25``, ``ngram`` and ``dense`` (idempotent)."""
    for name, factory in (("bm25", _bm25), ("ngram", _ngram), ("dense", _dense)):
        register_channel(name, factory, replace=True)
