"""The three index kinds: exact agrees with brute force, ANN kinds reach high recall, ids map."""

from __future__ import annotations

import faiss
import numpy as np
import pytest

from relforge.errors import ConfigError
from relforge.index import IndexParams, ItemIndex, batch_search, exact_knn, recall_at_k
from tests.index.conftest import brute_force


def test_exact_matches_brute_force_and_restores_faiss_settings(vectors, queries):
    before = (faiss.cvar.distance_compute_blas_database_bs, faiss.cvar.distance_compute_blas_threshold)
    index = ItemIndex.build(vectors, kind="exact")
    rows, scores = index.search(queries, 10)
    truth, truth_scores = brute_force(queries, vectors, 10)
    assert index.faiss_class == "IndexFlatIP" and index.kind == "exact"
    assert recall_at_k(rows, truth, 10) == 1.0
    assert np.allclose(scores, truth_scores, atol=1e-5)
    assert (faiss.cvar.distance_compute_blas_database_bs, faiss.cvar.distance_compute_blas_threshold) == before
    assert index.recall.recall == 1.0 and index.recall.source == "exact" and index.recall.sample == 0


def test_exact_knn_takes_the_blas_path_for_mid_size_batches(vectors, queries):
    # 100 queries x 24 dims is under faiss's own BLAS threshold (128,000 / dim); results agree either way
    _, rows = exact_knn(queries[:100], vectors, 5, IndexParams())
    truth, _ = brute_force(queries[:100], vectors, 5)
    assert recall_at_k(rows, truth, 5) == 1.0


@pytest.mark.parametrize(
    ("kind", "faiss_class", "params"),
    [
        ("hnsw", "IndexHNSWFlat", IndexParams(hnsw_m=16)),
        ("ivfpq", "IndexRefineFlat", IndexParams(ivf_nprobe=16, refine="flat", pq_nbits=6)),
        ("ivfpq", "IndexRefine", IndexParams(ivf_nprobe=16, refine="sq8", pq_nbits=6)),
        ("ivfpq", "IndexIVFPQ", IndexParams(ivf_nprobe=16, refine="none", pq_nbits=6)),
    ],
)
def test_ann_kinds_find_most_true_neighbours(vectors, queries, kind, faiss_class, params):
    index = ItemIndex.build(vectors, kind=kind, params=params)
    rows, scores = index.search(queries, 10)
    truth, _ = brute_force(queries, vectors, 10)
    assert index.kind == kind and index.faiss_class == faiss_class and len(index) == len(vectors)
    assert recall_at_k(rows, truth, 10) >= (0.3 if params.refine == "none" else 0.95)
    finite = scores[np.isfinite(scores)]
    assert finite.max() <= 1.0 + 1e-3  # inner products of unit vectors (PQ alone approximates)


def test_refine_raises_ivfpq_recall(vectors, queries):
    truth, _ = brute_force(queries, vectors, 10)
    recalls = {}
    for refine in ("none", "flat"):
        index = ItemIndex.build(vectors, kind="ivfpq", params=IndexParams(ivf_nprobe=16, refine=refine, pq_nbits=6))
        recalls[refine] = recall_at_k(index.search(queries, 10)[0], truth, 10)
    assert recalls["flat"] > recalls["none"] + 0.3


def test_search_pads_small_catalogs_and_maps_ids():
    x = np.eye(3, dtype=np.float32)
    index = ItemIndex.build(x, ["a", "b", "c"], kind="exact")
    rows, scores = index.search(x[2:3], 5)
    assert rows[0, :1].tolist() == [2] and rows[0, 3:].tolist() == [-1, -1]
    assert np.isnan(scores[0, 3:]).all() and scores[0, 0] == pytest.approx(1.0)
    assert index.ids(rows)[0][0] == "c" and index.ids(rows)[0][3:] == [None, None]
    empty_rows, _ = index.search(np.zeros((0, 3), np.float32), 5)
    assert empty_rows.shape == (0, 5)


def test_bad_input_is_refused():
    x = np.eye(3, dtype=np.float32)
    with pytest.raises(ConfigError, match="unknown index kind"):
        ItemIndex.build(x, kind="lsh")
    with pytest.raises(ConfigError, match="item ids"):
        ItemIndex.build(x, ["a", "b"], kind="exact")
    index = ItemIndex.build(x, kind="exact")
    with pytest.raises(ConfigError, match="dimension 4"):
        index.search(np.ones((1, 4), np.float32), 2)


def test_params_are_validated_in_one_place():
    with pytest.raises(ConfigError, match="hnsw_m"):
        IndexParams(hnsw_m=0)
    with pytest.raises(ConfigError, match="served_ann_kind"):
        IndexParams(served_ann_kind="exact")
    with pytest.raises(ConfigError, match="does not divide"):
        IndexParams(pq_m=5).pq_m_for(384)
    assert IndexParams().pq_m_for(384) == 48 and IndexParams().pq_m_for(100) == 10
    assert IndexParams().nlist_for(1_000_000) == 2000
    assert IndexParams().nlist_for(1000) == 20  # capped at n / train_per_list
    p = IndexParams(hnsw_m=8)
    assert IndexParams.from_dict(p.to_dict()) == p
    with pytest.raises(ConfigError, match="unknown fields"):
        IndexParams.from_dict({"hnsw_mm": 3})


def test_batch_search_is_exact_for_small_work(vectors, queries):
    rows, _ = batch_search(vectors, queries, 10)
    truth, _ = brute_force(queries, vectors, 10)
    assert np.array_equal(rows, truth) or recall_at_k(rows, truth, 10) == 1.0


def test_threads_setting_is_applied_and_restored(vectors, queries):
    before = faiss.omp_get_max_threads()
    index = ItemIndex.build(vectors, kind="hnsw", params=IndexParams(hnsw_m=8, threads=1))
    index.search(queries, 5)
    assert faiss.omp_get_max_threads() == before
    with pytest.raises(ConfigError, match="threads"):
        IndexParams(threads=0)
