"""benchmarks/eval_tiers.py on any ingested run: a 3-grade synthetic run with tiny models gets
3-grade tiers, both views, CIs that hold their point estimate, and a second run reuses the
cached features and models instead of computing them again."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from relforge.bus import DataBus
from relforge.grades import GradeScale
from tests.finetune.conftest import COLOURS, KINDS

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "eval_tiers.py"
THREE = GradeScale(name="three", names=["bad", "ok", "good"], gains=[0, 1, 2])


def _three_grade_bus(root: Path) -> DataBus:
    """Like the synthetic ESCI bus, but with 3 grades (colour black/green = bad, blue = ok, red = good)."""
    rng = np.random.default_rng(0)
    items, queries, judgments = [], [], []
    q = 0
    for split, count in {"train": 8, "calib": 3, "test": 3}.items():
        for _ in range(count):
            kind = KINDS[q % len(KINDS)]
            queries.append({"query_id": f"q{q:02d}", "query": kind, "split": split})
            for j in range(16):
                colour = int(rng.integers(0, 4))
                grade = max(0, colour - 1)
                item_id = f"i{q:02d}-{j:02d}"
                items.append({"item_id": item_id, "title": f"{COLOURS[colour]} {kind}", "text": f"{COLOURS[colour]} {kind} | cotton"})
                judgments.append({"query_id": f"q{q:02d}", "item_id": item_id, "grade": grade, "source": "human"})
            q += 1
    bus = DataBus(root)
    meta = {"grade_scale": THREE.model_dump(), "origin": "synthetic-3"}
    bus.write_table("catalog", pa.Table.from_pylist(items), metadata=meta)
    bus.write_table("queries", pa.Table.from_pylist(queries), metadata=meta)
    j = pa.Table.from_pylist(judgments)
    bus.write_table("judgments", j.set_column(2, "grade", j.column("grade").cast(pa.int8())), metadata=meta)
    return bus


@pytest.mark.slow
def test_eval_script_on_a_three_grade_run(tmp_path, bert_base, llama_base, monkeypatch):
    spec = importlib.util.spec_from_file_location("eval_tiers", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    run = _three_grade_bus(tmp_path / "run")
    out = tmp_path / "res" / "eval.md"
    argv = [
        "--run", run.root, "--cache", str(tmp_path / "cache"), "--out", str(out), "--tiers", "tier1,tier2",
        "--reps", "50", "--timed-pairs", "12",
        "--set", f"tiers.specs.tier1.model={bert_base}", "--set", f"tiers.specs.tier2.model={llama_base}",
        "--set", "finetune.ce_max_length=24", "--set", "finetune.ce_epochs=3", "--set", "finetune.ce_learning_rate=0.002",
        "--set", "finetune.llm_max_length=110", "--set", "finetune.probe_l2=[0.01,1.0]",
    ]
    payload = module.main(argv)
    text = out.read_text()
    assert "## unseen queries" in text and "## held-out pairs" in text and "## Probe choices" in text
    rows = payload["rows"]
    for view in ("unseen queries", "held-out pairs"):
        methods = {(r["tier"], r["head"], r["method"].split(" (")[0]) for r in rows if r["view"] == view}
        assert ("-", "-", "majority class") in methods
        assert {("tier1", "softmax", "fine-tuned"), ("tier1", "ordinal", "fine-tuned")} <= methods
        assert {("tier2", "softmax", "probe"), ("tier2", "ordinal", "probe"),
                ("tier2", "-", "zero-shot: grade-token probabilities")} <= methods
    for r in rows:
        for key, (lo, hi) in r["ci"].items():
            assert lo <= r["metrics"][key] + 1e-9 and r["metrics"][key] <= hi + 1e-9
    # the tiers are trained on the run's own 3 grades: 3 softmax logits, 2 ordinal thresholds
    from relforge.tiers import TierDescriptor

    folders = sorted((tmp_path / "cache").glob("ce-*"))
    assert len(folders) == 2
    for folder in folders:
        d = TierDescriptor.load(folder)
        assert d.grade_scale.names == THREE.names
        from transformers import AutoConfig

        assert AutoConfig.from_pretrained(folder).num_labels == (3 if d.head == "softmax" else 2)
    probe = [r for r in rows if r["tier"] == "tier2" and r["view"] == "unseen queries" and r["method"].startswith("probe")]
    assert all(r["metrics"]["accuracy"] > 0.6 for r in probe)  # the colour is in the hidden state
    # a second run trains no model and extracts no feature again (both come from the cache);
    # the LLM runs only to time the scorers on the timed pairs, measured anew
    from relforge import finetune
    from relforge.tiers import PromptEncoder

    encoded, original = [], PromptEncoder.encode
    monkeypatch.setattr(PromptEncoder, "encode", lambda self, pairs, *a, **k: encoded.append(len(pairs))
                        or original(self, pairs, *a, **k))
    monkeypatch.setattr(finetune, "finetune_cross_encoder", lambda *a, **k: pytest.fail("model trained again"))
    again = module.main(argv)
    timed = payload["meta"]["timed_pairs"]
    assert encoded and all(n <= timed for n in encoded), encoded
    assert [r["metrics"] for r in again["rows"]] == [r["metrics"] for r in rows]
    assert all(r["train_s"] is None for r in again["rows"])  # no training time replayed from the cache
