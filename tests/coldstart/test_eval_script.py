"""benchmarks/eval_coldstart.py on the tiny shop run with tiny models: every row and comparison is
there, the CIs hold their point estimates, human judgments never reach the generator or the
teacher, and a teacher fine-tuned on the run's human labels is refused."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from relforge.coldstart import coldstart_bus

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "eval_coldstart.py"


def _module():
    spec = importlib.util.spec_from_file_location("eval_coldstart", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.slow
def test_eval_script_on_the_tiny_shop(shop, cs_models, scripted, tmp_path):
    generator = scripted()  # queries that find their items (the tiny Llama's would not survive the filters)
    out = tmp_path / "res" / "eval.md"
    sets = [
        f"models.cache_dir={tmp_path / 'cache'}", "compute.threads=1", "tiers.names=[tier1, tier3]",
        f"tiers.specs.tier1.model={cs_models['bert']}", f"tiers.specs.tier2.model={cs_models['llama']}",
        f"tiers.specs.tier3.model={cs_models['ce']}", "tiers.specs.tier3.backend=cross-encoder",
        "coldstart.calib_share=0.3", "finetune.ce_epochs=1", "finetune.ce_max_length=32", "finetune.ce_eval_steps=4",
        "calibrate.folds=2", "calibrate.max_pairs=24",
    ]
    argv = ["--run", shop.root, "--out", str(out), "--items", "16", "--teacher", "tier3", "--test-pairs", "16",
            "--calib-pairs", "16", "--reps", "50", *[a for s in sets for a in ("--set", s)]]
    doc = _module().main(argv)
    text = out.read_text()
    assert "## The synthetic queries" in text and "McNemar" in text
    roles = {(t["role"], t["view"]) for t in doc["table"]}
    for role in ("teacher", "student (soft targets)", "student (hard targets)", "student (human labels)"):
        assert {(role, "raw"), (role, "calibrated")} <= roles
    assert ("majority class", "-") in roles
    for t in doc["table"]:
        for key, (low, high) in t["ci"].items():
            assert low <= t["metrics"][key] + 1e-9 <= high + 2e-9
    assert len(doc["comparisons"]) == 6 and all(c["mcnemar"]["p_value"] <= 1 for c in doc["comparisons"])
    teacher = next(t for t in doc["table"] if t["role"] == "teacher")
    assert teacher["pairs_per_s"] > 0 and teacher["s_per_1000"] > 0
    assert json.loads(out.with_suffix(".json").read_text())["test"]["pairs"] == doc["test"]["pairs"]
    # no judged item reached the generator: the examples were the run's queries alone
    settings = coldstart_bus(shop).manifest("generated_queries").metadata["settings"]
    assert settings["few_shot_judged"] is False
    assert [m["role"] for m in generator.chats[0]] == ["system", "user"]
    # the teacher was the configured model, zero-shot
    assert doc["students"]["soft"]["teacher"]["source"] == "config"


def test_a_teacher_fine_tuned_on_the_runs_labels_is_refused(shop, tmp_path):
    folder = tmp_path / "tier3"
    folder.mkdir()
    (folder / "x.txt").write_text("x")
    shop.put_dir(folder, "models/tier3")
    with pytest.raises(SystemExit, match="would leak them"):
        _module().main(["--run", shop.root, "--set", "tiers.names=[tier1, tier3]", "--out", str(tmp_path / "o.md")])
