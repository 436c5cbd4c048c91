"""The calibration report: what the gate checked and decided, the tiers, the calibration methods,
the routing with its frontier, and the plots; as Markdown, HTML, a KFP ``Metrics`` document and a
confusion matrix (``ClassificationMetrics``), all on the bus under ``reports/``.

The plots (``reports/calibration/*.png``): reliability diagrams per tier before (raw) and after
(the configured method, out of fold), the cost-accuracy frontier with the chosen operating point
and its cross-fitted estimate, the cascade's confusion matrix against the human grades
(cross-fitted), and the share of pairs each tier decides.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from relforge.bus import DataBus
from relforge.calibrate._crossfit import CascadeEstimate
from relforge.calibrate._document import Document
from relforge.calibrate._plots import (
    plot_confusion,
    plot_frontier,
    plot_reliability,
    plot_tier_shares,
)
from relforge.calibrate._tiers import TierModel
from relforge.config import RelforgeConfig
from relforge.grades import GradeScale

PLOTS = "reports/calibration"
_DECISION_TEXT = {
    "most-probable": "most probable grade (`decision: most-probable`)",
    "expected-grade": "grade nearest the expected grade (`decision: expected-grade`: the least expected squared "
                      "grade error)",
}


def _ci(pair) -> str:
    return f"[{pair[0]:.3f}, {pair[1]:.3f}]"


def _thr(t: float | None) -> str:
    if t is None:
        return "accept none"
    return "accept all" if t <= 0 else f"{t:.3f}"


def _gate_section(doc: Document, summary: dict[str, Any]) -> None:
    gate = summary["gate"]
    if not gate["enabled"]:
        verdict = "**GATE OFF** (calibrate.gate: false): nothing was enforced; the checks below are for information."
    elif gate["passed"]:
        verdict = "**GATE PASSED**: the cascade's labels are expected to meet every check below."
    else:
        verdict = "**GATE FAILED**: the run stops here; no label is made from this cascade. Reasons: " + \
            "; ".join(gate["reasons"]) + "."
    doc.paragraph(verdict)
    doc.paragraph("What the gate checked (each on the cross-fitted estimate: every calibration pair routed by "
                  "calibrators and thresholds fitted without its query; CIs are bootstrap over queries):")
    doc.bullets([("pass: " if c["passed"] else "**FAIL**: ") + c["detail"] for c in gate["checks"]])


def _data_section(doc: Document, summary: dict[str, Any], tiers: list[TierModel], scale: GradeScale) -> None:
    doc.heading("Calibration data")
    origins = ", ".join(f"{k}: {v}" for k, v in summary["origins"].items())
    grades = summary["cascade"]["fitted_on"]["grades"]
    doc.paragraph(
        f"{summary['pairs']} judged pairs of {summary['queries']} queries ({origins}); grades "
        + ", ".join(f"{n} {c}" for n, c in zip(scale.names, grades))
        + f". Cross-fitting: {summary['folds']} query folds. Reviews come from `relforge ingest reviews`; "
        "test-split queries' grades are never used here (they are for evaluation only)."
    )
    rows = []
    for t, d in zip(tiers, summary["cascade"]["tiers"]):
        once = d.get("prepare_seconds") or 0.0
        rows.append([t.name, t.backend, t.ref, t.source, t.fingerprint, d["scored_now"],
                     f"{d['mean_cost']:.5f}", f"{1 / d['mean_cost']:.1f}" if d["mean_cost"] > 0 else "-",
                     f"{once:.1f}" if once else "-"])
    doc.table(["tier", "backend", "model", "source", "version", "scored now", "mean cost / pair", "pairs per cost unit",
               "one-off s"], rows)
    if any(d.get("prepare_seconds") for d in summary["cascade"]["tiers"]):
        doc.paragraph("One-off s: item vectors encoded once before scoring (no run had cached the catalog's: "
                      "`mine` encodes them for its dense channel), kept out of the per-pair cost that the routing "
                      "compares.")


def _methods_section(doc: Document, summary: dict[str, Any], config: RelforgeConfig) -> None:
    cfg = config.calibrate
    doc.heading("Calibration methods per tier (out of fold)")
    doc.paragraph(
        f"Each method is fitted on the other folds' pairs and measured on the held-out fold. ECEs use "
        f"{cfg.ece_bins} equal-mass bins. `{cfg.method}` is the method the cascade uses; rare grades with fewer "
        f"than {cfg.min_positives} positive (or negative) pairs keep the identity map."
    )
    rows = []
    for tier, d in summary["per_tier"].items():
        for method, m in d["methods"].items():
            rows.append([tier, method, f"{m['accuracy']:.3f} {_ci(m['ci']['accuracy'])}", f"{m['macro_f1']:.3f}",
                         f"{m['qwk']:.3f} {_ci(m['ci']['qwk'])}", f"{m['ece']:.3f}", f"{m['classwise_ece']:.3f}",
                         f"{m['brier']:.3f}", f"{m['nll']:.3f}"])
    doc.table(["tier", "method", "accuracy [CI]", "macro-F1", "QWK [CI]", "ECE", "class-wise ECE", "Brier", "NLL"], rows)
    doc.paragraph(f"`{cfg.method}` against the best other method (lowest NLL), paired over the same pairs: "
                  "differences are method - baseline (accuracy: higher is better; NLL: lower is better).")
    rows = []
    for tier, d in summary["per_tier"].items():
        c = d["comparison"]
        rows.append([tier, c["baseline"],
                     f"{c['accuracy']['difference']:+.4f} {_ci(c['accuracy']['ci'])} p={c['accuracy']['p_value']:.3f}",
                     f"{c['nll']['difference']:+.4f} {_ci(c['nll']['ci'])} p={c['nll']['p_value']:.3f}",
                     f"{c['mcnemar']['candidate_only']} / {c['mcnemar']['baseline_only']} p={c['mcnemar']['p_value']:.3f}"])
    doc.table(["tier", "best baseline", "accuracy difference", "NLL difference", "McNemar (only method / only baseline)"],
              rows)


def _routing_section(doc: Document, summary: dict[str, Any], tiers: list[TierModel], estimate: CascadeEstimate,
                     config: RelforgeConfig) -> None:
    cfg = config.calibrate
    doc.heading("Routing")
    goal = (f"least mean cost with accuracy >= {cfg.target_accuracy:.3f}" if estimate.mode == "target-accuracy"
            else f"best accuracy with mean cost <= {cfg.budget}")
    thresholds = ", ".join(f"{t.name} {_thr(v)}" for t, v in zip(tiers, summary["cascade"]["thresholds"]))
    doc.paragraph(
        f"Mode `{estimate.mode}`: {goal}. A tier's grade is the {_DECISION_TEXT[cfg.decision]} under its "
        "calibrated probabilities, its confidence that grade's probability; a tier accepts a pair when the "
        "confidence reaches its threshold; the last tier accepts every pair that reaches it. "
        + (f"Thresholds: {thresholds} (chosen on all calibration pairs" if thresholds else
           "A single tier: it decides every pair (no threshold")
        + f"{'' if estimate.feasible else '; NO grid point met the constraint'})."
    )
    cf, cal, ci = estimate.crossfit, estimate.calib, estimate.ci
    doc.table(
        ["estimate", "accuracy", "macro-F1", "QWK", "mean cost / pair", "cost relative to the top tier"],
        [
            ["cross-fitted (honest)", f"{cf.accuracy:.3f} {_ci(ci['accuracy'])}", f"{cf.macro_f1:.3f} {_ci(ci['macro_f1'])}",
             f"{cf.qwk:.3f} {_ci(ci['qwk'])}", f"{cf.mean_cost:.5f} {_ci(ci['mean_cost'])}",
             f"{cf.relative_cost:.3f} {_ci(ci['relative_cost'])}"],
            ["on the pairs that chose it (optimistic)", f"{cal.accuracy:.3f}", f"{cal.macro_f1:.3f}", f"{cal.qwk:.3f}",
             f"{cal.mean_cost:.5f}", f"{cal.relative_cost:.3f}"],
        ],
    )
    rows = []
    for i, t in enumerate(tiers):
        single = estimate.single_tiers[i]
        share, share_ci = cf.shares[i], estimate.share_ci[i]
        role = "decides pairs" if share > 0.005 else "decides none: it does not earn its place at this operating point"
        rows.append([t.name, t.backend, f"{share:.1%} {_ci(share_ci)}", f"{single.accuracy:.3f}", f"{single.qwk:.3f}",
                     f"{single.mean_cost:.5f}", role])
    doc.paragraph("Where pairs are decided (cross-fitted), and each tier alone on all calibration pairs (calibrated):")
    doc.table(["tier", "backend", "share decided [CI]", "alone: accuracy", "alone: QWK", "alone: mean cost", "at the chosen point"],
              rows)
    g = summary.get("guaranteed")
    if g:
        doc.heading("Guaranteed mode", 3)
        doc.paragraph(
            f"Fixed-sequence thresholds: with probability >= {1 - g['delta']:.2f}, the pairs a tier accepts agree "
            f"with humans at >= {g['target_agreement']:.2f}. Coverage {g['coverage']:.1%} of calibration pairs; the "
            f"other {g['abstained']:.1%} are not certified (annotate labels them with the last tier, marked "
            "`accepted = false`, and queues them for review first)."
        )
        doc.table(["tier", "threshold", "coverage", "agreement of accepted", "p-value"], [
            [t.name, _thr(r["threshold"]) if r["threshold"] is not None else "none (not guaranteed)",
             f"{r['coverage']:.1%}", "-" if r["agreement"] is None else f"{r['agreement']:.3f}",
             "-" if r["p_value"] is None else f"{r['p_value']:.3g}"]
            for t, r in zip(tiers, g["tiers"])
        ])


def _metrics_doc(summary: dict[str, Any], estimate: CascadeEstimate, tiers: list[TierModel],
                 config: RelforgeConfig, gate_metrics: dict[str, Any]) -> dict[str, Any]:
    cf, ci = estimate.crossfit, estimate.ci
    doc: dict[str, Any] = {
        "gate": gate_metrics,
        "cascade": {
            "accuracy": cf.accuracy, "accuracy_ci_low": ci["accuracy"][0], "accuracy_ci_high": ci["accuracy"][1],
            "macro_f1": cf.macro_f1, "qwk": cf.qwk, "qwk_ci_low": ci["qwk"][0], "qwk_ci_high": ci["qwk"][1],
            "ece": summary["ece"], "mean_cost": cf.mean_cost, "relative_cost": cf.relative_cost,
            "pairs": summary["pairs"], "queries": summary["queries"],
        },
        "tiers": {},
    }
    for i, t in enumerate(tiers):
        methods = summary["per_tier"][t.name]["methods"]
        doc["tiers"][t.name] = {
            "share": cf.shares[i],
            **{f"{m.replace('-', '_')}_{k}": methods[m][k] for m in methods for k in ("accuracy", "qwk", "ece")},
        }
    return doc


def write_calibration_report(
    bus: DataBus,
    summary: dict[str, Any],
    tiers: list[TierModel],
    raw: list[np.ndarray],
    oof_by_tier: dict[str, dict[str, np.ndarray]],
    estimate: CascadeEstimate,
    y: np.ndarray,
    scale: GradeScale,
    config: RelforgeConfig,
    paths: dict[str, str],
) -> None:
    """Write the report documents and plots (see the module docstring)."""
    cfg = config.calibrate
    names = [t.name for t in tiers]
    held = estimate.held_out
    assert held is not None
    gate_metrics = _gate_metrics(summary)
    doc = Document("Calibration")
    _gate_section(doc, summary)
    _data_section(doc, summary, tiers, scale)
    _methods_section(doc, summary, config)
    _routing_section(doc, summary, tiers, estimate, config)
    with tempfile.TemporaryDirectory(prefix="relforge-calibration-") as tmp:
        folder = Path(tmp)
        plots = [
            ("Reliability per tier: raw probabilities (top) and calibrated out of fold (bottom)", "reliability.png",
             lambda p: plot_reliability({n: r for n, r in zip(names, raw)},
                                        {n: oof_by_tier[n][cfg.method] for n in names}, y, p, cfg.ece_bins,
                                        cfg.decision)),
            ("Cost-accuracy frontier on the calibration pairs, the chosen point and its cross-fitted estimate",
             "frontier.png",
             lambda p: plot_frontier(estimate.frontier, estimate.calib, p, estimate.single_tiers, names,
                                     estimate=estimate.crossfit, estimate_ci=estimate.ci)),
            ("The cascade's grades against the human grades (cross-fitted)", "confusion.png",
             lambda p: plot_confusion(y, held.grade, scale.names, p)),
            ("Share of pairs each tier decides (cross-fitted)", "shares.png",
             lambda p: plot_tier_shares(estimate.crossfit.shares, p, names, estimate.share_ci)),
        ]
        doc.heading("Plots")
        for caption, file, draw in plots:
            draw(folder / file)
            doc.image(caption, folder / file, f"calibration/{file}")
        bus.put_dir(folder, PLOTS)
        bus.write_text(paths["md"], doc.markdown())
        bus.write_text(paths["html"], doc.html())
    bus.write_json(paths["json"], summary)
    bus.write_json(paths["metrics"], _metrics_doc(summary, estimate, tiers, config, gate_metrics))
    matrix = np.zeros((scale.n, scale.n), dtype=int)
    np.add.at(matrix, (y, held.grade), 1)
    bus.write_json(paths["confusion"], {"labels": scale.names, "matrix": matrix.tolist(),
                                        "rows": "human grade", "columns": "cascade grade (cross-fitted)"})


def _gate_metrics(summary: dict[str, Any]) -> dict[str, Any]:
    gate = summary["gate"]
    return {
        "passed": int(gate["passed"]), "enabled": int(gate["enabled"]),
        **{c["name"]: {"passed": int(c["passed"]), "failed": int(not c["passed"]), "value": c["value"],
                       "limit": c["limit"]} for c in gate["checks"]},
    }
