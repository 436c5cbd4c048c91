"""Graded pairs from the bus, and the ways training and evaluation cut them."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from relforge.errors import InputError
from relforge.finetune import (
    balanced_class_weights,
    load_graded_pairs,
    sample_per_query,
    split_within_queries,
)
from tests.finetune.conftest import synthetic_pairs


def test_load_joins_query_and_item_text_per_split(synthetic_bus):
    train = load_graded_pairs(synthetic_bus, "train")
    assert len(train) == 8 * 12
    assert set(train.query_id) == {f"q{i:02d}" for i in range(8)}
    # the item text is the catalog's `text` column, the query its text
    i = int(np.flatnonzero(train.item_id == "i00-03")[0])
    assert train.text[i].endswith("| with cotton") and train.query[i] == "shoes"
    both = load_graded_pairs(synthetic_bus, ["calib", "test"])
    assert len(both) == 4 * 12 and not set(both.query_id) & set(train.query_id)
    titles = load_graded_pairs(synthetic_bus, "train", item_field="title")
    assert not any("|" in t for t in titles.text)


def test_load_is_deterministic_and_sorted(synthetic_bus):
    a = load_graded_pairs(synthetic_bus, "train")
    b = load_graded_pairs(synthetic_bus, "train")
    assert list(a.item_id) == list(b.item_id)
    keys = list(zip(a.query_id, a.item_id))
    assert keys == sorted(keys)


def test_unknown_item_names_row_and_field(synthetic_bus):
    judgments = synthetic_bus.read_table("judgments")
    ids = judgments.column("item_id").to_pylist()
    ids[4] = "nope"
    bad = judgments.set_column(judgments.schema.get_field_index("item_id"), "item_id", pa.array(ids))
    synthetic_bus.write_table("judgments", bad, metadata=synthetic_bus.manifest("judgments").metadata)
    with pytest.raises(InputError) as err:
        load_graded_pairs(synthetic_bus, "train")
    assert err.value.row == 5 and err.value.field == "item_id" and "nope" in str(err.value)


def test_unknown_item_field_and_empty_split(synthetic_bus):
    with pytest.raises(InputError, match="no such column"):
        load_graded_pairs(synthetic_bus, "train", item_field="colour")
    with pytest.raises(InputError, match="no judged pair"):
        load_graded_pairs(synthetic_bus, "unlabeled")


def test_grade_outside_scale_is_an_input_error(synthetic_bus):
    with pytest.raises(InputError, match="outside 0..1"):
        load_graded_pairs(synthetic_bus, "train", n_grades=2)


def test_sample_per_query_caps_and_keeps_every_query():
    pairs = synthetic_pairs(400, seed=1, n_queries=10)
    small = sample_per_query(pairs, 100, seed=3)
    assert len(small) == 100
    assert set(small.query_id) == set(pairs.query_id)
    assert len(set(small.item_id)) == 100 and set(small.item_id) <= set(pairs.item_id)
    assert sample_per_query(pairs, None, seed=3) is pairs
    assert list(sample_per_query(pairs, 100, seed=3).item_id) == list(small.item_id)


def test_split_within_queries_is_disjoint_and_covers_each_query():
    pairs = synthetic_pairs(200, seed=2, n_queries=10)
    train, held = split_within_queries(pairs, 0.2, seed=5)
    assert len(train) + len(held) == len(pairs)
    assert not set(train.item_id) & set(held.item_id)
    assert set(held.query_id) == set(train.query_id) == set(pairs.query_id)
    assert 0.15 < len(held) / len(pairs) < 0.25


def test_balanced_class_weights():
    w = balanced_class_weights(np.array([0, 0, 0, 1, 3]), 4)
    assert w[2] == 0.0
    counts = np.array([3, 1, 0, 1])
    assert np.allclose((w * counts).sum(), 5)  # weighted counts sum to n
    assert w[1] == pytest.approx(3 * w[0])
