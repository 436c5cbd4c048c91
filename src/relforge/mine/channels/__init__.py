"""Retrieval channels for step ``mine``: one interface, a registry, three built-in channels.

Built in: ``bm25`` (words, lexical), ``ngram`` (character n-grams, lexical), ``dense`` (a
bi-encoder with faiss, not lexical). Another channel (say the two-tower model of a first
round, for a second round of mining) plugs in with :func:`register_channel` and is then
named in ``mine.channels``; nothing else changes.
"""

from relforge.mine.channels._base import (
    Channel,
    ChannelFactory,
    available_channels,
    build_channel,
    has_words,
    register_channel,
    top_k_rows,
    top_k_sparse,
    unregister_channel,
)
from relforge.mine.channels._bm25 import BM25Channel
from relforge.mine.channels._builtin import register_builtin_channels, resolve_model_dir
from relforge.mine.channels._dense import (
    DenseChannel,
    EmbeddingCache,
    Encoder,
    VectorIndex,
    load_encoder,
    model_fingerprint,
)
from relforge.mine.channels._ngram import NgramChannel

register_builtin_channels()

__all__ = [
    "BM25Channel",
    "Channel",
    "ChannelFactory",
    "DenseChannel",
    "EmbeddingCache",
    "Encoder",
    "NgramChannel",
    "VectorIndex",
    "available_channels",
    "build_channel",
    "has_words",
    "load_encoder",
    "model_fingerprint",
    "register_builtin_channels",
    "register_channel",
    "resolve_model_dir",
    "top_k_rows",
    "top_k_sparse",
    "unregister_channel",
]
