"""Step coldstart-candidates: per synthetic query its source item, the channel's top items other than
the source as hard negatives, and random items the channel did not retrieve."""

from __future__ import annotations

from collections import Counter

from relforge.coldstart import coldstart_bus, run_coldstart_candidates


def test_each_query_gets_its_source_hard_negatives_from_bm25_and_random_items(synthesized):
    bus, config = synthesized
    summary = run_coldstart_candidates(bus, config)
    sub = coldstart_bus(bus)
    queries = {r["query_id"]: r for r in sub.read_table("queries").to_pylist()}
    rows = sub.read_table("candidates").to_pylist()
    per_query: dict[str, list[dict]] = {}
    for r in rows:
        per_query.setdefault(r["query_id"], []).append(r)
    assert set(per_query) == set(queries)
    for qid, cands in per_query.items():
        buckets = Counter(r["bucket"] for r in cands)
        assert buckets == {"source": 1, "hard_negative": 3, "random": 2}, qid
        source = next(r for r in cands if r["bucket"] == "source")
        assert source["item_id"] == queries[qid]["source_item_id"] and source["rank_bm25"] >= 1
        hard = [r for r in cands if r["bucket"] == "hard_negative"]
        assert queries[qid]["source_item_id"] not in {r["item_id"] for r in hard}
        assert [r["rank_bm25"] for r in hard] == sorted(r["rank_bm25"] for r in hard)   # the top ones, in order
        assert all(r["rank_bm25"] is None and r["n_channels"] == 0 for r in cands if r["bucket"] == "random")
        assert len({r["item_id"] for r in cands}) == len(cands)                       # no item twice
    assert summary["source_found"] == 1.0  # the round trip kept only queries that find their source
    # hard negatives share a word with the query (its kind or its colour, `<kind> <colour>`): lexical look-alikes
    for r in rows:
        if r["bucket"] == "hard_negative":
            kind, colour = queries[r["query_id"]]["query"].split()
            assert kind in r["item_id"] or colour in r["item_id"], r

def test_candidates_are_the_same_on_a_rerun_and_resume_per_shard(synthesized):
    bus, config = synthesized
    config = config.model_copy(update={"mine": config.mine.model_copy(update={"queries_per_shard": 5})})
    run_coldstart_candidates(bus, config)
    sub = coldstart_bus(bus)
    first = sub.read_table("candidates").to_pylist()
    manifest = sub.manifest("candidates")
    assert len(manifest.files) >= 3
    run_coldstart_candidates(bus, config)
    assert sub.manifest("candidates") == manifest   # committed with the same inputs: not redone
    assert sub.read_table("candidates").to_pylist() == first
