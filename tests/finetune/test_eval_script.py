"""benchmarks/eval_tiers.py runs end to end (tiny models, synthetic data) and writes its tables."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from tests.finetune.conftest import write_synthetic_bus

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "eval_tiers.py"


@pytest.mark.slow
def test_eval_script_on_tiny_models(tmp_path, bert_base, llama_base):
    from relforge.bus import DataBus

    spec = importlib.util.spec_from_file_location("eval_tiers", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    run = write_synthetic_bus(DataBus(tmp_path / "run"), pairs_per_query=16)
    out = tmp_path / "res" / "eval.md"
    payload = module.main([
        "--run", run.root, "--cache", str(tmp_path / "cache"), "--out", str(out),
        "--tier1", str(bert_base), "--tier2", str(llama_base), "--tier3", str(llama_base),
        "--reps", "50", "--test-pairs", "24", "--heldout-pairs", "20", "--calib-pairs", "24", "--llm-train", "60",
        "--ce-max-length", "24", "--ce-epochs", "2", "--ce-lr", "0.002", "--ce-eval-steps", "4",
        "--llm-max-length", "96", "--lora-pairs", "16", "--lora-test-pairs", "8",
    ])
    text = out.read_text()
    assert "## unseen queries" in text and "## held-out pairs" in text and "## Probe choices" in text
    rows = payload["rows"]
    methods = {(r["view"], r["tier"], r["head"], r["method"].split(" (")[0]) for r in rows}
    for view in ("unseen queries", "held-out pairs"):
        assert (view, "-", "-", "majority class") in {(a, b, c, d.split(" (")[0]) for a, b, c, d in methods}
        for tier in ("tier1", "tier2", "tier3"):
            heads = {h for v, t, h, _ in methods if v == view and t == tier}
            assert {"softmax", "ordinal", "-"} <= heads
    for r in rows:
        for key, (lo, hi) in r["ci"].items():
            assert lo <= r["metrics"][key] + 1e-9 and r["metrics"][key] <= hi + 1e-9
    # the probe reads the colour: far above the majority class on the unseen queries
    probe = [r for r in rows if r["tier"] == "tier2" and r["view"] == "unseen queries" and r["head"] == "softmax"]
    assert probe[0]["metrics"]["accuracy"] > 0.7
    assert any(r["head"] == "grade-tokens" for r in rows)  # the LoRA row
    assert json.loads(out.with_suffix(".json").read_text())["meta"]["reps"] == 50
    # a second run reuses the cached features and models
    again = module.main(["--run", run.root, "--cache", str(tmp_path / "cache"), "--out", str(out),
                         "--tier1", str(bert_base), "--tiers", "tier1", "--reps", "50", "--test-pairs", "24",
                         "--heldout-pairs", "20", "--calib-pairs", "24", "--ce-max-length", "24", "--ce-epochs", "2",
                         "--ce-lr", "0.002", "--ce-eval-steps", "4", "--no-ce-naive"])
    assert again["meta"]["wall_min"] < payload["meta"]["wall_min"]
