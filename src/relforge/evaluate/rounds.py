"""What a second round of mining changed: candidates per bucket (new pairs, and those the
first round's retriever found), the new pairs' label mix (cascade) and human mix (where judged),
the curriculum's levels, and the retriever's metrics, round 1 against round 2."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from relforge.bus import DataBus
from relforge.config import EvaluateConfig
from relforge.evaluate._metrics import MetricSettings, per_query_metrics
from relforge.evaluate._stats import compare_systems, summarize
from relforge.evaluate._systems import retrieval_run
from relforge.grades import GradeScale

REPORT_JSON = "reports/second-round.json"
REPORT_MD = "reports/second-round.md"


def _pairs(table: pa.Table) -> list[tuple[str, str]]:
    return list(zip(table.column("query_id").to_pylist(), table.column("item_id").to_pylist()))


def _mix(grades: list[int], n: int) -> list[float]:
    counts = np.bincount(np.asarray(grades, dtype=np.int64), minlength=n)[:n] if grades else np.zeros(n)
    return (counts / counts.sum()).round(4).tolist() if counts.sum() else [0.0] * n


def compare_rounds(first: DataBus, second: DataBus, scale: GradeScale, cfg: EvaluateConfig,
                   channel: str = "two_tower") -> dict[str, Any]:
    """The comparison (see the module docstring) of the runs at ``first`` and ``second``."""
    c1 = first.read_table("candidates", columns=["query_id", "item_id", "bucket"])
    cols = ["query_id", "item_id", "bucket"] + ([f"rank_{channel}"] if f"rank_{channel}" in
                                                 second.manifest("candidates").columns else [])
    c2 = second.read_table("candidates", columns=cols)
    old = set(_pairs(c1))
    keys2 = _pairs(c2)
    is_new = np.array([k not in old for k in keys2], dtype=bool)
    by_channel = (~pc.is_null(c2.column(f"rank_{channel}")).to_numpy(zero_copy_only=False)
                  if f"rank_{channel}" in c2.column_names else np.zeros(len(keys2), bool))
    b1 = np.asarray(c1.column("bucket").to_pylist(), dtype=object)
    b2 = np.asarray(c2.column("bucket").to_pylist(), dtype=object)
    buckets = sorted(set(b1.tolist()) | set(b2.tolist()))
    labels = {}
    if second.is_committed("labels"):
        lab = second.read_table("labels", columns=["query_id", "item_id", "grade"])
        labels = dict(zip(_pairs(lab), lab.column("grade").to_pylist()))
    human = {}
    if second.is_committed("judgments"):
        j = second.read_table("judgments", columns=["query_id", "item_id", "grade"])
        human = dict(zip(_pairs(j), j.column("grade").to_pylist()))
    rows = []
    for b in buckets + ["all"]:
        m2 = np.ones(len(keys2), bool) if b == "all" else b2 == b
        new = [k for k, take in zip(keys2, m2 & is_new) if take]
        rows.append({
            "bucket": b, "round1": int(len(b1) if b == "all" else (b1 == b).sum()), "round2": int(m2.sum()),
            "new": len(new), "new_by_channel": int((m2 & is_new & by_channel).sum()),
            "new_label_mix": _mix([labels[k] for k in new if k in labels], scale.n),
            "new_labelled": sum(k in labels for k in new),
            "new_human_judged": sum(k in human for k in new),
            "new_human_mix": _mix([human[k] for k in new if k in human], scale.n),
        })
    report: dict[str, Any] = {"first": first.root, "second": second.root, "channel": channel, "grades": scale.names,
                              "buckets": rows}
    levels = {}
    for name, bus in (("round1", first), ("round2", second)):
        if bus.is_committed("curriculum"):
            lv = bus.read_table("curriculum", columns=["level"]).column("level").to_numpy()
            levels[name] = {int(v): int((lv == v).sum()) for v in range(1, 6)}
    report["levels"] = levels
    if first.is_committed("retrieval") and second.is_committed("retrieval") and first.is_committed("judgments"):
        queries = first.read_table("queries", columns=["query_id", "split"]).to_pydict()
        test = {q for q, s in zip(queries["query_id"], queries["split"]) if s == cfg.split}
        judged = first.read_table("judgments", columns=["query_id", "item_id", "grade"])
        judged = judged.filter(pc.is_in(judged.column("query_id"), value_set=pa.array(sorted(test), pa.string())))
        settings = MetricSettings(cfg.k, cfg.recall_k)
        t1 = per_query_metrics(retrieval_run(first, test), judged, scale, settings)
        t2 = per_query_metrics(retrieval_run(second, test), judged, scale, settings)
        metrics = [f"ndcg@{cfg.k}", f"rating0@{cfg.k}", f"recall@{cfg.recall_k}"]
        boot = {"confidence": cfg.confidence, "n_resamples": cfg.bootstrap_reps, "seed": cfg.seed}
        report["metrics"] = {
            "round1": {m: s.to_dict() for m, s in summarize(t1, metrics, **boot).items()},
            "round2": {m: s.to_dict() for m, s in summarize(t2, metrics, **boot).items()},
            "paired": {m: compare_systems(t2, t1, m, confidence=cfg.confidence, n_resamples=cfg.paired_reps,
                                          seed=cfg.seed).to_dict() for m in metrics},
        }
    return report


def render_markdown(report: dict[str, Any]) -> str:
    g = report["grades"]
    pct = lambda v: f"{v:.0%}"
    lines = ["# Second mining round", "",
             (f"The first round's retriever searched as a fourth mining channel (`{report['channel']}`); the "
              f"second round mined, labelled, built its curriculum and trained again (`{report['second']}`)."), "",
             "## Candidates", "",
             "| bucket | round 1 | round 2 | new pairs | new, found by the retriever | new, labelled: "
             + " / ".join(g) + " | new, human-judged | their human grades |",
             "|---|---:|---:|---:|---:|---|---:|---|"]
    for r in report["buckets"]:
        lines.append(f"| {r['bucket']} | {r['round1']:,} | {r['round2']:,} | {r['new']:,} | {r['new_by_channel']:,} | "
                     f"{' / '.join(map(pct, r['new_label_mix'])) if r['new_labelled'] else '-'} | "
                     f"{r['new_human_judged']:,} | "
                     f"{' / '.join(map(pct, r['new_human_mix'])) if r['new_human_judged'] else '-'} |")
    if report.get("levels"):
        lines += ["", "## Curriculum levels", "", "| level | round 1 | round 2 |", "|---:|---:|---:|"]
        for lv in range(1, 6):
            lines.append(f"| {lv} | {report['levels'].get('round1', {}).get(lv, 0):,} | "
                         f"{report['levels'].get('round2', {}).get(lv, 0):,} |")
    if report.get("metrics"):
        m = report["metrics"]
        lines += ["", "## The retriever, round 1 against round 2 (test split, human judgments)", "",
                  "| metric | round 1 | round 2 | round 2 - round 1 [95% CI] | p |", "|---|---|---|---|---:|"]
        for metric, p in m["paired"].items():
            a, b = m["round1"][metric], m["round2"][metric]
            lines.append(f"| {metric} | {a['mean']:.3f} [{a['low']:.3f}, {a['high']:.3f}] | {b['mean']:.3f} "
                         f"[{b['low']:.3f}, {b['high']:.3f}] | {p['diff']:+.3f} [{p['low']:+.3f}, {p['high']:+.3f}] | "
                         f"{p['p_value']:.3f} |")
    return "\n".join(lines) + "\n"


def write_rounds_report(bus: DataBus, report: dict[str, Any]) -> None:
    bus.write_json(REPORT_JSON, report)
    bus.write_text(REPORT_MD, render_markdown(report))
