"""Each stage's examples in the layout of its loss; filtered hard negatives; caps; graded targets."""

import zlib

import numpy as np
import pytest

from relforge.config import TrainingStage, TwoTowerConfig
from relforge.grades import ESCI
from relforge.twotower import TrainingRows, graded_targets, stage_examples


def _rows() -> TrainingRows:
    # two queries; q1 has 2 positives, a true negative and a "negative" the model scores like a positive
    data = [("q1", "i1", "red shoes", "red shoes item", 3, 1), ("q1", "i2", "red shoes", "red running shoes", 3, 1),
            ("q1", "i3", "red shoes", "coffee mug", 0, 2), ("q1", "i4", "red shoes", "red shoes twin", 0, 4),
            ("q2", "i5", "blue shirt", "blue shirt item", 3, 1), ("q2", "i6", "blue shirt", "lamp", 0, 2),
            ("q2", "i7", "blue shirt", "blue shirt kids", 2, 5)]
    cols = list(zip(*data))
    grade = np.array(cols[4])
    return TrainingRows(np.array(cols[0], dtype=object), np.array(cols[1], dtype=object),
                        np.array(cols[2], dtype=object), np.array(cols[3], dtype=object), grade,
                        np.array(cols[5]), graded_targets(grade, None, ESCI, "expected-gain"))


def _fake_encoder(texts):
    """Deterministic vectors: texts about red shoes point along e0 (a \"red shoes twin\" exactly like the
    query, so it looks relevant), \"red running shoes\" close to it, blue shirts along e1, the rest apart."""
    basis = np.eye(8, dtype=np.float32)
    out = []
    for t in texts:
        if t.startswith("red shoes"):
            v = basis[0]
        elif t.startswith("red running"):
            v = basis[0] + 0.3 * basis[2]
        elif t.startswith("blue shirt"):
            v = basis[1]
        else:
            v = basis[3 + zlib.crc32(t.encode()) % 5]
        out.append(v / np.linalg.norm(v))
    return np.array(out, dtype=np.float32)


CATALOG = np.array(["toy car", "winter jacket", "glass bottle"], dtype=object)


def test_mnrl_examples_pair_each_positive_with_a_negative_that_passes_the_filter():
    spec = TrainingStage(stage=2, loss="mnrl", negatives=1)
    table, stats = stage_examples(_rows(), [1, 2, 3, 4], spec, TwoTowerConfig(), ESCI, _fake_encoder, CATALOG)
    assert table.column_names == ["anchor", "positive", "negative"]
    q1 = [r for r in table.to_pylist() if r["anchor"] == "red shoes"]
    assert len(q1) == 2 and all(r["negative"] == "coffee mug" for r in q1)  # "red shoes twin" filtered out
    assert stats["filtered_out"] >= 2 and stats["positives"] == 3


def test_a_positive_without_a_usable_negative_gets_a_random_catalog_item():
    spec = TrainingStage(stage=1, loss="mnrl", negatives=2)
    table, stats = stage_examples(_rows(), [1, 2], spec, TwoTowerConfig(), ESCI, _fake_encoder, CATALOG)
    assert table.column_names == ["anchor", "positive", "negative_1", "negative_2"]
    assert stats["filled_random"] > 0
    filled = {r["negative_2"] for r in table.to_pylist()}
    assert filled <= set(CATALOG.tolist()) | {"coffee mug", "lamp"}


def test_in_batch_only_and_the_per_query_cap():
    spec = TrainingStage(stage=1, loss="mnrl", negatives=0, max_examples=2)
    table, _ = stage_examples(_rows(), [1, 2], spec, TwoTowerConfig(), ESCI, _fake_encoder, CATALOG)
    assert table.column_names == ["anchor", "positive"] and table.num_rows == 2
    assert set(table.column("anchor").to_pylist()) == {"red shoes", "blue shirt"}  # the same share from each query


def test_cosent_pairs_carry_the_expected_gain():
    spec = TrainingStage(stage=3, loss="cosent")
    table, _ = stage_examples(_rows(), [1, 2, 3, 4, 5], spec, TwoTowerConfig(), ESCI, None, CATALOG)
    assert table.column_names == ["sentence1", "sentence2", "score"]
    scores = dict(zip(table.column("sentence2").to_pylist(), table.column("score").to_pylist()))
    assert scores["red shoes item"] == pytest.approx(1.0) and scores["blue shirt kids"] == pytest.approx(0.1)


def test_margin_mse_triples_label_the_target_margin_within_a_query():
    spec = TrainingStage(stage=3, loss="margin-mse", negatives=1)
    table, _ = stage_examples(_rows(), [1, 2, 3, 4, 5], spec, TwoTowerConfig(), ESCI, None, CATALOG)
    assert table.column_names == ["query", "positive", "negative", "label"]
    for r in table.to_pylist():
        assert r["label"] > 0
    assert all(r["query"] == "red shoes" or r["negative"] in ("lamp", "blue shirt kids") for r in table.to_pylist())


def test_expected_gain_uses_the_calibrated_probabilities_where_there_are_some():
    t = graded_targets(np.array([3, 3]), [[0.5, 0.0, 0.0, 0.5], None], ESCI, "expected-gain")
    assert t.tolist() == pytest.approx([0.5, 1.0])
    assert graded_targets(np.array([0, 3]), None, ESCI, "grade").tolist() == [0.0, 1.0]
