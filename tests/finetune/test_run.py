"""Step finetune-tiers end to end on a synthetic bus with tiny models, and its command line."""

from __future__ import annotations

import json

import pytest

from relforge.config import load_config
from relforge.errors import ConfigError
from relforge.finetune import mode_for, run_finetune_tiers
from relforge.grades import ESCI
from relforge.tiers import CausalLMScorer, CrossEncoderScorer, ProbeScorer, TierDescriptor
from tests.finetune.conftest import synthetic_pairs

FAST = [
    "finetune.ce_epochs=2", "finetune.ce_learning_rate=0.002", "finetune.ce_eval_steps=6",
    "finetune.ce_max_length=24", "finetune.llm_max_length=96", "finetune.lora_epochs=1",
    "finetune.lora_eval_steps=4", "finetune.lora_batch_size=8", "finetune.lora_grad_accum=1",
    "finetune.lora_learning_rate=0.005", "finetune.probe_l2=[0.1]",
]


def _config(bert_base, llama_base, tmp_path, *extra):
    return load_config(overrides=[
        "tiers.names=[tier1, tier2, tier3]",  # the bi-encoder tier0 is tested in tests/tiers/test_bi_encoder.py
        f"tiers.specs.tier1.model={bert_base}",
        f"tiers.specs.tier2.model={llama_base}",
        f"tiers.specs.tier3.model={llama_base}",
        # a TGI-served tier is fine-tuned with LoRA (the server serves the merged folder)
        "tiers.specs.tier3.backend=tgi", "tiers.specs.tier3.url=http://tier3:8080",
        f"models.cache_dir={tmp_path / 'cache'}",
        *FAST, *extra,
    ])


def test_mode_per_backend():
    assert mode_for("cross-encoder", "probe") == "cross-encoder"
    assert mode_for("causal-lm", "probe") == "probe" and mode_for("causal-lm", "lora") == "lora"
    assert mode_for("tgi", "probe") == mode_for("openai", "probe") == "lora"


@pytest.mark.slow
def test_finetune_tiers_end_to_end(synthetic_bus, bert_base, llama_base, tmp_path):
    config = _config(bert_base, llama_base, tmp_path)
    summary = run_finetune_tiers(synthetic_bus, config)
    assert summary["train_pairs"] == 96 and summary["calib_pairs"] == 24
    modes = {name: r["mode"] for name, r in summary["tiers"].items()}
    assert modes == {"tier1": "cross-encoder", "tier2": "probe", "tier3": "lora"}
    local = {}
    for name in ("tier1", "tier2", "tier3"):
        assert synthetic_bus.exists(f"models/{name}/manifest.json")
        local[name] = synthetic_bus.get_dir(f"models/{name}", tmp_path / "got" / name)
        d = TierDescriptor.load(local[name])
        assert d.grade_scale.names == ESCI.names
        assert json.loads((local[name] / "finetune.json").read_text())["tier"] == name
    assert TierDescriptor.load(local["tier1"]).backend == "cross-encoder"
    assert TierDescriptor.load(local["tier2"]).backend == "probe"
    assert TierDescriptor.load(local["tier3"]).backend == "causal-lm"
    assert (local["tier3"] / "adapter" / "adapter_model.safetensors").is_file()
    # every tier copied back from the bus scores pairs
    pairs = synthetic_pairs(8, seed=9).pairs()
    for scorer in (CrossEncoderScorer(local["tier1"], ESCI, max_length=24), ProbeScorer(local["tier2"], ESCI),
                   CausalLMScorer(local["tier3"], ESCI, max_length=96)):
        scores = scorer.score(pairs)
        assert scores.probs.shape == (8, 4) and not scores.failed.any()
    report = synthetic_bus.read_json("reports/finetune.json")
    assert set(report["tiers"]) == {"tier1", "tier2", "tier3"}
    md = synthetic_bus.read_text("reports/finetune.md")
    assert "| tier2 | probe |" in md and "| tier3 | lora |" in md

    # a rerun with the same tables and settings trains nothing; a changed setting retrains that tier
    again = run_finetune_tiers(synthetic_bus, config)
    assert all(r.get("reused") for r in again["tiers"].values())
    changed = run_finetune_tiers(synthetic_bus, _config(bert_base, llama_base, tmp_path, "finetune.head=ordinal"),
                                 tiers=["tier2"])
    assert not changed["tiers"]["tier2"].get("reused") and changed["tiers"]["tier2"]["head"] == "ordinal"


def test_command_line(synthetic_bus, bert_base, llama_base, tmp_path):
    from typer.testing import CliRunner

    from relforge.cli import _register, app

    _register()
    sets = [
        f"tiers.specs.tier2.model={llama_base}", f"models.cache_dir={tmp_path / 'cache'}", *FAST,
    ]
    args = [a for s in sets for a in ("--set", s)]
    result = CliRunner().invoke(app, [*args, "finetune-tiers", "--run", synthetic_bus.root, "--tier", "tier2",
                                      "--head", "ordinal"])
    assert result.exit_code == 0, result.output
    assert "tier2" in result.output and "probe" in result.output
    assert TierDescriptor.model_validate_json(synthetic_bus.read_text("models/tier2/relforge_tier.json")).head == "ordinal"
    bad = CliRunner().invoke(app, [*args, "finetune-tiers", "--run", synthetic_bus.root, "--head", "cubic"])
    assert isinstance(bad.exception, ConfigError) and "head" in str(bad.exception)


def test_missing_tables_are_a_clear_error(tmp_path, bert_base, llama_base):
    from relforge.bus import DataBus
    from relforge.errors import RelforgeError

    with pytest.raises(RelforgeError, match="ingest"):
        run_finetune_tiers(DataBus(tmp_path / "empty"), _config(bert_base, llama_base, tmp_path))
