"""Step ``train-two-tower`` with the tiny bi-encoder: stages in order, each from the previous one's
model; test queries never trained on; the no-curriculum, stage-3-only and untrained variants."""

import numpy as np
import pyarrow as pa
import pytest
from transformers import TrainerCallback

from relforge.curriculum import run_curriculum
from relforge.errors import InputError
from relforge.twotower import read_descriptor, run_train_two_tower
from relforge.twotower._model import load_sentence_transformer, local_copy
from tests.twotower.conftest import small_config
from tests.twotower.synthetic import QUERIES, test_query_ids


def _checksum(model) -> float:
    return float(sum(p.detach().double().abs().sum() for p in model.parameters()))


class Recorder(TrainerCallback):
    """What each stage's trainer starts and ends with, and the texts it trains on."""

    def __init__(self):
        self.stages = []

    def on_train_begin(self, args, state, control, model=None, train_dataloader=None, **kwargs):
        dataset = train_dataloader.dataset
        datasets = getattr(dataset, "datasets", [dataset])
        first_columns = [d.column_names[0] for d in datasets]
        queries = {t for d, c in zip(datasets, first_columns) for t in d[c]}
        self.stages.append({"dir": args.output_dir, "begin": _checksum(model), "queries": queries})

    def on_train_end(self, args, state, control, model=None, **kwargs):
        self.stages[-1]["end"] = _checksum(model)


def test_stages_run_in_order_each_from_the_previous_model(run_bus, config):
    run_curriculum(run_bus, config)
    rec = Recorder()
    result = run_train_two_tower(run_bus, config, callbacks=[rec])
    assert [s["stage"] for s in result["stages"]] == ["stage-1", "stage-2", "stage-3"]
    assert [s["loss"] for s in result["stages"]] == ["mnrl", "mnrl", "cosent"]
    assert all(s["steps"] > 0 for s in result["stages"])
    assert len(rec.stages) == 3
    for before, after in zip(rec.stages, rec.stages[1:]):
        assert after["begin"] == pytest.approx(before["end"], rel=1e-9)  # stage k+1 starts where k ended
        assert before["end"] != pytest.approx(before["begin"], rel=1e-9)  # and k changed the weights
    descriptor = read_descriptor(run_bus)
    assert descriptor["version"] == result["version"] and len(descriptor["stages"]) == 3
    report = run_bus.read_json("reports/two-tower.json")
    assert all(s["curve"] for s in report["stages"])  # per-stage training curves for the report
    assert run_bus.exists("reports/two-tower-figures/curves.png")


def test_test_split_queries_never_reach_any_stage(run_bus, config):
    run_curriculum(run_bus, config)
    rec = Recorder()
    run_train_two_tower(run_bus, config, callbacks=[rec])
    test_texts = {t for q, t, _, s in QUERIES if s == "test"}
    trained = set().union(*(s["queries"] for s in rec.stages))
    assert trained and not trained & test_texts
    assert {t for _, t, _, s in QUERIES if s == "train"} & trained


def test_a_curriculum_row_of_a_test_query_is_refused(run_bus, config):
    run_curriculum(run_bus, config)
    table = run_bus.read_table("curriculum")
    leaked = table.slice(0, 1).set_column(0, "query_id", pa.array([min(test_query_ids())]))
    run_bus.write_table("curriculum", pa.concat_tables([table, leaked]),
                        metadata=run_bus.manifest("curriculum").metadata)
    with pytest.raises(InputError, match="test-split query"):
        run_train_two_tower(run_bus, config)


def test_without_curriculum_every_stage_trains_at_once(run_bus, bi_encoder, tmp_path):
    config = small_config(bi_encoder, tmp_path / "cache", "twotower.curriculum=false")
    run_curriculum(run_bus, config)
    rec = Recorder()
    result = run_train_two_tower(run_bus, config, callbacks=[rec])
    assert len(rec.stages) == 1 and [s["stage"] for s in result["stages"]] == ["all-levels"]
    assert result["stages"][0]["loss"] == "mnrl+mnrl+cosent"


def test_stage_three_only(run_bus, bi_encoder, tmp_path):
    config = small_config(bi_encoder, tmp_path / "cache", "twotower.only_stages=[3]")
    run_curriculum(run_bus, config)
    result = run_train_two_tower(run_bus, config)
    assert [s["stage"] for s in result["stages"]] == ["stage-3"]


def test_no_stage_publishes_the_base_model_untrained(run_bus, bi_encoder, tmp_path):
    config = small_config(bi_encoder, tmp_path / "cache", "twotower.stages=[]")
    run_train_two_tower(run_bus, config)
    folder, descriptor = local_copy(run_bus, tmp_path / "cache")
    assert descriptor["stages"] == []
    assert _checksum(load_sentence_transformer(folder)) == pytest.approx(_checksum(load_sentence_transformer(bi_encoder)))


def test_a_rerun_with_the_same_inputs_keeps_the_model(run_bus, config):
    run_curriculum(run_bus, config)
    first = run_train_two_tower(run_bus, config)
    again = run_train_two_tower(run_bus, config)
    assert again.get("reused") and again["version"] == first["version"]
    assert not np.isnan(first["seconds"])
