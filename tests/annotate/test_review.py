"""The review queue: how pairs are scored and stratified, its exports for annotators, and the round
trip export -> judge -> `relforge ingest reviews` -> re-calibrate."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys

import numpy as np
import pytest

from relforge.annotate import allocate, review_priority, run_annotate
from relforge.bus import DataBus
from relforge.calibrate import run_calibrate
from relforge.errors import InputError
from relforge.ingest import ingest_reviews
from tests.annotate._run import COLOURS


def test_priority_is_the_variance_of_the_calibration_where_calib_pairs_are_thin():
    hist = [[0, 0, 0, 0, 0, 50, 0, 0, 0, 0], [0] * 10]
    p = review_priority(np.array([0.55, 0.55, 0.95, 0.55]), np.array([0, 1, 0, 0]), hist,
                        accepted=np.array([True, True, True, False]))
    assert p[1] == pytest.approx(0.55 * 0.45)            # no calib pair near it: the whole variance
    assert p[0] == pytest.approx(0.55 * 0.45 / 51)       # 50 calib pairs in its bin
    assert p[2] == pytest.approx(0.95 * 0.05)            # confident, but in an empty bin
    assert p[3] == pytest.approx(1 + p[0])               # not accepted (guaranteed mode): first
    assert allocate({"a": 2, "b": 30, "c": 30, "d": 0}, 20) == {"a": 2, "b": 9, "c": 9, "d": 0}
    assert sum(allocate({"a": 5, "b": 5}, 100).values()) == 10


@pytest.fixture
def annotated(run_copy, config_for):
    bus = DataBus(run_copy / "run")
    run_annotate(bus, config_for(run_copy, "review.budget=16"))
    return bus


def test_the_queue_is_stratified_and_leaves_out_test_queries_and_judged_pairs(annotated):
    queue = annotated.read_table("review_queue").to_pylist()
    assert len(queue) == 16
    splits = dict(zip(*annotated.read_table("queries", columns=["query_id", "split"]).to_pydict().values()))
    judged = annotated.read_table("judgments", columns=["query_id", "item_id"]).to_pydict()
    judged = set(zip(judged["query_id"], judged["item_id"]))
    assert all(splits[r["query_id"]] != "test" for r in queue)
    assert not any((r["query_id"], r["item_id"]) in judged for r in queue)
    priorities = [r["priority"] for r in queue]
    assert priorities == sorted(priorities, reverse=True)
    strata = {(r["bucket"], r["grade"]) for r in queue}
    assert len(strata) >= 4 and len({r["bucket"] for r in queue}) >= 3  # spread, not the top 16 of one stratum


def test_exports_carry_the_cascade_grade_as_a_prediction_unless_blind(annotated, run_copy, config_for):
    queue = annotated.read_table("review_queue").to_pylist()
    tasks = json.loads(annotated.read_text("review/label-studio.json"))
    assert len(tasks) == len(queue)
    prediction = tasks[0]["predictions"][0]
    assert prediction["model_version"] == queue[0]["tier_name"]
    assert prediction["score"] == pytest.approx(queue[0]["confidence"], abs=1e-5)
    assert prediction["result"][0]["value"]["choices"] == [["Irrelevant", "Complement", "Substitute", "Exact"][queue[0]["grade"]]]
    assert '<Choices name="grade" toName="item"' in annotated.read_text("review/label-studio-config.xml")
    record = json.loads(annotated.read_text("review/argilla.jsonl").splitlines()[0])
    assert record["suggestions"][0]["agent"].startswith("relforge ") and 0 < record["suggestions"][0]["score"] <= 1
    qrels = annotated.read_text("review/qrels.txt").splitlines()
    assert qrels[0] == f"{queue[0]['query_id']} 0 {queue[0]['item_id']} {queue[0]['grade']}"
    rows = list(csv.DictReader(io.StringIO(annotated.read_text("review/review.csv"))))
    assert rows[0]["grade"] == "" and rows[0]["cascade_grade"]  # the human's column is empty
    # blind: nothing of the cascade's answer reaches the annotators
    run_annotate(annotated, config_for(run_copy, "review.budget=16", "review.blind=true"))
    tasks = json.loads(annotated.read_text("review/label-studio.json"))
    assert all("predictions" not in t for t in tasks)
    assert all("suggestions" not in json.loads(line) for line in annotated.read_text("review/argilla.jsonl").splitlines())
    assert "cascade_grade" not in annotated.read_text("review/review.csv").splitlines()[0]
    assert annotated.read_text("review/qrels.txt") == ""


def _true_grade(bus: DataBus, item_id: str) -> str:
    title = dict(zip(*bus.read_table("catalog", columns=["item_id", "title"]).to_pydict().values()))[item_id]
    return ["Irrelevant", "Complement", "Substitute", "Exact"][COLOURS.index(title.split()[0])]


def test_round_trip_export_judge_ingest_recalibrate(annotated, run_copy, config_for, tmp_path):
    before = run_calibrate(annotated, config_for(run_copy))
    tasks = json.loads(annotated.read_text("review/label-studio.json"))
    # an annotator answers every task but one in Label Studio; one answer is cancelled
    for n, task in enumerate(tasks[:-1]):
        task["annotations"] = [{
            "id": n, "completed_by": {"id": 7, "email": "judge@example.com"}, "was_cancelled": False,
            "result": [{"from_name": "grade", "to_name": "item", "type": "choices",
                        "value": {"choices": [_true_grade(annotated, task["data"]["item_id"])]}}],
        }]
    tasks[0]["annotations"].append({"id": 99, "was_cancelled": True, "result": [
        {"type": "choices", "value": {"choices": ["Irrelevant"]}}]})
    tasks[-1]["annotations"] = []
    export = tmp_path / "project-1-export.json"
    export.write_text(json.dumps(tasks))
    result = ingest_reviews(annotated, export)
    assert result["read"] == result["new"] == len(tasks) - 1
    reviews = annotated.read_table("reviews").to_pylist()
    assert {r["source"] for r in reviews} == {"review"} and reviews[0]["annotator"] == "judge@example.com"
    first = next(r for r in reviews if r["item_id"] == tasks[0]["data"]["item_id"])
    assert ["Irrelevant", "Complement", "Substitute", "Exact"][first["grade"]] == _true_grade(annotated, first["item_id"])

    # a review of a test-split query, sent as CSV: kept, but never used for calibration
    test_query = next(q for q, s in zip(*annotated.read_table("queries", columns=["query_id", "split"]).to_pydict()
                                         .values()) if s == "test")
    item = annotated.read_table("catalog", columns=["item_id"]).column("item_id")[0].as_py()
    sheet = tmp_path / "more.csv"
    sheet.write_text(f"query_id,item_id,grade\n{test_query},{item},Exact\n")
    assert ingest_reviews(annotated, sheet)["splits"] == {"test": 1}

    after = run_calibrate(annotated, config_for(run_copy))
    assert after["pairs"] == before["pairs"] + len(tasks) - 1
    origins = after["origins"]
    assert sum(v for k, v in origins.items() if k.startswith("review/")) == len(tasks) - 1
    assert not any(k.endswith("/test") for k in origins)
    assert "review/" in annotated.read_text("reports/calibration.md")
    # the re-calibrated tiers scored only the reviewed pairs; the calib pairs came from the cache
    assert all(t["scored_now"] <= len(tasks) - 1 for t in after["cascade"]["tiers"])
    # the next annotate queues none of the reviewed pairs
    run_annotate(annotated, config_for(run_copy, "review.budget=16"))
    queued = {(r["query_id"], r["item_id"]) for r in annotated.read_table("review_queue").to_pylist()}
    assert not queued & {(r["query_id"], r["item_id"]) for r in reviews}


def test_bad_reviews_name_the_file_row_and_field(annotated, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("query_id,item_id,grade\nq00,i00-00,Exact\nq00,i00-01,Perfect\n")
    with pytest.raises(InputError, match=r'bad.csv, row 2, field "grade"'):
        ingest_reviews(annotated, bad)
    bad.write_text("query_id,item_id,grade\nq99,i00-00,3\n")
    with pytest.raises(InputError, match=r'row 1, field "query_id": unknown query'):
        ingest_reviews(annotated, bad)
    assert not annotated.is_committed("reviews")  # nothing written
    blank = tmp_path / "half.jsonl"
    blank.write_text('{"query_id": "q00", "item_id": "i00-00", "grade": 2}\n{"query_id": "q00", "item_id": "i00-01", "grade": ""}\n')
    assert ingest_reviews(annotated, blank)["read"] == 1  # a blank grade is a pair not judged yet


def test_the_ingest_reviews_command(annotated, tmp_path):
    sheet = tmp_path / "answers.csv"
    sheet.write_text("query_id,item_id,grade\nq00,i01-00,Substitute\n")
    proc = subprocess.run([sys.executable, "-m", "relforge", "ingest", "reviews", "--file", str(sheet), "--run",
                           annotated.root], capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "1 read (1 new" in proc.stdout
    assert annotated.read_table("reviews").num_rows == 1
