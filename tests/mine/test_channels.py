"""The channels one by one: odd queries and items, small catalogs, exact and HNSW search."""

from __future__ import annotations

import numpy as np
import pytest

from relforge.config import RelforgeConfig
from relforge.errors import ConfigError
from relforge.mine.channels import (
    BM25Channel,
    Channel,
    DenseChannel,
    EmbeddingCache,
    NgramChannel,
    VectorIndex,
    available_channels,
    build_channel,
    register_channel,
    top_k_rows,
    top_k_sparse,
    unregister_channel,
)
from tests.mine.conftest import ITEMS

IDS = [i for i, _, _ in ITEMS]
TEXTS = [t for _, _, t in ITEMS]
POS = {item_id: n for n, item_id in enumerate(IDS)}


def _found(idx: np.ndarray, row: int) -> list[str]:
    return [IDS[i] for i in idx[row] if i >= 0]


@pytest.fixture(scope="module")
def bm25() -> BM25Channel:
    ch = BM25Channel()
    ch.index(TEXTS, IDS)
    return ch


@pytest.fixture(scope="module")
def ngram() -> NgramChannel:
    ch = NgramChannel(batch_size=2)
    ch.index(TEXTS, IDS)
    return ch


@pytest.fixture
def dense(mine_config) -> DenseChannel:
    ch = build_channel("dense", mine_config)
    ch.index(TEXTS, IDS)
    return ch


def _check_shape(idx, scores, n, k):
    assert idx.shape == (n, k) and scores.shape == (n, k)
    assert idx.dtype == np.int64 and scores.dtype == np.float32
    for row_i, row_s in zip(idx, scores):
        hit = row_i >= 0
        # results first, then padding; scores do not increase; no item twice
        assert not np.any(hit[1:] & ~hit[:-1])
        assert np.all(np.isnan(row_s[~hit]))
        assert np.all(np.diff(row_s[hit]) <= 1e-6)
        assert len(set(row_i[hit].tolist())) == int(hit.sum())


def test_bm25_stems_and_drops_stop_words(bm25):
    idx, scores = bm25.search(["shoe", "the and of", "!!! ???", "Running"], k=5)
    _check_shape(idx, scores, 4, 5)
    assert set(_found(idx, 0)) == {"i01", "i02"}  # "shoe" matches "shoes" by stemming
    assert _found(idx, 1) == []  # only stop words
    assert _found(idx, 2) == []  # only punctuation
    assert set(_found(idx, 3)) == {"i01", "i02"}  # case folded
    assert np.all(scores[0, :2] > 0)


def test_bm25_misses_spelling_variants_that_ngram_finds(bm25, ngram):
    b_idx, _ = bm25.search(["tshirts"], k=5)
    n_idx, _ = ngram.search(["tshirts"], k=5)
    assert set(_found(b_idx, 0)) == {"i04"}  # stemmed word "tshirt" only
    assert {"i03", "i04"} <= set(_found(n_idx, 0))  # "t-shirt" too, by character n-grams


def test_non_latin_text(bm25, ngram, dense):
    for ch in (bm25, ngram):
        idx, _ = ch.search(["паровой утюг", "東京タワー"], k=3)
        assert _found(idx, 0)[0] == "i13"
        assert _found(idx, 1)[0] == "i14"
    idx, scores = dense.search(["паровой утюг"], k=3)
    assert (idx >= 0).sum() == 3 and np.all(np.isfinite(scores))


def test_items_without_words_are_never_retrieved(bm25, ngram, dense):
    queries = ["---", "!!!", "...", "shoes", "black chair"]
    for ch in (bm25, ngram, dense):
        idx, _ = ch.search(queries, k=len(IDS))
        assert POS["i16"] not in idx, ch.name


def test_item_with_empty_description_is_found_by_its_title(bm25, ngram):
    for ch in (bm25, ngram):
        idx, _ = ch.search(["black phone case"], k=3)
        assert _found(idx, 0)[0] == "i15", ch.name


def test_queries_without_words_retrieve_nothing_in_any_channel(bm25, ngram, dense):
    for ch in (bm25, ngram, dense):
        idx, scores = ch.search(["!!! ???", "", "   "], k=4)
        assert np.all(idx == -1) and np.all(np.isnan(scores)), ch.name


