"""Channel ``bm25``: word-level BM25 (bm25s), English stemming and stop words."""

from __future__ import annotations

from collections.abc import Sequence

import bm25s
import numpy as np
import Stemmer

from relforge.mine.channels._base import Channel, has_words, top_k_sparse


class BM25Channel(Channel):
    """BM25 over stemmed words with English stop words removed (lexical).

    Tokens are ``\\w\\w+`` runs (any script), lower-cased, stop words removed and stemmed with
    the Snowball English stemmer. A query left with no known token (only stop words, only
    punctuation, only words the catalog never uses) retrieves nothing; an item is retrieved
    only when it shares at least one token with the query (a BM25 score above 0). Scores
    are bm25s's; the top ``k`` are selected among the items that score above 0 only, which
    is several times faster than bm25s's selection over the whole catalog and gives the
    same items (up to the order of equal scores).

    Args:
        k1, b: the BM25 parameters (Lucene variant).
        stopwords: a bm25s stop-word list name (``"en"``) or ``None``.
        language: the Snowball stemmer's language, or ``None`` for no stemming.

    Example:
        >>> ch = BM25Channel()
        >>> ch.index(["red running shoes", "blue cotton shirt"], ["a", "b"])
        >>> ch.search(["shoe"], k=2)[0].tolist()
        [[0, -1]]
    """

    name = "bm25"
    lexical = True

    def __init__(
        self,
        k1: float = 1.5,
        b: float = 0.75,
        stopwords: str | None = "en",
        language: str | None = "english",
    ):
        self.k1, self.b, self.stopwords = k1, b, stopwords
        self.stemmer = Stemmer.Stemmer(language) if language else None
        self._retriever: bm25s.BM25 | None = None
        self._n_items = 0

    def _tokenize(self, texts: Sequence[str], return_ids: bool):
        return bm25s.tokenize(
            list(texts),
            stopwords=self.stopwords,
            stemmer=self.stemmer,
            return_ids=return_ids,
            show_progress=False,
        )

    def index(self, texts: Sequence[str], item_ids: Sequence[str]) -> None:
        self._n_items = len(texts)
        self._retriever = bm25s.BM25(k1=self.k1, b=self.b)
        if self._n_items:
            self._retriever.index(self._tokenize(texts, return_ids=True), show_progress=False)

    def search(self, queries: Sequence[str], k: int) -> tuple[np.ndarray, np.ndarray]:
        if self._retriever is None:
            raise RuntimeError("BM25Channel.search called before index")
        n = len(queries)
        out_idx = np.full((n, k), -1, dtype=np.int64)
        out_scores = np.full((n, k), np.nan, dtype=np.float32)
        kk = min(k, self._n_items)
        if n == 0 or kk == 0:
            return out_idx, out_scores
        tokens = self._tokenize(queries, return_ids=False)
        retriever = self._retriever
        for q, (text, words) in enumerate(zip(queries, tokens)):
            ids = retriever.get_tokens_ids(words) if has_words(text) else []
            if not ids:
                continue
            scores = retriever.get_scores_from_ids(ids)
            nonzero = np.flatnonzero(scores)
            idx, top = top_k_sparse(scores[nonzero], nonzero, kk)
            out_idx[q, : len(idx)] = idx
            out_scores[q, : len(idx)] = top
        return out_idx, out_scores
