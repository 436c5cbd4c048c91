"""The evaluation report: Markdown and self-contained HTML (plots inlined), the KFP metrics, and
the README-ready ablation table."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from relforge.bus import DataBus
from relforge.evaluate._ablation import _ci, _diff, ablation_markdown
from relforge.evaluate._metrics import MetricSettings
from relforge.evaluate._plots import plot_systems

REPORT_MD = "reports/evaluate.md"
REPORT_HTML = "reports/evaluate.html"
REPORT_JSON = "reports/evaluate.json"
METRICS_JSON = "reports/evaluate-metrics.json"
ABLATION_MD = "reports/ablation.md"
FIGURES = "reports/evaluate-figures"
#: Figures other steps wrote, shown in this report when present: (bus folder, file, caption).
OTHER_FIGURES = (
    ("reports/two-tower-figures", "curves.png", "Two-tower training loss per stage"),
    ("reports/index-figures", "recall-qps.png", "The index: recall@10 against single-query QPS"),
)


def _fetch_figure(bus: DataBus, folder: str, file: str, into: Path) -> Path | None:
    if not bus.exists(f"{folder}/{file}") or not bus.exists(f"{folder}/manifest.json"):
        return None
    target = into / folder.replace("/", "_")
    bus.get_dir(folder, target)
    return target / file if (target / file).exists() else None


def write_report(bus: DataBus, summary: dict[str, Any], settings: MetricSettings) -> None:
    """Write every document of the evaluation (see the module docstring)."""
    from relforge.calibrate import Document

    results = summary["systems"]
    k, rk = settings.k, settings.recall_k
    ref = next((r for r in results if r["name"] == summary["reference"]), results[0] if results else None)
    doc = Document("Evaluation")
    doc.paragraph(f"{summary['queries']} `{summary['split']}` queries with {summary['judgments']:,} human judgments "
                  f"({summary['judged_per_query']:.1f} per query). **Headline numbers use human labels only**; unjudged "
                  "retrieved items count as irrelevant (and, second table, are left out: judged-only, condensed lists).")
    doc.heading("Headline (human labels, unjudged = irrelevant)")
    doc.table(["system", "trained on", f"NDCG@{k}", f"rating-0@{k}", f"Recall@{rk}", f"judged@{k}"],
              [[r["label"], r["trained_on"], _ci(r["summary"].get(f"ndcg@{k}")),
                _ci(r["summary"].get(f"rating0@{k}"), True), _ci(r["summary"].get(f"recall@{rk}")),
                _ci(r["summary"].get(f"judged@{k}"), True)] for r in results])
    doc.heading("Judged-only (unjudged items removed before the cutoff)")
    doc.table(["system", f"NDCG@{k}", f"rating-0@{k}", f"Recall@{rk}"],
              [[r["label"], _ci(r["summary"].get(f"ndcg@{k}_judged")),
                _ci(r["summary"].get(f"rating0@{k}_judged"), True),
                _ci(r["summary"].get(f"recall@{rk}_judged"))] for r in results])
    if ref is not None and len(results) > 1:
        doc.heading(f"Paired against {ref['label']} (difference [95% CI], p)")
        metrics = [f"ndcg@{k}", f"rating0@{k}", f"recall@{rk}", f"ndcg@{k}_judged"]
        doc.table(["system", *metrics],
                  [[r["label"], *(_diff(r.get("paired", {}).get(m), m.startswith("rating0")) for m in metrics)]
                   for r in results if r is not ref])
    if any("ppi" in r for r in results):
        doc.heading(f"Prediction-powered NDCG@{k} (cascade labels for unjudged items)")
        doc.paragraph("The cascade labels the unjudged retrieved items; its bias is corrected on the items humans "
                      "judged too (prediction-powered inference, query bootstrap). **Circular** marks systems trained "
                      "on the cascade's own labels: there the cascade grades its pupil, and the estimate is not an "
                      "independent judgment. " + summary.get("labels_note", ""))
        rows = []
        for r in results:
            p = r.get("ppi") or {}
            if "error" in p:
                rows.append([r["label"], "-", "-", "-", "-", p["error"][:120], "yes" if r["circular"] else ""])
            elif p:
                rows.append([r["label"], f"{p['estimate']:.3f} [{p['low']:.3f}, {p['high']:.3f}]",
                             f"{p['naive']:.3f}", f"{p['human_only']:.3f}", f"{p['rectifier']:+.4f}",
                             f"{p['n_judged_slots']}/{p['n_slots']} judged", "**yes**" if r["circular"] else "no"])
        doc.table(["system", "estimate [95% CI]", "naive", "human only", "rectifier", "top-k slots", "circular"], rows)
    segments = sorted({s for r in results for s in r.get("segments", {})})
    if segments:
        doc.heading("Per segment")
        doc.table(["system", *(f"{s}: NDCG@{k}" for s in segments)],
                  [[r["label"], *(_ci(r["segments"].get(s, {}).get(f"ndcg@{k}")) for s in segments)] for r in results])
    else:
        doc.paragraph("The queries table has no `segment` column: no head/tail breakdown.")
    if summary.get("second_round"):
        doc.heading("Second mining round")
        doc.paragraph(f"See {summary['second_round']} (new candidates per bucket, their label mix, the metrics).")
    with tempfile.TemporaryDirectory(prefix="relforge-evaluate-") as tmp:
        folder = Path(tmp)
        doc.heading("Plots")
        if results:
            plot_systems(results, [(f"ndcg@{k}", f"NDCG@{k}"), (f"rating0@{k}", f"rating-0@{k} (lower is better)")],
                         folder / "figures" / "systems.png", summary["reference"])
            doc.image(f"NDCG@{k} and rating-0@{k} per system", folder / "figures" / "systems.png",
                      "evaluate-figures/systems.png")
            bus.put_dir(folder / "figures", FIGURES)
        for bus_folder, file, caption in OTHER_FIGURES:
            local = _fetch_figure(bus, bus_folder, file, folder)
            if local is not None:
                doc.image(caption, local, f"{bus_folder.split('/', 1)[1]}/{file}")
        bus.write_text(REPORT_MD, doc.markdown())
        bus.write_text(REPORT_HTML, doc.html())
    bus.write_json(REPORT_JSON, summary)
    if ref is not None:
        metrics = {"queries": summary["queries"], **{f"{r['name']}.{m.replace('@', '_at_')}": r["summary"][m]["mean"]
                                                     for r in results for m in (f"ndcg@{k}", f"rating0@{k}",
                                                                                f"recall@{rk}")
                                                     if r["summary"].get(m) and r["summary"][m]["mean"] == r["summary"][m]["mean"]}}
        bus.write_json(METRICS_JSON, metrics)
    if len(results) > 1:
        bus.write_text(ABLATION_MD, ablation_markdown(results, settings, summary["queries"],
                                                      ref["label"] if ref else "the reference"))
