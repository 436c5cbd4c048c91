"""The ablation table: every system's headline metrics with intervals, and its paired
difference from the reference, as README-ready Markdown."""

from __future__ import annotations

from typing import Any

from relforge.evaluate._metrics import MetricSettings


def _ci(s: dict[str, Any] | None, pct: bool = False) -> str:
    if not s or s.get("mean") is None or s["mean"] != s["mean"]:
        return "-"
    f = (lambda v: f"{100 * v:.1f}%") if pct else (lambda v: f"{v:.3f}")
    if s.get("low") is None or s["low"] != s["low"]:
        return f(s["mean"])
    return f"{f(s['mean'])} [{f(s['low'])}, {f(s['high'])}]"


def _diff(p: dict[str, Any] | None, pct: bool = False) -> str:
    if not p or "diff" not in p:
        return "-"
    f = (lambda v: f"{100 * v:+.1f} pts") if pct else (lambda v: f"{v:+.3f}")
    ci = "" if p["low"] != p["low"] else f" [{f(p['low'])}, {f(p['high'])}]"
    pv = "" if p["p_value"] != p["p_value"] else f", p={p['p_value']:.3f}"
    return f"{f(p['diff'])}{ci}{pv}"


def ablation_table(results: list[dict[str, Any]], settings: MetricSettings, reference_label: str) -> list[str]:
    """Markdown lines of the table (unjudged retrieved items counted as irrelevant; human labels only)."""
    k, rk = settings.k, settings.recall_k
    lines = [(f"| system | trained on | NDCG@{k} [95% CI] | Δ NDCG@{k} vs {reference_label} | rating-0@{k} | "
              f"Δ rating-0@{k} | Recall@{rk} |"),
             "|---|---|---|---|---|---|---|"]
    for r in results:
        s, p = r["summary"], r.get("paired", {})
        lines.append(f"| {r['label']} | {r['trained_on']} | {_ci(s.get(f'ndcg@{k}'))} | {_diff(p.get(f'ndcg@{k}'))} | "
                     f"{_ci(s.get(f'rating0@{k}'), True)} | {_diff(p.get(f'rating0@{k}'), True)} | "
                     f"{_ci(s.get(f'recall@{rk}'))} |")
    return lines


def ablation_markdown(results: list[dict[str, Any]], settings: MetricSettings, n_queries: int,
                      reference_label: str, dataset: str = "") -> str:
    """The table with the sentence a reader needs to read it."""
    head = ["## Baselines and ablations" + (f" ({dataset})" if dataset else ""), "",
            (f"{n_queries} test queries, human judgments only (unjudged retrieved items counted as irrelevant). "
             "Intervals: bootstrap over queries; Δ: paired bootstrap of the difference from "
             f"{reference_label}, p from a paired randomization test. With this few queries, a difference whose "
             "interval spans 0 is not a finding."), ""]
    return "\n".join(head + ablation_table(results, settings, reference_label)) + "\n"
