"""The item sample (stratified, seeded, prefix-stable) and the few-shot examples (never the test split)."""

from __future__ import annotations

from collections import Counter

import pyarrow as pa

from relforge.coldstart import few_shot_examples, sample_items
from relforge.tiers import Example


def _catalog(sizes: dict[str, int]) -> pa.Table:
    rows = [{"item_id": f"{cat}-{i}", "title": f"{cat} item {i}", "category": cat}
            for cat, n in sizes.items() for i in range(n)]
    rows.append({"item_id": "blank", "title": "!!!", "category": "A"})  # no letter or digit: never drawn
    return pa.Table.from_pylist(rows)


def test_the_sample_is_proportional_to_the_categories_with_one_from_each():
    catalog = _catalog({"A": 60, "B": 30, "C": 9, "D": 1})
    positions, info = sample_items(catalog, 20, "category", seed=1)
    cats = Counter(catalog.column("category").to_pylist()[p] for p in positions)
    assert sum(cats.values()) == 20 and len(set(positions.tolist())) == 20
    assert cats["D"] == 1 and cats["C"] >= 1
    assert cats["A"] > cats["B"] > cats["C"]
    assert info["stratified_by"] == "category" and info["per_stratum"] == dict(sorted(cats.items()))
    assert "blank" not in {catalog.column("item_id").to_pylist()[p] for p in positions}


def test_the_sample_is_seeded_and_a_larger_one_keeps_the_smaller_ones_items():
    catalog = _catalog({"A": 40, "B": 40})
    small, _ = sample_items(catalog, 10, "category", seed=7)
    again, _ = sample_items(catalog.take(pa.array(list(range(catalog.num_rows))[::-1])), 10, "category", seed=7)
    ids = catalog.column("item_id").to_pylist()
    reversed_ids = ids[::-1]
    assert {ids[p] for p in small} == {reversed_ids[p] for p in again}  # row order does not matter
    large, _ = sample_items(catalog, 30, "category", seed=7)
    assert {ids[p] for p in small} <= {ids[p] for p in large}
    other, _ = sample_items(catalog, 10, "category", seed=8)
    assert {ids[p] for p in other} != {ids[p] for p in small}


def test_without_the_category_column_the_sample_is_plain_and_never_larger_than_the_catalog():
    catalog = _catalog({"A": 5}).drop_columns(["category"])
    positions, info = sample_items(catalog, 50, "category", seed=1)
    assert info["stratified_by"] is None and len(positions) == 5


def test_few_shot_examples_pair_a_query_with_its_best_item_and_never_use_the_test_split():
    queries = pa.Table.from_pylist([
        {"query_id": "q1", "query": "red shoes", "split": "train"},
        {"query_id": "q2", "query": "secret test query", "split": "test"},
        {"query_id": "q3", "query": "blue mug", "split": "unlabeled"},
    ])
    judgments = pa.Table.from_pylist([
        {"query_id": "q1", "item_id": "a", "grade": 1}, {"query_id": "q1", "item_id": "b", "grade": 3},
        {"query_id": "q2", "item_id": "a", "grade": 3},
    ])
    items = {"a": "red sandal", "b": "red running shoe"}
    assert few_shot_examples(queries, judgments, items, k=3, seed=1) == [Example("red shoes", "red running shoe")]
    plain = few_shot_examples(queries, None, items, k=3, seed=1)
    assert {e.query for e in plain} == {"red shoes", "blue mug"} and all(e.item is None for e in plain)
    assert few_shot_examples(queries, None, items, k=0, seed=1) == []
