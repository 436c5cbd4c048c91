"""Channel ``dense``: a sentence-transformers bi-encoder and a faiss inner-product index."""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

import faiss
import numpy as np

from relforge.errors import ModelError
from relforge.logs import track
from relforge.mine.channels._base import Channel, has_words

Encoder = Callable[[Sequence[str]], np.ndarray]


def load_encoder(model_dir: str | Path, batch_size: int = 64, max_seq_length: int | None = None) -> Encoder:
    """A function texts -> L2-normalised float32 embeddings, from a sentence-transformers folder.

    Raises:
        ModelError: when the folder does not hold a loadable sentence-transformers model.
    """
    from sentence_transformers import SentenceTransformer

    try:
        model = SentenceTransformer(str(model_dir), device="cpu")
    except (OSError, ValueError, KeyError) as exc:
        raise ModelError(f"{model_dir}: not a loadable sentence-transformers model: {exc}") from None
    if max_seq_length:
        model.max_seq_length = max_seq_length

    def encode(texts: Sequence[str]) -> np.ndarray:
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

    Encoding a catalog is the slow part of the dense channel on a CPU; with the cache, a
    rerun (a resumed run, another ``top_k``, more queries) reuses the vectors.

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


class VectorIndex:
    """Inner-product search over normalised vectors: exact (``IndexFlatIP``) up to
    ``exact_max_items`` vectors, HNSW above.

    Args:
        exact_max_items: the largest catalog searched exactly.
        hnsw_m: HNSW graph degree.
        ef_search: HNSW search breadth (raised to ``k`` when smaller).
        ef_construction: HNSW build breadth.
        blas_database_block: catalog vectors per BLAS block in exact search.
    """

    def __init__(
        self,
        exact_max_items: int,
        hnsw_m: int = 32,
        ef_search: int = 128,
        ef_construction: int = 200,
        blas_database_block: int = 16_384,
    ):
        self.exact_max_items, self.hnsw_m = exact_max_items, hnsw_m
        self.ef_search, self.ef_construction = ef_search, ef_construction
        self.blas_database_block = blas_database_block
        self._index: faiss.Index | None = None
        self._positions = np.zeros(0, dtype=np.int64)

    @property
    def kind(self) -> str:
        return "none" if self._index is None else type(self._index).__name__

    def build(self, vectors: np.ndarray, positions: np.ndarray | None = None) -> None:
        """Index ``vectors`` (``(n, d)`` float32); ``positions`` maps index rows to catalog
        positions (default: row ``i`` is item ``i``)."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        n, d = vectors.shape
        if n <= self.exact_max_items:
            index = faiss.IndexFlatIP(d)
        else:
            index = faiss.IndexHNSWFlat(d, self.hnsw_m, faiss.METRIC_INNER_PRODUCT)
            index.hnsw.efConstruction = self.ef_construction
        index.add(vectors)
        self._index = index
        self._positions = np.arange(n, dtype=np.int64) if positions is None else np.asarray(positions, np.int64)

    def search(self, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` catalog positions and inner products per vector (``-1`` / NaN padding)."""
        if self._index is None:
            raise RuntimeError("VectorIndex.search called before build")
        n = vectors.shape[0]
        out_idx = np.full((n, k), -1, dtype=np.int64)
        out_scores = np.full((n, k), np.nan, dtype=np.float32)
        kk = min(k, self._index.ntotal)
        if n == 0 or kk == 0:
            return out_idx, out_scores
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if isinstance(self._index, faiss.IndexHNSW):
            self._index.hnsw.efSearch = max(self.ef_search, kk)
            scores, rows = self._index.search(vectors, kk)
        else:
            scores, rows = self._flat_search(vectors, kk)
        found = rows >= 0
        out_idx[:, :kk] = np.where(found, self._positions[np.where(found, rows, 0)], -1)
        out_scores[:, :kk] = np.where(found, scores, np.nan)
        return out_idx, out_scores


    def _flat_search(self, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Exact search with faiss's BLAS path reading the catalog in larger blocks.

        faiss multiplies query blocks by catalog blocks of 1,024 vectors by default; for a
        shard's worth of queries (about 1,000) larger catalog blocks are markedly faster.
        The process-wide setting is restored afterwards.
        """
        before = faiss.cvar.distance_compute_blas_database_bs
        faiss.cvar.distance_compute_blas_database_bs = max(before, self.blas_database_block)
        try:
            return self._index.search(vectors, k)
        finally:
            faiss.cvar.distance_compute_blas_database_bs = before


class DenseChannel(Channel):
    """A bi-encoder's normalised embeddings, searched by inner product (not lexical).

    Items without a letter or digit are not indexed, and queries without one retrieve
    nothing (their embedding would be the encoder's idea of an empty string). Any other
    query gets its ``k`` nearest items, however far: a dense channel always has an opinion.

    Args:
        encoder: texts -> normalised float32 vectors (see :func:`load_encoder`).
        index: the vector index (see :class:`VectorIndex`).
        batch_size: texts per encoder call (bounds memory for long query lists).
        cache: where item embeddings are kept between runs (``None``: not kept).

    Example:
        >>> ch = DenseChannel(load_encoder(model_dir), VectorIndex(200_000))   # doctest: +SKIP
    """

    name = "dense"
    lexical = False

    def __init__(
        self,
        encoder: Encoder,
        index: VectorIndex,
        batch_size: int = 1024,
        cache: EmbeddingCache | None = None,
    ):
        self.encoder, self.vectors, self.batch_size, self.cache = encoder, index, batch_size, cache

    def _encode(self, texts: Sequence[str], what: str = "texts") -> np.ndarray:
        starts = range(0, len(texts), self.batch_size)
        if len(starts) > 1:
            starts = track(starts, f"dense: encoding {len(texts):,} {what}")
        parts = [self.encoder(texts[s : s + self.batch_size]) for s in starts]
        return np.concatenate(parts) if parts else np.zeros((0, 1), np.float32)

    def index(self, texts: Sequence[str], item_ids: Sequence[str]) -> None:
        positions = np.array([i for i, t in enumerate(texts) if has_words(t)], dtype=np.int64)
        if len(positions) == 0:
            raise ModelError("dense channel: no item text has a letter or digit; nothing to index")
        kept = [texts[i] for i in positions]
        key = self.cache.key(kept) if self.cache else ""
        vectors = self.cache.load(key) if self.cache else None
        if vectors is None or vectors.shape[0] != len(kept):
            vectors = self._encode(kept, "items")
            if self.cache:
                self.cache.save(key, vectors)
        self.index_vectors(vectors, positions)

    def index_vectors(self, vectors: np.ndarray, positions: np.ndarray | None = None) -> None:
        """Index precomputed item vectors (what :meth:`index` does after encoding)."""
        self.vectors.build(vectors, positions)

    def search(self, queries: Sequence[str], k: int) -> tuple[np.ndarray, np.ndarray]:
        n = len(queries)
        out_idx = np.full((n, k), -1, dtype=np.int64)
        out_scores = np.full((n, k), np.nan, dtype=np.float32)
        rows = [i for i, q in enumerate(queries) if has_words(q)]
        if rows:
            idx, scores = self.search_vectors(self._encode([queries[i] for i in rows]), k)
            out_idx[rows], out_scores[rows] = idx, scores
        return out_idx, out_scores

    def search_vectors(self, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Search with precomputed query vectors (what :meth:`search` does after encoding)."""
        return self.vectors.search(vectors, k)

    def describe(self) -> dict[str, object]:
        return {**super().describe(), "index": self.vectors.kind}
