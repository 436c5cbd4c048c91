"""Channel ``dense``: a sentence-transformers bi-encoder and a faiss inner-product index."""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from relforge.errors import ModelError
from relforge.index import IndexParams, IndexPlan, ItemIndex, plan_batch, plan_served
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
    """The dense channel's inner-product search over normalised vectors, on
    :mod:`relforge.index`.

    Two ways to build it:

    - :meth:`prepare_batch` (what :class:`DenseChannel` does): a one-shot batch search.
      The vectors go into an exact index at once; at the first search the kind is chosen by
      the estimated cost of the whole search (:func:`relforge.index.plan_batch`: exact
      search's measured rate against ANN build + search costs), for ``n_queries`` queries
      or that first batch's size, whichever is larger. ``exact_max_items`` plays no part.
    - :meth:`build`: a long-lived index (:func:`relforge.index.plan_served`): exact up to
      ``exact_max_items`` vectors, HNSW above.

    Args:
        exact_max_items: the largest index :meth:`build` makes exact (default:
            ``IndexParams.served_exact_max_items``).
        hnsw_m: HNSW graph degree.
        ef_search: HNSW search breadth (raised to ``k`` when smaller).
        ef_construction: HNSW build breadth.
        blas_database_block: catalog vectors per BLAS block in exact search.
        params: every other index parameter (:class:`relforge.index.IndexParams`); the
            arguments above override its fields.

    Example:
        >>> vi = VectorIndex()
        >>> vi.prepare_batch(np.eye(3, dtype=np.float32), positions=np.array([5, 7, 9]))
        >>> vi.search(np.array([[0, 1, 0]], np.float32), k=2)[0][0, 0]
        np.int64(7)
    """

    def __init__(
        self,
        exact_max_items: int | None = None,
        hnsw_m: int = 32,
        ef_search: int = 128,
        ef_construction: int = 200,
        blas_database_block: int = 16_384,
        params: IndexParams | None = None,
    ):
        base = params or IndexParams()
        self.params = base.with_(
            hnsw_m=hnsw_m,
            hnsw_ef_search=ef_search,
            hnsw_ef_construction=ef_construction,
            blas_database_block=blas_database_block,
            served_exact_max_items=base.served_exact_max_items if exact_max_items is None else exact_max_items,
            served_ann_kind="hnsw",
        )
        self.exact_max_items = self.params.served_exact_max_items
        self._index: ItemIndex | None = None
        self._pending_queries: int | None = None  # set while a batch plan waits for the first search

    @property
    def kind(self) -> str:
        """The faiss class of the index (``none`` before a build)."""
        return "none" if self._index is None else self._index.faiss_class

    @property
    def plan(self) -> IndexPlan | None:
        """The decision that chose the kind (``None`` before it is made)."""
        return None if self._index is None else self._index.plan

    def build(self, vectors: np.ndarray, positions: np.ndarray | None = None) -> None:
        """Index ``vectors`` (``(n, d)`` float32) for long use: exact up to
        ``exact_max_items``, HNSW above; ``positions`` maps index rows to catalog positions
        (default: row ``i`` is item ``i``)."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        plan = plan_served(len(vectors), vectors.shape[1], self.params)
        self._index = ItemIndex.build(vectors, _positions(vectors, positions), kind=plan.kind, params=self.params, plan=plan)
        self._pending_queries = None

    def prepare_batch(
        self, vectors: np.ndarray, positions: np.ndarray | None = None, n_queries: int | None = None
    ) -> None:
        """Hold ``vectors`` for a one-shot batch search of about ``n_queries`` queries; the
        kind is chosen at the first :meth:`search` (see the class docstring)."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        self._index = ItemIndex.build(vectors, _positions(vectors, positions), kind="exact", params=self.params)
        self._pending_queries = n_queries or 0

    def search(self, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` catalog positions and inner products per vector (``-1`` / NaN padding)."""
        if self._index is None:
            raise RuntimeError("VectorIndex.search called before build")
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if self._pending_queries is not None and len(vectors):
            self._choose_for_batch(vectors, k)
        rows, scores = self._index.search(vectors, k)
        found = rows >= 0
        positions = self._index.item_ids
        return np.where(found, positions[np.where(found, rows, 0)], -1), scores

    def _choose_for_batch(self, queries: np.ndarray, k: int) -> None:
        exact = self._index
        n_queries = max(self._pending_queries or 0, len(queries))
        self._pending_queries = None
        if len(exact) == 0:
            return
        stored = exact.stored_vectors()
        plan = plan_batch(len(exact), n_queries, exact.dim, k, self.params, stored, queries)
        if plan.kind == "exact":
            exact.plan = plan
            return
        chosen = ItemIndex.build(stored, exact.item_ids, kind=plan.kind, params=self.params, plan=plan)
        chosen.measure_recall(stored, queries)
        self._index = chosen


def _positions(vectors: np.ndarray, positions: np.ndarray | None) -> np.ndarray:
    if positions is None:
        return np.arange(len(vectors), dtype=np.int64)
    return np.asarray(positions, dtype=np.int64)


class DenseChannel(Channel):
    """A bi-encoder's normalised embeddings, searched by inner product (not lexical).

    Items without a letter or digit are not indexed, and queries without one retrieve
    nothing (their embedding would be the encoder's idea of an empty string). Any other
    query gets its ``k`` nearest items, however far: a dense channel always has an opinion.

    Args:
        encoder: texts -> normalised float32 vectors (see :func:`load_encoder`).
        index: the vector index (see :class:`VectorIndex`); the channel prepares it for a
            one-shot batch search, so its kind is chosen by the cost of the search.
        batch_size: texts per encoder call (bounds memory for long query lists).
        cache: where item embeddings are kept between runs (``None``: not kept).
        expected_queries: how many queries the run will search in all, when known (the
            index kind is chosen for that much work; default: the first batch's size).

    Example:
        >>> ch = DenseChannel(load_encoder(model_dir), VectorIndex())   # doctest: +SKIP
    """

    name = "dense"
    lexical = False

    def __init__(
        self,
        encoder: Encoder,
        index: VectorIndex,
        batch_size: int = 1024,
        cache: EmbeddingCache | None = None,
        expected_queries: int | None = None,
    ):
        self.encoder, self.vectors, self.batch_size, self.cache = encoder, index, batch_size, cache
        self.expected_queries = expected_queries

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
        self.vectors.prepare_batch(vectors, positions, self.expected_queries)

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
