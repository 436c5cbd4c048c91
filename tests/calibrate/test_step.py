"""Step calibrate on a synthetic run with tiny tiers: calibrators beside the models with their
version, cached scores, the report and KFP documents, and the gate stopping a random tier."""

from __future__ import annotations

import json
import shutil

import pytest

from relforge.bus import DataBus
from relforge.calibrate import STEP, TierModel, load_tier_calibrator, read_cascade, run_calibrate
from relforge.errors import CalibrationGateError, ModelError
from tests.annotate._run import build_tier_models, run_config, write_tables


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    return build_tier_models(tmp_path_factory.mktemp("calibrate-models"))


@pytest.fixture
def run(tmp_path):
    return write_tables(DataBus(tmp_path / "run"))


@pytest.fixture(autouse=True)
def one_torch_thread():
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_calibrate_writes_versioned_calibrators_the_cascade_and_its_report(run, models, tmp_path):
    config = run_config(models, tmp_path / "cache", "calibrate.gate=false")
    summary = run_calibrate(run, config)
    assert summary["pairs"] == 60 and summary["queries"] == 6  # every calib pair of the 6 calib queries
    cascade = read_cascade(run)
    assert [t["name"] for t in cascade["tiers"]] == ["tier0", "tier1", "tier2"]
    assert len(cascade["thresholds"]) == 2 and abs(sum(cascade["crossfit"]["shares"]) - 1) < 1e-9
    for t in cascade["tiers"]:
        doc = json.loads(run.read_text(f"calibrators/{t['name']}/model.json"))
        assert doc["model_fingerprint"] == t["model_fingerprint"] and doc["method"] == "per-class-isotonic"
        assert doc["fitted_on"]["pairs"] == 60 and t["mean_cost"] > 0
        calibrator, _ = load_tier_calibrator(run, t["name"], t["model_fingerprint"])
        assert calibrator.n_pairs == 60
    # the report: Markdown, HTML with its plots inlined, KFP Metrics and ClassificationMetrics documents
    md = run.read_text("reports/calibration.md")
    assert "GATE OFF" in md and "What the gate checked" in md and "calibration/frontier.png" in md
    assert md.count("| tier0 | ") >= 4  # one row per calibration method
    html = run.read_text("reports/calibration.html")
    assert html.count("data:image/png;base64,") == 4
    metrics = run.read_json("reports/calibration-metrics.json")
    assert metrics["gate"]["enabled"] == 0 and "qwk" in metrics["gate"] and 0 <= metrics["cascade"]["ece"] <= 1
    confusion = run.read_json("reports/calibration-confusion.json")
    assert sum(map(sum, confusion["matrix"])) == 60 and confusion["labels"][0] == "Irrelevant"
    for output in STEP.outputs:  # every declared KFP output is on the bus
        assert run.exists(output.path), output.path
    for png in ("reliability", "frontier", "confusion", "shares"):
        assert run.exists(f"reports/calibration/{png}.png")


def test_a_rerun_does_not_rescore(run, models, tmp_path, monkeypatch):
    config = run_config(models, tmp_path / "cache", "calibrate.gate=false")
    first = run_calibrate(run, config)
    built = []
    original = TierModel.scorer
    monkeypatch.setattr(TierModel, "scorer", lambda self, *a: built.append(self.name) or original(self, *a))
    second = run_calibrate(run, config)
    assert built == []  # every score came from the bus's cache: no model was even loaded
    assert second["cascade"]["thresholds"] == first["cascade"]["thresholds"]
    assert all(t["scored_now"] == 0 for t in second["cascade"]["tiers"])
    # another model version for tier 1: only that tier scores again
    moved = tmp_path / "tier1-v2"
    shutil.copytree(models["tier1"], moved)
    (moved / "note.txt").write_text("v2")
    run_calibrate(run, run_config(models, tmp_path / "cache", "calibrate.gate=false",
                                  f"tiers.specs.tier1.model={moved}"))
    assert built == ["tier1"]


def test_the_gate_stops_a_run_whose_tier_is_a_randomly_initialised_model(run, models, tmp_path):
    config = run_config(models, tmp_path / "cache", tiers=("tier1",))  # the gate is on by default
    with pytest.raises(CalibrationGateError, match="calibration gate failed") as err:
        run_calibrate(run, config)
    assert "reports/calibration.md" in str(err.value)
    md = run.read_text("reports/calibration.md")
    assert "GATE FAILED" in md and "**FAIL**" in md
    assert run.read_json("reports/calibration-metrics.json")["gate"]["passed"] == 0
    cascade = read_cascade(run)
    assert cascade["gate"]["enabled"] and not cascade["gate"]["passed"] and cascade["gate"]["reasons"]


def test_a_calibrator_is_refused_for_another_model_version(run, models, tmp_path):
    run_calibrate(run, run_config(models, tmp_path / "cache", "calibrate.gate=false", tiers=("tier1",)))
    fingerprint = read_cascade(run)["tiers"][0]["model_fingerprint"]
    load_tier_calibrator(run, "tier1", fingerprint)
    with pytest.raises(ModelError, match="never applies to another model version"):
        load_tier_calibrator(run, "tier1", "0123456789abcdef")


def test_calib_pairs_can_be_capped_per_query(run, models, tmp_path):
    summary = run_calibrate(run, run_config(models, tmp_path / "cache", "calibrate.gate=false",
                                            "calibrate.max_pairs=30", tiers=("tier0", "tier1")))
    assert summary["pairs"] == 30 and summary["queries"] == 6
