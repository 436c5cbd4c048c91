"""One shard of candidates from hand-made channel results."""

import numpy as np
import pyarrow as pa

from relforge.bus._contracts import CANDIDATES
from relforge.mine import ChannelResult, build_candidates, sample_negatives

ITEM_IDS = pa.array([f"i{n}" for n in range(10)])


def _res(name, lexical, rows, k=3):
    idx = np.full((len(rows), k), -1, np.int64)
    scores = np.full((len(rows), k), np.nan, np.float32)
    for q, items in enumerate(rows):
        idx[q, : len(items)] = items
        scores[q, : len(items)] = np.linspace(1.0, 0.5, len(items)) if items else []
    return ChannelResult(name, lexical, idx, scores)


RESULTS = [
    _res("bm25", True, [[0, 1, 2], [], [5]]),
    _res("ngram", True, [[1, 0, 3], [4], [5]]),
    _res("dense", False, [[0, 6, 7], [4, 8], [5, 9]]),
]


def _build(random_negatives=2, query_ids=("qa", "qb", "qc"), results=RESULTS, eligible=None, seed=13):
    eligible = np.ones(10, bool) if eligible is None else eligible
    return build_candidates(pa.array(list(query_ids)), ITEM_IDS, results, eligible, random_negatives, seed)


def _rows(table):
    return {(r["query_id"], r["item_id"]): r for r in table.to_pylist()}


def test_ranks_scores_and_buckets():
    table = _build(random_negatives=0)
    CANDIDATES.conform(table, "test")  # the contract holds
    rows = _rows(table)
    assert len(rows) == table.num_rows == 6 + 2 + 2
    r = rows[("qa", "i0")]
    assert (r["rank_bm25"], r["rank_ngram"], r["rank_dense"], r["n_channels"], r["bucket"]) == (1, 2, 1, 3, "consensus")
    assert r["score_bm25"] == 1.0 and r["score_ngram"] == 0.75
    r = rows[("qa", "i1")]
    assert (r["rank_dense"], r["score_dense"], r["bucket"]) == (None, None, "lexical_only")
    assert rows[("qa", "i2")]["bucket"] == "single"
    assert rows[("qa", "i6")]["bucket"] == "single"
    assert rows[("qb", "i4")]["bucket"] == "partial"
    assert rows[("qc", "i5")]["bucket"] == "consensus"
    assert table.schema.field("rank_bm25").type == pa.int32()
    assert table.schema.field("score_dense").type == pa.float32()


def test_rows_grouped_by_query_most_channels_first():
    table = _build(random_negatives=1)
    qa = [r for r in table.to_pylist() if r["query_id"] == "qa"]
    assert [r["item_id"] for r in qa[:2]] == ["i0", "i1"]  # 3 channels, then 2
    assert qa[-1]["bucket"] == "random"
    assert table.column("query_id").to_pylist() == sorted(table.column("query_id").to_pylist())


def test_random_negatives_are_unretrieved_eligible_and_seeded():
    eligible = np.ones(10, bool)
    eligible[9] = False
    table = _build(random_negatives=3, eligible=eligible)
    rows = table.to_pylist()
    for q in ("qa", "qb", "qc"):
        retrieved = {r["item_id"] for r in rows if r["query_id"] == q and r["n_channels"] > 0}
        negatives = [r for r in rows if r["query_id"] == q and r["bucket"] == "random"]
        assert len(negatives) == 3
        assert all(r["n_channels"] == 0 and r["rank_bm25"] is None and r["score_dense"] is None for r in negatives)
        ids = {r["item_id"] for r in negatives}
        assert not ids & retrieved and "i9" not in ids
    # the same query gets the same negatives whatever else is in its shard
    alone = _build(random_negatives=3, query_ids=["qb"], results=[
        ChannelResult(r.name, r.lexical, r.item_index[1:2], r.scores[1:2]) for r in RESULTS
    ], eligible=eligible)
    neg = lambda t, q: [r["item_id"] for r in t.to_pylist() if r["query_id"] == q and r["bucket"] == "random"]
    assert neg(alone, "qb") == neg(table, "qb")
    # another seed, other negatives (for at least one query)
    other = _build(random_negatives=3, eligible=eligible, seed=14)
    assert any(neg(other, q) != neg(table, q) for q in ("qa", "qb", "qc"))


def test_small_catalog_gives_fewer_negatives():
    table = _build(random_negatives=50)
    per_query = {q: sum(1 for r in table.to_pylist() if r["query_id"] == q and r["bucket"] == "random") for q in ["qa", "qb", "qc"]}
    assert per_query == {"qa": 10 - 6, "qb": 10 - 2, "qc": 10 - 2}


def test_sample_negatives_large_catalog_is_distinct_and_excludes():
    rng = np.random.default_rng(0)
    eligible = np.ones(100_000, bool)
    eligible[::2] = False
    exclude = np.arange(1, 1001, 2)
    picked = sample_negatives(rng, 20, eligible, exclude)
    assert len(set(picked.tolist())) == 20
    assert eligible[picked].all() and not set(picked.tolist()) & set(exclude.tolist())


def test_no_queries_gives_empty_table_with_schema():
    empty = [ChannelResult(r.name, r.lexical, r.item_index[:0], r.scores[:0]) for r in RESULTS]
    table = _build(query_ids=[], results=empty)
    assert table.num_rows == 0 and "rank_ngram" in table.column_names