def test_stop_word_query_defined_per_channel(bm25, ngram, dense):
    # bm25 drops stop words (nothing left); the character and dense channels still read them
    assert np.all(bm25.search(["the and of"], k=3)[0] == -1)
    assert (dense.search(["the and of"], k=3)[0] >= 0).sum() == 3


def test_catalog_smaller_than_k_pads(mine_config):
    texts, ids = ["red shoes", "blue shoes", "green shirt"], ["a", "b", "c"]
    for name in ("bm25", "ngram", "dense"):
        ch = build_channel(name, mine_config)
        ch.index(texts, ids)
        idx, scores = ch.search(["red", "green shirt"], k=10)
        _check_shape(idx, scores, 2, 10)
        assert np.all(idx[:, 3:] == -1), name
        if name == "dense":  # always its k nearest, here the whole catalog
            assert sorted(idx[0, :3].tolist()) == [0, 1, 2]
        else:  # only the items sharing words or n-grams
            assert idx[0][idx[0] >= 0].tolist() == [0], name


def test_empty_query_list_and_empty_catalog():
    ch = BM25Channel()
    ch.index([], [])
    idx, scores = ch.search(["shoes"], k=3)
    assert np.all(idx == -1) and np.all(np.isnan(scores))
    idx, _scores = ch.search([], k=3)
    assert idx.shape == (0, 3)


QUERIES = ["running shoes", "tshirt", "water bottles", "usb charger", "steel", "паровой", "black"]


def test_bm25_agrees_with_bm25s_retrieve(bm25):
    import bm25s

    idx, scores = bm25.search(QUERIES, k=8)
    tokens = bm25s.tokenize(QUERIES, stopwords="en", stemmer=bm25.stemmer, show_progress=False)
    ref_idx, ref_scores = bm25._retriever.retrieve(tokens, k=8, show_progress=False)
    for q in range(len(QUERIES)):
        hit = ref_scores[q] > 0
        assert np.allclose(scores[q][idx[q] >= 0], ref_scores[q][hit])
        assert set(idx[q][idx[q] >= 0].tolist()) == set(ref_idx[q][hit].tolist())


def test_ngram_agrees_with_brute_force(ngram):
    idx, scores = ngram.search(QUERIES, k=8)
    sims = (ngram._vectors(QUERIES) @ ngram._items_t).toarray()
    ref_idx, ref_scores = top_k_rows(sims, k=8)
    assert np.array_equal(idx, ref_idx) and np.allclose(scores, ref_scores, equal_nan=True)


def test_top_k_sparse():
    idx, top = top_k_sparse(np.array([0.2, 0.0, 0.9, 0.2, 0.5], np.float32), np.array([7, 3, 1, 4, 9]), k=4)
    assert idx.tolist() == [1, 9, 4, 7] and np.allclose(top, [0.9, 0.5, 0.2, 0.2])  # ties by index
    idx, _ = top_k_sparse(np.array([0.2, 0.9, 0.1], np.float32), np.array([7, 3, 1]), k=2)
    assert idx.tolist() == [3, 7]
    idx, _ = top_k_sparse(np.array([0.0], np.float32), np.array([5]), k=3)
    assert idx.tolist() == []


def test_ngram_batches_do_not_change_results():
    one, many = NgramChannel(batch_size=1), NgramChannel(batch_size=1000)
    for ch in (one, many):
        ch.index(TEXTS, IDS)
    queries = ["running shoes", "tshirt", "water bottles", "usb charger", "паровой"]
    a, sa = one.search(queries, k=6)
    b, sb = many.search(queries, k=6)
    assert np.array_equal(a, b) and np.allclose(sa, sb, equal_nan=True)


def test_dense_scores_are_cosines(dense):
    idx, scores = dense.search(["red running shoes"], k=len(IDS))
    finite = scores[np.isfinite(scores)]
    assert finite.max() <= 1.0 + 1e-5 and finite.min() >= -1.0 - 1e-5
    assert (idx >= 0).sum() == len(IDS) - 1  # all but i16, which has no word


