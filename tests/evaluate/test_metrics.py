"""Per-query metrics through ir-measures: the scale's own gains, both unjudged conventions."""

from __future__ import annotations

import logging
import math

import pyarrow as pa
import pytest

from relforge.errors import InputError
from relforge.evaluate import (
    MetricSettings,
    default_relevant_grade,
    integer_gains,
    per_query_metrics,
    read_run,
)
from relforge.grades import ESCI, GradeScale

ESCI_GAINS = {0: 0.0, 1: 0.01, 2: 0.1, 3: 1.0}


def _dcg(gains):
    """Reference DCG, written out here only to check the library's numbers."""
    return sum(g / math.log2(r + 2) for r, g in enumerate(gains))


def _run(rows):
    q, i, r = zip(*rows)
    return pa.table({"query_id": list(q), "item_id": list(i), "rank": list(r)})


def _judgments(rows):
    q, i, g = zip(*rows)
    return pa.table({"query_id": list(q), "item_id": list(i), "grade": pa.array(g, pa.int8())})


# q1: ranked a (Complement), x (unjudged), b (Exact), c (Substitute); d (Irrelevant) judged, not retrieved
RUN = _run([("q1", "a", 1), ("q1", "x", 2), ("q1", "b", 3), ("q1", "c", 4), ("q2", "z", 1)])
JUDGED = _judgments([("q1", "a", 1), ("q1", "b", 3), ("q1", "c", 2), ("q1", "d", 0), ("q2", "y", 0), ("q3", "e", 3)])


@pytest.fixture(scope="module")
def table():
    return {row["query_id"]: row for row in per_query_metrics(RUN, JUDGED, ESCI).to_pylist()}


def test_ndcg_uses_the_scales_non_integer_gains(table):
    ideal = _dcg([1.0, 0.1, 0.01, 0.0])
    esci = _dcg([0.01, 0.0, 1.0, 0.1]) / ideal
    by_grade = _dcg([1, 0, 3, 2]) / _dcg([3, 2, 1, 0])  # what integer grades as gains would give
    assert table["q1"]["ndcg@10"] == pytest.approx(esci, abs=1e-9)
    assert abs(esci - by_grade) > 0.05  # the check can tell the two apart


def test_judged_only_ndcg_uses_the_condensed_list(table):
    condensed = _dcg([0.01, 1.0, 0.1]) / _dcg([1.0, 0.1, 0.01, 0.0])
    assert table["q1"]["ndcg@10_judged"] == pytest.approx(condensed, abs=1e-9)
    assert table["q1"]["ndcg@10_judged"] > table["q1"]["ndcg@10"]


def test_integer_gains_scale_esci_exactly_and_round_otherwise(caplog):
    assert integer_gains(ESCI) == ({0: 0, 1: 1, 2: 10, 3: 100}, 100)
    third = GradeScale(name="thirds", names=["a", "b", "c"], gains=[0.0, 1 / 3, 1.0])
    with caplog.at_level(logging.WARNING, logger="relforge.evaluate"):
        gains, factor = integer_gains(third)
    assert gains[1] / factor == pytest.approx(1 / 3, rel=1e-6) and "rounded" in caplog.text


def test_recall_counts_relevant_grades_against_all_judged_relevant():
    assert default_relevant_grade(ESCI) == 3
    assert default_relevant_grade(GradeScale.from_names(["no", "partial", "yes"], [0, 1, 2])) == 1
    rows = per_query_metrics(RUN, JUDGED, ESCI, MetricSettings(recall_k=2, relevant_grade=2)).to_pylist()
    q1 = next(r for r in rows if r["query_id"] == "q1")
    assert q1["recall@2"] == 0.0  # b and c (grade >= 2) are at ranks 3 and 4
    assert q1["recall@2_judged"] == 0.5  # condensed: a, b, c -> b is second


def test_rating0_and_judged_share_under_both_conventions():
    run = _run([("q", "i0", 1), ("q", "u1", 2), ("q", "e", 3), ("q", "u2", 4), ("q", "i1", 5)])
    judged = _judgments([("q", "i0", 0), ("q", "e", 3), ("q", "i1", 0), ("q", "far", 2)])
    row = per_query_metrics(run, judged, ESCI).to_pylist()[0]
    assert row["judged@10"] == pytest.approx(3 / 5)
    assert row["rating0@10"] == pytest.approx(4 / 5)  # i0, u1, u2, i1: unjudged count as grade 0
    assert row["rating0@10_judged"] == pytest.approx(2 / 3)  # i0, e, i1


def test_undefined_values_are_nan_and_missing_runs_score_zero(table):
    assert math.isnan(table["q2"]["ndcg@10"]) and math.isnan(table["q2"]["recall@100"])  # nothing relevant judged
    assert table["q2"]["rating0@10"] == 1.0 and math.isnan(table["q2"]["rating0@10_judged"])
    assert table["q3"]["ndcg@10"] == 0.0 and table["q3"]["recall@100"] == 0.0  # judged, not retrieved
    assert table["q3"]["retrieved"] == 0 and math.isnan(table["q3"]["judged@10"])
    assert set(table) == {"q1", "q2", "q3"}  # judged queries only


def test_scores_order_the_run_when_there_is_no_rank():
    run = pa.table({"query_id": ["q"] * 3, "item_id": ["a", "b", "c"], "score": [0.1, 0.9, 0.9]})
    assert read_run(run).ranking == {"q": ["b", "c", "a"]}  # ties keep the table's order


@pytest.mark.parametrize(
    ("run", "judged", "match"),
    [
        (_run([("q", "a", 1), ("q", "a", 2)]), JUDGED, r"run, row 2, field \"item_id\": 'a' is listed twice"),
        (RUN, _judgments([("q", "a", 4)]), r"judgments, row 1, field \"grade\": 4 is not a grade"),
        (pa.table({"query_id": ["q"], "item_id": ["a"]}), JUDGED, r"run, field \"score\": no such column"),
    ],
)
def test_bad_tables_name_row_and_field(run, judged, match):
    with pytest.raises(InputError, match=match):
        per_query_metrics(run, judged, ESCI)
