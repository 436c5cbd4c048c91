"""Step ``curriculum`` on a synthetic run: test queries never enter, the human-labels source,
the report's counts and grade mixes, and a rerun that finds the table committed."""

import numpy as np
import pytest

from relforge.bus import DataBus
from relforge.config import load_config
from relforge.curriculum import run_curriculum
from relforge.errors import InputError
from tests.twotower.synthetic import QUERIES, test_query_ids, write_run


@pytest.fixture
def bus(tmp_path):
    b = DataBus(tmp_path / "run")
    write_run(b)
    return b


def test_test_split_queries_never_enter_the_curriculum(bus):
    run_curriculum(bus, load_config())
    table = bus.read_table("curriculum")
    assert table.num_rows > 0
    assert not set(table.column("query_id").to_pylist()) & test_query_ids()
    labelled_test = [q for q in bus.read_table("labels").column("query_id").to_pylist() if q in test_query_ids()]
    assert labelled_test, "the synthetic labels cover test queries, so leaving them out is a real check"


def test_levels_and_stages_follow_the_rules(bus):
    run_curriculum(bus, load_config())
    t = bus.read_table("curriculum").to_pydict()
    for bucket, grade, conf, level, stage in zip(t["bucket"], t["grade"], t["confidence"], t["level"], t["stage"]):
        if conf <= 0.4:
            assert level == 5
        elif bucket == "consensus" and grade == 3:
            assert (level, stage) == (1, 1)
        elif bucket == "single" and grade == 0:
            assert (level, stage) == (4, 2)


def test_the_report_counts_levels_and_each_levels_human_grade_mix(bus):
    result = run_curriculum(bus, load_config())
    report = bus.read_json("reports/curriculum.json")
    t = bus.read_table("curriculum")
    level = t.column("level").to_numpy()
    assert [lv["rows"] for lv in report["levels"]] == [int((level == v).sum()) for v in range(1, 6)]
    assert result["levels"][1] == report["levels"][0]["rows"]
    one = report["levels"][0]  # easy positives: judged pairs of the synthetic run are graded like the labels
    assert one["human_judged"] > 0 and one["human_grade_mix"][3] == pytest.approx(1.0)
    assert report["stages"][2]["rows"] == t.num_rows
    assert "| 1 | easy positive |" in bus.read_text("reports/curriculum.md")


def test_the_human_labels_source_takes_the_train_splits_judgments(bus):
    run_curriculum(bus, load_config(overrides=["curriculum.source=judgments", "curriculum.splits=[train]"]))
    t = bus.read_table("curriculum")
    train = {q for q, _, _, s in QUERIES if s == "train"}
    assert set(t.column("query_id").to_pylist()) == train
    assert set(t.column("source").to_pylist()) == {"human"}
    probs = np.array(t.column("probs").to_pylist())
    assert np.allclose(probs.max(axis=1), 1.0)  # one-hot human grades
    assert (probs.argmax(axis=1) == t.column("grade").to_numpy()).all()


def test_a_rerun_with_the_same_inputs_keeps_the_committed_table(bus):
    run_curriculum(bus, load_config())
    first = bus.manifest("curriculum").created_at, bus.manifest("curriculum").files
    run_curriculum(bus, load_config())
    assert (bus.manifest("curriculum").created_at, bus.manifest("curriculum").files) == first
    run_curriculum(bus, load_config(overrides=["curriculum.default_level=null"]))
    assert bus.manifest("curriculum").files != first[1]


def test_no_labelled_pair_for_the_splits_is_an_error_naming_the_table(tmp_path):
    bus = DataBus(tmp_path / "run")
    write_run(bus)
    with pytest.raises(InputError, match="labels"):
        run_curriculum(bus, load_config(overrides=["curriculum.splits=[nonexistent]"]))
