"""Channel ``ngram``: character n-gram TF-IDF with cosine similarity (scikit-learn)."""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import HashingVectorizer, TfidfTransformer

from relforge.mine.channels._base import Channel, has_words, top_k_sparse

_NON_WORD = re.compile(r"[\W_]+", re.UNICODE)


def normalise(text: str) -> str:
    """Lower-case, every run of non-word characters (punctuation, ``_``) made one space."""
    return _NON_WORD.sub(" ", (text or "").lower()).strip()


class NgramChannel(Channel):
    """Cosine similarity of TF-IDF vectors of character n-grams inside words (lexical).

    Catches what a word channel misses: spelling variants (``tshirt`` / ``t-shirt``),
    inflections the stemmer does not fold, typos, compounds. Texts are lower-cased and
    punctuation becomes spaces; n-grams are taken inside word boundaries (``char_wb``).
    N-grams are hashed into ``n_features`` columns (no vocabulary held in memory, so the
    index is a float32 sparse matrix and nothing else); the IDF is fitted on the catalog.
    Queries are searched in batches of ``batch_size`` (one sparse product each, the top ``k``
    taken from each row's nonzero entries), so memory does not grow with their number. An
    item is retrieved only with a cosine above 0.

    Args:
        ngram_range: the smallest and largest n.
        n_features: hash buckets (collisions are rare below about a tenth of this many
            distinct n-grams).
        batch_size: queries per sparse product.

    Example:
        >>> ch = NgramChannel()
        >>> ch.index(["t-shirt cotton", "garden hose"], ["a", "b"])
        >>> ch.search(["tshirts"], k=2)[0].tolist()
        [[0, -1]]
    """

    name = "ngram"
    lexical = True

    def __init__(
        self,
        ngram_range: tuple[int, int] = (3, 5),
        n_features: int = 2**21,
        batch_size: int = 256,
    ):
        self.batch_size = batch_size
        self._vectorizer = HashingVectorizer(
            analyzer="char_wb",
            ngram_range=tuple(ngram_range),
            n_features=n_features,
            preprocessor=normalise,
            alternate_sign=False,
            norm=None,
            dtype=np.float32,
        )
        self._tfidf = TfidfTransformer(sublinear_tf=True)
        self._items_t: sp.csr_matrix | None = None

    def _vectors(self, texts: Sequence[str]) -> sp.csr_matrix:
        counts = self._vectorizer.transform(texts)
        return self._tfidf.transform(counts).astype(np.float32)

    def index(self, texts: Sequence[str], item_ids: Sequence[str]) -> None:
        counts = self._vectorizer.transform(list(texts))
        matrix = self._tfidf.fit_transform(counts).astype(np.float32)
        # (n_features, n_items) in CSR: a query batch times this is a row-major product.
        self._items_t = matrix.T.tocsr()

    def search(self, queries: Sequence[str], k: int) -> tuple[np.ndarray, np.ndarray]:
        if self._items_t is None:
            raise RuntimeError("NgramChannel.search called before index")
        n = len(queries)
        out_idx = np.full((n, k), -1, dtype=np.int64)
        out_scores = np.full((n, k), np.nan, dtype=np.float32)
        for start in range(0, n, self.batch_size):
            batch = [q if has_words(q) else "" for q in queries[start : start + self.batch_size]]
            sims = (self._vectors(batch) @ self._items_t).tocsr()
            for row in range(len(batch)):
                lo, hi = sims.indptr[row], sims.indptr[row + 1]
                idx, top = top_k_sparse(sims.data[lo:hi], sims.indices[lo:hi], k)
                out_idx[start + row, : len(idx)] = idx
                out_scores[start + row, : len(idx)] = top
        return out_idx, out_scores
