"""The ``bi-encoder`` backend: an embedding model's cosine similarity, mapped to grade probabilities.

The query and the item are encoded apart (:func:`~relforge.tiers._encoder.load_encoder`), so
the catalog's item vectors are computed once and cached (the ``dense`` mining channel's cache,
:class:`~relforge.tiers._encoder.EmbeddingCache`); scoring a pair is then one query encoding
(shared by the query's pairs) and a dot product: the cheapest tier.

A cosine is one number; K grade probabilities come from an **ordered-logit map** on it: a
:class:`~relforge.tiers.ProbeHead` with the ``ordinal`` head on the 1-d feature (one slope,
``K - 1`` ordered cut points: ``P(grade > k) = sigmoid(w * z + b_k)`` with ``z`` the
standardised cosine), fitted by ``finetune-tiers`` on the train split
(:func:`relforge.finetune.fit_probe_head`). The ``calibrate`` step then calibrates these
probabilities on the calib split like any tier's.

A tier folder holds ``relforge_tier.json`` (backend ``bi-encoder``, head ``ordinal``, the
embedding model's reference as ``base_model``, the token limit as ``max_length``) and
``probe_head.safetensors``; the embedding model is resolved when the scorer is built.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from relforge.config import ModelsConfig
from relforge.errors import ModelError
from relforge.grades import GradeScale
from relforge.logs import get_logger, log_event
from relforge.tiers._encoder import EmbeddingCache, load_encoder, model_fingerprint
from relforge.tiers._heads import TierDescriptor
from relforge.tiers._probe import ProbeHead
from relforge.tiers._scorer import Pair, Scores, TierScorer

_log = get_logger("tiers.bi_encoder")

#: Tokens of each text the encoder reads when neither the spec nor the folder says: the dense
#: mining channel's default (``mine.dense_max_seq_length``), so that the tier finds its cached
#: item vectors.
DEFAULT_BI_MAX_LENGTH = 128


class _Memo:
    """A bounded text -> vector memo (least recently used out first)."""

    def __init__(self, capacity: int):
        self.capacity = capacity
        self._data: OrderedDict[str, np.ndarray] = OrderedDict()

    def get(self, text: str) -> np.ndarray | None:
        vector = self._data.get(text)
        if vector is not None:
            self._data.move_to_end(text)
        return vector

    def __len__(self) -> int:
        return len(self._data)

    def put(self, text: str, vector: np.ndarray) -> None:
        self._data[text] = vector
        self._data.move_to_end(text)
        while len(self._data) > self.capacity:
            self._data.popitem(last=False)


class BiEncoder:
    """An embedding model with its item-vector cache: cosine similarities of (query, item) pairs.

    Args:
        model_dir: a sentence-transformers folder.
        max_length: tokens of each text it reads (default :data:`DEFAULT_BI_MAX_LENGTH`).
        batch_size: texts per forward pass.
        device: torch device (default: the run's compute device).
        cache_dir: where item vectors are cached (``<models.cache_dir>/embeddings``, shared with
            the dense channel); ``None``: no disk cache.
        memo_items: item vectors kept in memory besides a catalog loaded by :meth:`prepare_items`.

    Example:
        >>> enc = BiEncoder("models/minilm", cache_dir=Path("~/.cache/relforge/embeddings"))   # doctest: +SKIP
        >>> enc.prepare_items(catalog_texts)        # the dense channel's cached vectors   # doctest: +SKIP
        >>> enc.cosines([Pair("red shoes", "Trail shoe | red")])                            # doctest: +SKIP
        array([0.61], dtype=float32)
    """

    def __init__(
        self,
        model_dir: str | Path,
        max_length: int | None = None,
        batch_size: int = 64,
        device: str | None = None,
        cache_dir: str | Path | None = None,
        memo_items: int = 50_000,
    ):
        self.model_dir = Path(model_dir)
        self.max_length = max_length or DEFAULT_BI_MAX_LENGTH
        self.encode = load_encoder(self.model_dir, batch_size=batch_size, max_seq_length=self.max_length, device=device)
        self.cache = (
            EmbeddingCache(cache_dir, model_fingerprint(self.model_dir, self.max_length)) if cache_dir else None
        )
        self._catalog: dict[str, int] = {}
        self._matrix: np.ndarray | None = None
        self._items = _Memo(memo_items)
        self._queries = _Memo(20_000)

    def prepare_items(self, texts: Sequence[str], encode: Sequence[str] | None = None) -> bool:
        """Load the cached vectors of a catalog's item texts (as the dense channel stored them).

        Args:
            texts: the catalog's item texts, in catalog order.
            encode: item texts the coming pairs need: when the catalog is not cached, they are
                encoded now, once each, so that scoring then pays for its queries only (what a
                pair costs once ``mine`` has encoded the catalog).

        Returns:
            Whether the catalog's cached vectors are loaded; if not, item vectors not encoded
            here are encoded as pairs need them.
        """
        if self.cache is not None:
            positions, key = self.cache.items_key(texts)
            vectors = self.cache.load(key)
            if vectors is not None and vectors.shape[0] == len(positions):
                self._matrix = vectors
                self._catalog = {texts[i]: row for row, i in enumerate(positions)}
                log_event(_log, "cached item vectors loaded", items=len(positions), key=key)
                return True
        if encode:
            needed = list(dict.fromkeys(encode))
            self._items.capacity = max(self._items.capacity, len(needed) + len(self._items))
            log_event(_log, "no cached item vectors for this catalog; encoding the items the pairs need once",
                      items=len(needed))
            self._vectors(needed, self._items, catalog=False)  # into the memo that scoring reads
        else:
            log_event(_log, "no cached item vectors for this catalog; encoding items as needed")
        return False

    def _vectors(self, texts: list[str], memo: _Memo, catalog: bool) -> np.ndarray:
        out: list[np.ndarray | None] = [None] * len(texts)
        missing: list[int] = []
        for i, text in enumerate(texts):
            row = self._catalog.get(text) if catalog else None
            if row is not None and self._matrix is not None:
                out[i] = self._matrix[row]
            else:
                out[i] = memo.get(text)
                if out[i] is None:
                    missing.append(i)
        if missing:
            encoded = self.encode([texts[i] for i in missing])
            for i, vector in zip(missing, encoded):
                out[i] = vector
                memo.put(texts[i], vector)
        return np.stack(out) if out else np.zeros((0, 1), dtype=np.float32)

    def cosines(self, pairs: Sequence[Pair]) -> np.ndarray:
        """The cosine similarity of each pair's query and item text, ``(n,)`` float32."""
        if not pairs:
            return np.zeros(0, dtype=np.float32)
        queries, q_index = np.unique(np.asarray([p.query for p in pairs], dtype=object), return_inverse=True)
        items, i_index = np.unique(np.asarray([p.text for p in pairs], dtype=object), return_inverse=True)
        qv = self._vectors([str(q) for q in queries], self._queries, catalog=False)
        iv = self._vectors([str(t) for t in items], self._items, catalog=True)
        return np.einsum("ij,ij->i", qv[q_index], iv[i_index]).astype(np.float32)


class BiEncoderScorer(TierScorer):
    """A bi-encoder tier: cosine similarity, then the folder's ordered-logit map to grade probabilities.

    Args:
        folder: the tier folder (``relforge_tier.json`` with backend ``bi-encoder``, and its head).
        scale: the grade scale (must match the descriptor's).
        models: how to resolve the descriptor's ``base_model`` (default: ``ModelsConfig()``); its
            ``cache_dir`` holds the item-vector cache.
        base: the embedding model's folder, overriding the descriptor's reference.
        name: the model's name in the ``labels`` table (default: the folder's name).
        batch_size: texts per forward pass.
        max_length: tokens per text (default: the folder's, else :data:`DEFAULT_BI_MAX_LENGTH`).
        device: torch device (default: the run's compute device).
        cost_per_second: price of one second; a pair's cost is its equal share of the call's
            wall time (encoding the queries and any item text not cached, the cosines, the map).

    Example:
        >>> scorer = BiEncoderScorer("models/tier0", ESCI)                 # doctest: +SKIP
        >>> scorer.prepare_items(catalog_texts)                             # doctest: +SKIP
        >>> scorer.score([Pair("red shoes", "Trail shoe | red")]).probs.shape  # doctest: +SKIP
        (1, 4)
    """

    backend = "bi-encoder"

    def __init__(
        self,
        folder: str | Path,
        scale: GradeScale,
        models: ModelsConfig | None = None,
        base: str | Path | None = None,
        name: str | None = None,
        batch_size: int = 64,
        max_length: int | None = None,
        device: str | None = None,
        cost_per_second: float = 1.0,
    ):
        from relforge.tiers._factory import resolve_model_ref

        folder = Path(folder)
        super().__init__(scale, name or folder.name)
        descriptor = TierDescriptor.load(folder)
        if descriptor is None or descriptor.backend != "bi-encoder":
            raise ModelError(
                f"{folder}: not a bi-encoder tier folder (relforge_tier.json with backend `bi-encoder`); "
                "fine-tune it first (finetune-tiers fits the cosine's ordered-logit map)"
            )
        if descriptor.grade_scale.names != scale.names:
            raise ModelError(f"{folder}: fitted on grades {descriptor.grade_scale.names}, the data's are {scale.names}")
        self.head = ProbeHead.load(folder)
        if self.head.weight.shape[1] != 1:
            raise ModelError(f"{folder}: a bi-encoder head reads one feature (the cosine), this one reads "
                             f"{self.head.weight.shape[1]}")
        models = models or ModelsConfig()
        base_folder = Path(base) if base is not None else resolve_model_ref(descriptor.base_model, models)
        self.encoder = BiEncoder(
            base_folder, max_length=max_length or descriptor.max_length, batch_size=batch_size, device=device,
            cache_dir=Path(models.cache_dir).expanduser() / "embeddings",
        )
        self.cost_per_second = cost_per_second

    def prepare_items(self, texts: Sequence[str], encode: Sequence[str] | None = None) -> None:
        start = time.perf_counter()
        self.encoder.prepare_items(texts, encode=encode)
        self.prepare_seconds = time.perf_counter() - start

    def score(self, pairs: Sequence[Pair]) -> Scores:
        n = len(pairs)
        probs = np.full((n, self.scale.n), np.nan, dtype=np.float32)
        failed = np.zeros(n, dtype=bool)
        errors: list[str | None] = [None] * n
        if n == 0:
            return Scores(probs, failed, np.zeros(0, dtype=np.float32), errors)
        start = time.perf_counter()
        try:
            probs[:] = self.head.probs(self.encoder.cosines(pairs)[:, None])
        except RuntimeError as exc:  # torch errors (out of memory, ...): the call fails, the run goes on
            log_event(_log, "batch failed", level=30, tier=self.name, pairs=n, error=str(exc)[:200])
            failed[:] = True
            errors = [f"bi-encoder failed: {exc}"] * n
        seconds = time.perf_counter() - start
        cost = np.full(n, seconds * self.cost_per_second / n, dtype=np.float32)
        return Scores(probs, failed, cost, errors)
