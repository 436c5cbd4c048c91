"""annotate with its second tier served by a real vLLM server (the `openai` backend), started by the
session's fixture (tests/vllm_server.py): tier 2 scores only what tier 1 passes up, over HTTP."""

from __future__ import annotations

import numpy as np
import pytest

from relforge.annotate import run_annotate
from relforge.bus import DataBus
from relforge.calibrate import read_cascade, run_calibrate
from tests.annotate._run import FAST, write_tables

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _vocab(folder) -> int:
    import json

    return json.loads((folder / "config.json").read_text())["vocab_size"]


def test_annotate_with_tier_2_on_a_real_vllm_server(vllm_tiny, llama_dir, tiny_tiers, tmp_path):
    from relforge.config import load_config

    bus = write_tables(DataBus(tmp_path / "run"))
    config = load_config(overrides=[
        "tiers.names=[tier1, tier2]", f"models.cache_dir={tmp_path / 'cache'}", *FAST, "calibrate.gate=false",
        f"tiers.specs.tier1.model={tiny_tiers['tier1']}", "tiers.specs.tier1.max_length=32",
        "tiers.specs.tier2.backend=openai", f"tiers.specs.tier2.url={vllm_tiny.url}/v1",
        f"tiers.specs.tier2.model={llama_dir}", f"tiers.specs.tier2.top_n={_vocab(llama_dir)}",
        "tiers.specs.tier2.max_concurrency=4", "tiers.specs.tier2.max_length=160",
        "annotate.shard_rows=64",
    ])
    run_calibrate(bus, config)
    cascade = read_cascade(bus)
    assert cascade["tiers"][1]["backend"] == "openai" and cascade["tiers"][1]["mean_cost"] > 0
    # a threshold for tier 1 near the median of its calibrated confidence: about half the pairs go up
    hist = np.asarray(cascade["tiers"][0]["confidence_histogram"])
    edge = (np.searchsorted(np.cumsum(hist), hist.sum() / 2) + 1) / len(hist)
    cascade["thresholds"] = [float(edge)]
    bus.write_json("calibrators/cascade.json", cascade)

    summary = run_annotate(bus, config)
    labels = bus.read_table("labels").to_pylist()
    assert len(labels) == bus.manifest("candidates").rows == summary["labels"]
    by_vllm = [r for r in labels if r["tier_name"] == "tier2"]
    by_ce = [r for r in labels if r["tier_name"] == "tier1"]
    assert by_vllm and by_ce, "both tiers decide some pairs"
    assert all(r["confidence"] >= edge - 1e-6 for r in by_ce)
    assert all(r["tokens"] > 0 and r["model_fingerprint"] == cascade["tiers"][1]["model_fingerprint"] for r in by_vllm)
    ledger = bus.read_json("reports/annotate-ledger.json")["actual"]["tiers"]
    assert ledger["tier2"]["pairs"] == len(by_vllm) and ledger["tier2"]["tokens"] > 0 and ledger["tier2"]["failed"] == 0
    assert ledger["tier1"]["pairs"] == len(labels)
