"""Step distill: the student trained on the teacher's labels (soft or hard) is a tier folder that loads
through load_scorer, that tiers.names can put first, and that calibrate treats like any other; it
is calibrated on human judgments where the run has any."""

from __future__ import annotations

import json

import numpy as np
import pytest

from relforge.bus import DataBus
from relforge.calibrate import load_tier_calibrator, resolve_tier, run_calibrate
from relforge.coldstart import (
    coldstart_bus,
    run_coldstart_candidates,
    run_distill,
    run_synthesize_queries,
    run_teacher_label,
)
from relforge.config import load_config
from relforge.errors import ConfigError
from relforge.grades import ESCI
from relforge.tiers import CrossEncoderScorer, Pair, TierDescriptor, load_scorer
from tests.coldstart.conftest import write_shop


@pytest.fixture
def labelled(synthesized):
    bus, config = synthesized
    run_coldstart_candidates(bus, config)
    run_teacher_label(bus, config)
    return bus, config


def _with(config, **coldstart):
    return config.model_copy(update={"coldstart": config.coldstart.model_copy(update=coldstart)})


@pytest.mark.parametrize("targets", ["soft", "hard"])
def test_the_student_is_a_tier_folder_that_loads_through_load_scorer(labelled, targets, tmp_path):
    bus, config = labelled
    summary = run_distill(bus, _with(config, targets=targets))
    local = bus.get_dir("models/distilled", tmp_path / "distilled")
    descriptor = TierDescriptor.load(local)
    assert descriptor.backend == "cross-encoder" and descriptor.head == "softmax"
    report = json.loads((local / "finetune.json").read_text())
    assert report["targets"] == targets and report["distilled_from"]["tier"] == "tier3"
    assert report["train_pairs"] == summary["train_pairs"] > 0 and report["fingerprint"]
    spec = load_config(overrides=[f"tiers.specs.distilled.model={local}",
                                  "tiers.specs.distilled.backend=cross-encoder"]).tiers.spec("distilled")
    with load_scorer(spec, ESCI) as scorer:
        assert isinstance(scorer, CrossEncoderScorer)
        scores = scorer.score([Pair("shoes red", "red shoes cotton | acme"), Pair("mug", "blue mug steel")])
    assert not scores.failed.any() and np.allclose(scores.probs.sum(axis=1), 1, atol=1e-5)
    assert summary["human"]["calibrated"] and summary["human"]["pairs"] == 32  # the calib split's judgments
    again = run_distill(bus, _with(config, targets=targets))
    assert again["reused"] and again["human"].get("reused")


def test_the_distilled_tier_goes_first_in_the_cascade_and_calibrate_treats_it_like_the_others(labelled):
    bus, config = labelled
    run_distill(bus, config)
    cascade = load_config(data=config.model_dump(mode="json"), overrides=[
        "tiers.names=[distilled, tier3]", "tiers.specs.distilled.backend=cross-encoder", "calibrate.gate=false",
        "calibrate.bootstrap_reps=100", "calibrate.grid=8"])
    tier = resolve_tier(bus, cascade, "distilled")
    assert tier.position == 0 and tier.source == "bus" and tier.ref == bus.uri("models/distilled")
    _, doc = load_tier_calibrator(bus, "distilled", tier.fingerprint)  # distill's, for this very version
    assert doc["fitted_on"]["by"] == "distill"
    run_calibrate(bus, cascade)
    written = bus.read_json("calibrators/cascade.json")
    assert [t["name"] for t in written["tiers"]] == ["distilled", "tier3"]
    _, refit = load_tier_calibrator(bus, "distilled", tier.fingerprint)
    assert refit["fitted_on"].get("by") != "distill"  # calibrate fitted its own, as for any tier


def test_without_human_judgments_the_tier_stays_uncalibrated_and_says_so(tmp_path, config_for, scripted):
    bus = write_shop(DataBus(tmp_path / "run"), queries=False, judgments=False)
    config = config_for(tmp_path, "coldstart.targets=hard")
    scripted()
    for step in (run_synthesize_queries, run_coldstart_candidates, run_teacher_label):
        step(bus, config)
    summary = run_distill(bus, config)
    assert summary["human"] == {"calibrated": False, "reason": "the run has no human judgments"}
    assert "not calibrated" in summary["decided"]
    assert not bus.exists("calibrators/distilled/manifest.json")
    assert coldstart_bus(bus).is_committed("labels")


def test_a_probe_student_takes_hard_targets_only(labelled):
    _, config = labelled
    with pytest.raises(ConfigError, match="coldstart.targets=hard"):
        run_distill(labelled[0], _with(config, student="tier2"))


def test_a_causal_lm_student_is_a_probe_tier_on_its_frozen_model(labelled, tmp_path):
    from relforge.tiers import ProbeScorer

    bus, config = labelled
    summary = run_distill(bus, _with(config, student="tier2", targets="hard", name="probe"))
    assert summary["backend"] == "causal-lm"
    local = bus.get_dir("models/probe", tmp_path / "probe")
    assert TierDescriptor.load(local).backend == "probe"
    spec = load_config(overrides=[f"tiers.specs.probe.model={local}", "tiers.specs.probe.backend=causal-lm"]
                       ).tiers.spec("probe")
    with load_scorer(spec, ESCI) as scorer:
        assert isinstance(scorer, ProbeScorer)
        assert not scorer.score([Pair("shoes red", "red shoes cotton | acme")]).failed.any()


def test_a_teacher_with_one_grade_is_said_and_a_probe_cannot_learn_from_it(synthesized, tmp_path):
    from relforge.errors import InputError
    from tests.tiny_models import tiny_bert_cross_encoder

    bus, config = synthesized
    constant = tiny_bert_cross_encoder(tmp_path / "constant", head="softmax", seed=5)  # grades every pair Irrelevant
    config = load_config(data=config.model_dump(mode="json"), overrides=[f"tiers.specs.tier3.model={constant}"])
    run_coldstart_candidates(bus, config)
    run_teacher_label(bus, config)
    assert set(coldstart_bus(bus).read_table("labels").column("grade").to_pylist()) == {0}
    summary = run_distill(bus, _with(config, targets="hard"))
    assert summary["warning"].startswith("the teacher graded all") and "WARNING" in summary["decided"]
    with pytest.raises(InputError, match="probe head cannot be fitted on one grade"):
        run_distill(bus, _with(config, student="tier2", targets="hard", name="probe"))


def test_with_one_kept_query_the_student_stops_early_on_held_out_pairs_of_it(shop, config_for, scripted, tmp_path):
    config = config_for(tmp_path, "coldstart.items=1")
    scripted()
    for step in (run_synthesize_queries, run_coldstart_candidates, run_teacher_label):
        step(shop, config)
    assert coldstart_bus(shop).read_table("queries").column("split").to_pylist() == ["train"]
    summary = run_distill(shop, config)
    assert summary["calib_pairs"] >= 1 and summary["train_pairs"] + summary["calib_pairs"] == 6
