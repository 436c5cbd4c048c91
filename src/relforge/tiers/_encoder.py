"""The embedding model (bi-encoder) and its cache of item vectors: one code path for every user.

The ``dense`` mining channel and the ``bi-encoder`` tier both encode texts with a
sentence-transformers model (:func:`load_encoder`) and keep the catalog's item vectors on local
disk (:class:`EmbeddingCache`), keyed by the encoder (:func:`model_fingerprint`: the model's
files and the token limit) and the exact item texts. The key of a catalog's vectors is
:meth:`EmbeddingCache.items_key`, so that the tier finds the vectors the channel stored (and
the reverse): encoding a catalog is the slow part on a CPU, and it is done once.

Example:
    >>> encode = load_encoder("models/minilm", max_seq_length=128)                # doctest: +SKIP
    >>> cache = EmbeddingCache(cache_dir / "embeddings", model_fingerprint("models/minilm", 128))  # doctest: +SKIP
    >>> positions, key = cache.items_key(catalog_texts)                             # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import os
import re
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from relforge.errors import ModelError

Encoder = Callable[[Sequence[str]], np.ndarray]
_WORD = re.compile(r"\w", re.UNICODE)


def has_words(text: str) -> bool:
    """True when ``text`` has at least one letter or digit (in any script).

    Every built-in mining channel retrieves nothing for a query without one (only punctuation
    or white space) and never retrieves an item without one: there is nothing to match on.
    The catalog's cached item vectors are those of the items that have words.
    """
    return bool(_WORD.search(text or ""))


def load_encoder(
    model_dir: str | Path, batch_size: int = 64, max_seq_length: int | None = None, device: str | None = None
) -> Encoder:
    """A function texts -> L2-normalised float32 embeddings, from a sentence-transformers folder.

    Args:
        model_dir: a sentence-transformers model folder.
        batch_size: texts per forward pass.
        max_seq_length: tokens of each text the encoder reads (``None``: the model's own).
        device: torch device (default: the run's compute device, :func:`relforge.compute.current`).

    Raises:
        ModelError: when the folder does not hold a loadable sentence-transformers model.
    """
    from sentence_transformers import SentenceTransformer

    from relforge import compute

    settings = compute.current()
    try:
        model = SentenceTransformer(str(model_dir), device=device or settings.device, local_files_only=True)
    except (OSError, ValueError, KeyError) as exc:
        raise ModelError(f"{model_dir}: not a loadable sentence-transformers model: {exc}") from None
    if max_seq_length:
        model.max_seq_length = max_seq_length

    def encode(texts: Sequence[str]) -> np.ndarray:
        if len(texts) == 0:
            return np.zeros((0, model.get_embedding_dimension()), dtype=np.float32)
        vectors = model.encode(
            list(texts),
            batch_size=batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.ascontiguousarray(vectors, dtype=np.float32)

    return encode


def model_fingerprint(model_dir: str | Path, *extra: object) -> str:
    """A short hash of a model folder's files (names, sizes, modification times) and ``extra``."""
    h = hashlib.sha256(str(Path(model_dir).resolve()).encode())
    for path in sorted(p for p in Path(model_dir).rglob("*") if p.is_file()):
        stat = path.stat()
        h.update(f"{path.relative_to(model_dir)}|{stat.st_size}|{stat.st_mtime_ns}".encode())
    h.update(repr(extra).encode())
    return h.hexdigest()[:16]


class EmbeddingCache:
    """Item embeddings on local disk, keyed by the encoder and the exact texts.

    Encoding a catalog is the slow part of the dense channel and of the bi-encoder tier on a
    CPU; with the cache, a rerun (a resumed run, another ``top_k``, more queries, the tier
    scoring the same catalog) reuses the vectors.

    Args:
        folder: where ``<key>.npy`` files go.
        encoder_key: identifies the encoder (see :func:`model_fingerprint`).
    """

    def __init__(self, folder: str | Path, encoder_key: str):
        self.folder, self.encoder_key = Path(folder), encoder_key

    def key(self, texts: Sequence[str]) -> str:
        h = hashlib.sha256(self.encoder_key.encode())
        for text in texts:
            h.update(text.encode("utf-8"))
            h.update(b"\0")
        return h.hexdigest()[:24]

    def items_key(self, texts: Sequence[str]) -> tuple[np.ndarray, str]:
        """The positions of a catalog's items that have words, and the key of their vectors.

        The dense channel stores the catalog's vectors under this key and the bi-encoder tier
        reads them from it.
        """
        positions = np.array([i for i, t in enumerate(texts) if has_words(t)], dtype=np.int64)
        return positions, self.key([texts[i] for i in positions])

    def load(self, key: str) -> np.ndarray | None:
        path = self.folder / f"{key}.npy"
        try:
            return np.load(path)
        except (OSError, ValueError):
            return None

    def save(self, key: str, vectors: np.ndarray) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = self.folder / f".{key}.{uuid.uuid4().hex[:8]}.npy"
        np.save(tmp, vectors)
        os.replace(tmp, self.folder / f"{key}.npy")
