"""The curriculum report: rows per level and stage, each level's grade mix (its labels', and the
human judges' where they judged the pair), and the rules that made it."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa

from relforge.bus import DataBus
from relforge.config import CurriculumConfig
from relforge.grades import GradeScale

REPORT_JSON = "reports/curriculum.json"
REPORT_MD = "reports/curriculum.md"
METRICS_JSON = "reports/curriculum-metrics.json"


def _mix(grades: np.ndarray, n: int) -> list[float]:
    counts = np.bincount(grades.astype(np.int64), minlength=n)[:n]
    return (counts / counts.sum()).round(4).tolist() if counts.sum() else [0.0] * n


def curriculum_report(table: pa.Table, judgments: pa.Table | None, cfg: CurriculumConfig,
                      scale: GradeScale) -> dict[str, Any]:
    """The report's numbers (see the module docstring)."""
    level = table.column("level").to_numpy().astype(np.int64)
    grade = table.column("grade").to_numpy().astype(np.int64)
    stage = table.column("stage").to_numpy().astype(np.int64)
    bucket = np.asarray(table.column("bucket").to_pylist(), dtype=object)
    rule = np.asarray(table.column("rule").to_pylist(), dtype=object)
    human = np.full(len(level), -1, dtype=np.int64)
    if judgments is not None and judgments.num_rows:
        judged = {(q, i): g for q, i, g in zip(judgments.column("query_id").to_pylist(),
                                               judgments.column("item_id").to_pylist(),
                                               judgments.column("grade").to_pylist())}
        keys = zip(table.column("query_id").to_pylist(), table.column("item_id").to_pylist())
        human = np.array([judged.get(k, -1) for k in keys], dtype=np.int64)
    buckets = sorted(set(bucket.tolist()))
    levels = []
    for lv in range(1, 6):
        m = level == lv
        h = human[m & (human >= 0)] if lv else human
        names = sorted(set(rule[m].tolist()))
        levels.append({
            "level": lv, "rules": names, "rows": int(m.sum()), "share": round(float(m.mean()), 4) if len(m) else 0.0,
            "first_stage": int(stage[m][0]) if m.any() else None,
            "label_grade_mix": _mix(grade[m], scale.n),
            "human_judged": len(h), "human_grade_mix": _mix(h, scale.n) if len(h) else None,
            "label_human_agreement": round(float((grade[m & (human >= 0)] == h).mean()), 4) if len(h) else None,
            "buckets": {b: int((m & (bucket == b)).sum()) for b in buckets},
        })
    stages = [{"stage": s, "levels": cfg.stages[s], "rows": int(np.isin(level, cfg.stages[s]).sum()),
               "new_rows": int((stage == s).sum())} for s in sorted(cfg.stages)]
    return {
        "rows": len(level), "queries": len(set(table.column("query_id").to_pylist())),
        "source": table.column("source")[0].as_py() if table.num_rows else None, "splits": cfg.splits,
        "grades": scale.names, "levels": levels, "stages": stages, "buckets": buckets,
        "rules": [r.model_dump(exclude_none=True) for r in cfg.rules], "default_level": cfg.default_level,
        "human_judged_rows": int((human >= 0).sum()),
    }


def _pct(values: list[float] | None) -> list[str]:
    return ["" if values is None else f"{v:.0%}" for v in values] if values else []


def render_markdown(report: dict[str, Any]) -> str:
    """The report as Markdown."""
    g = report["grades"]
    lines = [
        "# Curriculum", "",
        (f"{report['rows']:,} training examples from {report['queries']:,} queries (source: {report['source']} "
         f"labels; splits {', '.join(report['splits'])}; test-split queries are never included)."), "",
        "## Levels", "",
        "| level | rule(s) | rows | share | first stage | " + " | ".join(f"label {n}" for n in g)
        + " | human-judged | " + " | ".join(f"human {n}" for n in g) + " |",
        "|---:|---|---:|---:|---:|" + "---:|" * len(g) + "---:|" + "---:|" * len(g),
    ]
    for lv in report["levels"]:
        human = _pct(lv["human_grade_mix"]) or [""] * len(g)
        lines.append(f"| {lv['level']} | {', '.join(lv['rules']) or '-'} | {lv['rows']:,} | {lv['share']:.1%} | "
                     f"{lv['first_stage'] or '-'} | " + " | ".join(_pct(lv["label_grade_mix"])) + f" | "
                     f"{lv['human_judged']:,} | " + " | ".join(human) + " |")
    lines += ["", ("The human columns are the grade mix of the level's pairs that people judged (train and calib "
                   "queries): where a level's human mix disagrees with its name (an `easy positive` level that "
                   "humans grade irrelevant), change the rules in `curriculum.rules`."), "",
              "## Stages", "", "| stage | levels | rows trained on | rows entering |", "|---:|---|---:|---:|"]
    for s in report["stages"]:
        lines.append(f"| {s['stage']} | {', '.join(map(str, s['levels']))} | {s['rows']:,} | {s['new_rows']:,} |")
    lines += ["", "## Rows per bucket and level", "",
              "| level | " + " | ".join(report["buckets"]) + " |", "|---:|" + "---:|" * len(report["buckets"])]
    for lv in report["levels"]:
        lines.append(f"| {lv['level']} | " + " | ".join(f"{lv['buckets'][b]:,}" for b in report["buckets"]) + " |")
    lines += ["", "## Rules (configuration `curriculum.rules`, first match wins)", ""]
    for r in report["rules"]:
        conditions = ", ".join(f"{k} {v}" for k, v in r.items() if k not in ("level", "name"))
        lines.append(f"- level {r['level']} `{r['name']}`: {conditions or 'always'}")
    lines.append(f"- otherwise: level {report['default_level']}" if report["default_level"] else
                 "- otherwise: left out")
    return "\n".join(lines) + "\n"


def write_report(bus: DataBus, report: dict[str, Any]) -> None:
    """``reports/curriculum.json``, ``.md`` and the KFP metrics document."""
    bus.write_json(REPORT_JSON, report)
    bus.write_text(REPORT_MD, render_markdown(report))
    metrics = {"rows": report["rows"], "queries": report["queries"],
               **{f"level{lv['level']}_rows": lv["rows"] for lv in report["levels"]},
               **{f"stage{s['stage']}_rows": s["rows"] for s in report["stages"]}}
    bus.write_json(METRICS_JSON, metrics)