def test_dense_embeddings_are_cached_between_runs(tmp_path):
    calls = []

    def encoder(texts):
        calls.append(len(texts))
        rng = np.random.default_rng(len(texts))
        v = rng.normal(size=(len(texts), 8)).astype(np.float32)
        return v / np.linalg.norm(v, axis=1, keepdims=True)

    cache = EmbeddingCache(tmp_path / "emb", "encoder-a")
    first = DenseChannel(encoder, VectorIndex(100), cache=cache)
    first.index(TEXTS, IDS)
    second = DenseChannel(encoder, VectorIndex(100), cache=cache)
    second.index(TEXTS, IDS)
    assert calls == [len(TEXTS) - 1]  # encoded once (i16 has no word), then read back
    q = np.ones((1, 8), np.float32) / np.sqrt(8)
    assert np.array_equal(first.search_vectors(q, 5)[0], second.search_vectors(q, 5)[0])
    DenseChannel(encoder, VectorIndex(100), cache=cache).index([*TEXTS[:-1], "changed"], IDS)
    DenseChannel(encoder, VectorIndex(100), cache=EmbeddingCache(tmp_path / "emb", "encoder-b")).index(TEXTS, IDS)
    assert len(calls) == 3  # other texts, or another encoder: encoded again


def test_vector_index_exact_and_hnsw_agree_with_brute_force():
    rng = np.random.default_rng(0)
    vecs = rng.normal(size=(300, 16)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    queries = vecs[:20] + 0.05 * rng.normal(size=(20, 16)).astype(np.float32)
    truth = np.argsort(-(queries @ vecs.T), axis=1)[:, :10]
    exact = VectorIndex(exact_max_items=1000)
    exact.build(vecs)
    hnsw = VectorIndex(exact_max_items=100, hnsw_m=16, ef_search=64)
    hnsw.build(vecs)
    assert exact.kind == "IndexFlatIP" and hnsw.kind == "IndexHNSWFlat"
    e_idx, e_scores = exact.search(queries, 10)
    h_idx, _ = hnsw.search(queries, 10)
    assert np.array_equal(e_idx, truth)
    assert np.allclose(e_scores, np.sort(queries @ vecs.T, axis=1)[:, ::-1][:, :10], atol=1e-5)
    recall = np.mean([len(set(h) & set(t)) / 10 for h, t in zip(h_idx, truth)])
    assert recall >= 0.95


def test_vector_index_maps_rows_to_catalog_positions():
    index = VectorIndex(exact_max_items=10)
    index.build(np.eye(3, dtype=np.float32), positions=np.array([5, 7, 9]))
    idx, _scores = index.search(np.array([[0, 1, 0]], dtype=np.float32), k=5)
    assert idx[0].tolist()[:3][0] == 7 and idx[0, 3:].tolist() == [-1, -1]


def test_top_k_rows_orders_and_pads():
    scores = np.array([[0.1, 0.9, 0.0, 0.5], [0.0, 0.0, 0.0, 0.0], [0.3, 0.3, 0.2, -1.0]], np.float32)
    idx, top = top_k_rows(scores, k=3)
    assert idx.tolist() == [[1, 3, 0], [-1, -1, -1], [0, 1, 2]]
    assert np.allclose(top[0], [0.9, 0.5, 0.1])
    idx, _ = top_k_rows(scores, k=6, valid=np.array([True, False, True, True]))
    assert idx[0].tolist() == [3, 0, -1, -1, -1, -1]


class _Echo(Channel):
    """A fourth channel for the registry tests: retrieves items whose id is in the query."""

    name = "echo"
    lexical = False

    def index(self, texts, item_ids):
        self.ids = list(item_ids)

    def search(self, queries, k):
        idx = np.full((len(queries), k), -1, np.int64)
        scores = np.full((len(queries), k), np.nan, np.float32)
        for q, text in enumerate(queries):
            hits = [i for i, item in enumerate(self.ids) if item in text][:k]
            idx[q, : len(hits)] = hits
            scores[q, : len(hits)] = 1.0
        return idx, scores


def test_registry_builds_registered_channels():
    assert {"bm25", "ngram", "dense"} <= set(available_channels())
    register_channel("echo", lambda cfg: _Echo())
    try:
        ch = build_channel("echo", RelforgeConfig())
        assert isinstance(ch, _Echo)
        with pytest.raises(ConfigError, match="already registered"):
            register_channel("echo", lambda cfg: _Echo())
    finally:
        unregister_channel("echo")
    with pytest.raises(ConfigError, match='unknown channel "echo"'):
        build_channel("echo", RelforgeConfig())
    with pytest.raises(ConfigError, match="must match"):
        register_channel("Two-Tower", lambda cfg: _Echo())
    register_channel("misnamed", lambda cfg: _Echo())
    try:
        with pytest.raises(ConfigError, match="calls itself"):
            build_channel("misnamed", RelforgeConfig())
    finally:
        unregister_channel("misnamed")
