"""Step ``ablate``: each variant's steps in its own sub-run; evaluate scores them beside the run's
own retriever, in one table; a failing variant is recorded and the others go on."""

from relforge.bus import DataBus
from relforge.curriculum import run_curriculum
from relforge.evaluate._step import run_evaluate
from relforge.subruns import run_ablate
from relforge.twotower import run_export_index, run_train_two_tower
from tests.twotower.conftest import small_config


def test_ablations_run_in_sub_runs_and_land_in_one_table(run_bus, bi_encoder, tmp_path):
    config = small_config(bi_encoder, tmp_path / "cache", "ablate.enabled=true",
                          "ablate.only=[minilm, human-labels, stage3-only, no-calibration]", "evaluate.ppi=false")
    run_curriculum(run_bus, config)
    run_train_two_tower(run_bus, config)
    run_export_index(run_bus, config)
    result = run_ablate(run_bus, config)
    assert result["variants"] == {"minilm": "done", "human-labels": "done", "stage3-only": "done",
                                  "no-calibration": "failed"}  # no calibrated cascade in this run: recorded
    doc = run_bus.read_json("ablation.json")
    failed = next(v for v in doc["variants"] if v["name"] == "no-calibration")
    assert failed["error"]
    human = DataBus(run_bus.uri("ablate/human-labels"))
    assert human.read_json("subrun.json")["overrides"] == ["curriculum.source=judgments", "curriculum.splits=[train]"]
    assert set(human.read_table("curriculum").column("source").to_pylist()) == {"human"}
    assert human.manifest("catalog").digest() == run_bus.manifest("catalog").digest()  # copied byte for byte
    assert DataBus(run_bus.uri("ablate/minilm")).read_json("models/two-tower/relforge_two_tower.json")["stages"] == []
    run_evaluate(run_bus, config)
    systems = {s["name"]: s for s in run_bus.read_json("reports/evaluate.json")["systems"]}
    assert set(systems) == {"two-tower", "bm25", "minilm", "human-labels", "stage3-only"}
    assert systems["stage3-only"]["circular"] and systems["two-tower"]["circular"]
    assert not systems["human-labels"]["circular"] and not systems["minilm"]["circular"]
    assert all("paired" in s for n, s in systems.items() if n != "two-tower")
    table = run_bus.read_text("reports/ablation.md")
    for label in ("MiniLM, untrained", "two-tower, human labels", "cascade labels, stage 3 only", "BM25"):
        assert f"| {label} |" in table
    assert "failed" in run_bus.read_text("reports/ablation-runs.md")


def test_ablate_does_nothing_unless_enabled(run_bus, config):
    assert run_ablate(run_bus, config)["skipped"]
    assert not run_bus.exists("ablation.json")
