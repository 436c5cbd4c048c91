"""Step synthesize-queries: what it writes, the filters' outcome per query, the sub-run, and resuming
after a kill (a scripted generator says what was written, so every outcome is known)."""

from __future__ import annotations

import json

import pytest

from relforge.bus import DataBus
from relforge.coldstart import (
    FILTERS,
    coldstart_bus,
    query_id_for,
    run_synthesize_queries,
    synthetic_splits,
)
from relforge.errors import ConfigError
from relforge.grades import read_grade_scale
from tests.coldstart.conftest import write_shop


def _answer(title: str) -> str:
    colour, kind, material = title.split()
    if kind == "lamp":
        return title                                   # a copy of the title
    if kind == "mug" and colour == "red":
        return "something nobody sells"                # never finds its item: round trip
    if kind == "chair":
        return f"{colour} {kind}s" if material == "glass" else f"{kind} {colour}"   # near duplicates
    if kind == "bag" and colour == "black":
        return "bag " * 14                             # too long
    return f"{kind} {colour}"


def test_every_generated_query_is_kept_or_removed_by_the_rule_it_breaks(shop, config_for, scripted, tmp_path):
    generator = scripted(answer=_answer, fail=lambda title: title == "green jacket steel")
    config = config_for(tmp_path, "coldstart.items=48")
    summary = run_synthesize_queries(shop, config)
    sub = coldstart_bus(shop)
    table = {r["item_id"]: r for r in sub.read_table("synthetic_queries").to_pylist()}
    assert len(table) == 48 == summary["generated"]
    assert all(table[i]["removed_by"] == "copy" for i in table if i.startswith("lamp"))
    assert {table[i]["removed_by"] for i in table if i.startswith("mug-red")} == {"round-trip"}  # never a duplicate
    assert {table[i]["removed_by"] for i in table if i.startswith("bag-black")} == {"length"}
    assert table["jacket-green-1"]["removed_by"] == "failed"
    generated = {r["item_id"]: r for r in sub.read_table("generated_queries").to_pylist()}
    assert generated["jacket-green-1"]["query"] == "" and "HTTP 503" in generated["jacket-green-1"]["error"]
    for kind, second in (("chair", "near-duplicate"), ("shoes", "duplicate")):  # two items per colour
        rows = [table[i] for i in sorted(table) if i.startswith(kind)]
        assert sorted(r["removed_by"] or "" for r in rows) == [""] * 4 + [second] * 4, kind
    kept = [r for r in table.values() if r["removed_by"] is None]
    assert all(1 <= r["rank_source"] <= 10 for r in kept)
    # the report's shares are the table's
    report = json.loads((tmp_path / "run" / "reports" / "coldstart-queries.json").read_text())
    for name in FILTERS:
        assert report["filters"][name]["removed"] == sum(r["removed_by"] == name for r in table.values())
    assert report["kept"] == len(kept) == summary["kept"]
    assert "| copy |" in (tmp_path / "run" / "reports" / "coldstart-queries.md").read_text()
    # the few-shot examples came from the run's own judged queries, never a test-split one
    assert len(generator.calls) == 6  # 48 items in shards of 8


def test_the_kept_queries_are_a_run_of_their_own_with_a_train_and_a_calib_split(shop, config_for, scripted, tmp_path):
    scripted()
    run_synthesize_queries(shop, config_for(tmp_path))
    sub = coldstart_bus(shop)
    queries = sub.read_table("queries").to_pylist()
    kept = [r for r in sub.read_table("synthetic_queries").to_pylist() if r["removed_by"] is None]
    assert [q["query_id"] for q in queries] == [r["query_id"] for r in kept]
    assert {q["split"] for q in queries} == {"train", "calib"}
    assert all(q["query_id"] == query_id_for(q["source_item_id"], 0) for q in queries)
    assert sub.read_table("catalog").num_rows == shop.read_table("catalog").num_rows
    assert read_grade_scale(sub) == read_grade_scale(shop)
    # the run's own tables are untouched: no synthetic query among its queries
    assert not any(q.startswith("syn-") for q in shop.read_table("queries").column("query_id").to_pylist())


def test_a_killed_run_resumes_at_the_first_shard_not_committed(shop, config_for, scripted, tmp_path):
    config = config_for(tmp_path)  # 24 items in 3 shards of 8
    first = scripted(stop_after=2)
    with pytest.raises(KeyboardInterrupt):
        run_synthesize_queries(shop, config)
    assert len(first.calls) == 2
    sub = coldstart_bus(shop)
    assert not sub.is_committed("generated_queries")
    second = scripted()
    run_synthesize_queries(shop, config)
    assert len(second.calls) == 1            # only the shard the kill left
    assert second.calls[0] not in first.calls
    ids = sub.read_table("generated_queries").column("query_id").to_pylist()
    assert len(ids) == len(set(ids)) == 24   # every query once
    third = scripted()
    run_synthesize_queries(shop, config)
    assert third.calls == []                 # all committed: nothing is generated again


def test_a_catalog_alone_works_and_several_queries_per_item_get_their_own_ids(tmp_path, config_for, scripted):
    bus = write_shop(DataBus(tmp_path / "run"), queries=False, judgments=False)
    generator = scripted()
    config = config_for(tmp_path, "coldstart.items=8", "coldstart.queries_per_item=2", "coldstart.temperature=0.7")
    summary = run_synthesize_queries(bus, config)
    assert summary["generated"] == 16
    ids = coldstart_bus(bus).read_table("generated_queries").column("query_id").to_pylist()
    assert len(set(ids)) == 16
    assert len(generator.calls) == 1


def test_queries_per_item_above_one_needs_sampling_and_the_split_is_seeded():
    from relforge.config import load_config

    with pytest.raises(ConfigError, match="temperature"):
        load_config(overrides=["coldstart.queries_per_item=3"])
    ids = [f"syn-{i}" for i in range(200)]
    splits = synthetic_splits(ids, 0.1, seed=1)
    assert splits == synthetic_splits(ids, 0.1, seed=1)
    assert 5 <= splits.count("calib") <= 40
    assert synthetic_splits(["a", "b"], 0.01, seed=1).count("calib") == 1


def test_the_runs_own_queries_are_the_examples_never_a_test_one_and_judged_items_only_if_allowed(
        shop, config_for, scripted, tmp_path):
    generator = scripted()
    run_synthesize_queries(shop, config_for(tmp_path, "coldstart.items=8", "coldstart.few_shot=12"))
    chat = generator.chats[0]
    turns = [m["content"] for m in chat if m["role"] == "assistant"]
    train_and_calib = {"shoes", "jacket", "lamp", "mug", "chair", "bag", "shoes for men", "jacket for men",
                       "lamp for men", "mug for men"}
    assert turns and set(turns) <= train_and_calib                                   # the run's queries, not test
    assert all("red" in m["content"] for m in chat[1:-1] if m["role"] == "user")     # each with its best (red) item
    text = json.dumps(chat)
    assert "chair for men" not in text and "bag for men" not in text                 # the test split's queries
    generator = scripted()
    run_synthesize_queries(shop, config_for(tmp_path / "plain", "coldstart.items=8", "coldstart.few_shot=12",
                                            "coldstart.few_shot_judged=false"))
    chat = generator.chats[0]
    assert [m["role"] for m in chat] == ["system", "user"]                           # no judged item: a style note
    assert "shoes for men" in chat[0]["content"] and "chair for men" not in chat[0]["content"]
