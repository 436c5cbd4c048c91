"""Step ``train-two-tower``: the retriever trained on the curriculum, published as
``models/two-tower`` with its descriptor, training report and per-stage curves."""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from relforge.bus import DataBus, fingerprint
from relforge.config import RelforgeConfig
from relforge.grades import read_grade_scale
from relforge.logs import get_logger, log_event
from relforge.twotower._checkpoints import StageStore
from relforge.twotower._data import load_training_rows, stage_levels
from relforge.twotower._model import MODEL, read_descriptor, write_descriptor
from relforge.twotower._plots import plot_training_curves
from relforge.twotower._train import stages_to_train, train_two_tower

log = get_logger("twotower")

REPORT_JSON = "reports/two-tower.json"
REPORT_MD = "reports/two-tower.md"
FIGURES = "reports/two-tower-figures"


def training_fingerprint(bus: DataBus, config: RelforgeConfig) -> str:
    """The identity of a training: its input tables, the ``twotower`` settings and the base model."""
    names = ["catalog", "queries"] + (["curriculum"] if stages_to_train(config) else [])
    return fingerprint(bus.input_digests(*names), config.section_hash("twotower"))


def run_train_two_tower(bus: DataBus, config: RelforgeConfig, callbacks=()) -> dict[str, Any]:
    """Train the two-tower retriever (see :mod:`relforge.twotower._train`) and publish it.

    A model already on the bus with the same fingerprint is kept (nothing is retrained); a
    training killed before the end resumes from its checkpoints on the bus.

    Args:
        bus: the run's bus (``curriculum``, ``catalog``, ``queries``).
        config: the run's configuration (``twotower``, ``models``, ``compute``).
        callbacks: extra trainer callbacks (tests).

    Returns:
        A summary with the stages' examples, steps and final losses, and a ``decided`` line.
    """
    from relforge.models import resolve_model

    cfg = config.twotower
    fp = training_fingerprint(bus, config)
    existing = read_descriptor(bus)
    if existing is not None and existing.get("fingerprint") == fp:
        log_event(log, "two-tower model already trained", version=fp)
        return {"version": fp, "reused": True, "decided": f"model {fp} already trained with these inputs"}
    started = time.perf_counter()
    scale = read_grade_scale(bus)
    specs = stages_to_train(config)
    base_dir = resolve_model(cfg.base_model, config.models, bus=config.bus)
    rows = load_training_rows(bus, config, scale) if specs else None
    catalog = bus.read_table("catalog", columns=[cfg.item_field])
    catalog_texts = np.asarray([t for t in catalog.column(cfg.item_field).to_pylist() if t], dtype=object)
    work = Path(config.models.cache_dir).expanduser() / "two-tower-work" / fp
    work.mkdir(parents=True, exist_ok=True)
    store = StageStore(bus, fp, work)
    out = work / "model"
    shutil.rmtree(out, ignore_errors=True)
    report = train_two_tower(base_dir, rows, stage_levels(bus, config), config, scale, catalog_texts, store, out,
                             callbacks)
    descriptor = {
        "version": fp, "fingerprint": fp, "base_model": cfg.base_model, "max_seq_length": cfg.max_seq_length,
        "item_field": cfg.item_field, "curriculum": cfg.curriculum, "only_stages": cfg.only_stages,
        "stages": [s.model_dump() for s in specs], "graded_target": cfg.graded_target,
        "training_rows": 0 if rows is None else len(rows), "grade_scale": scale.names,
        "trained_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    write_descriptor(out, descriptor)
    bus.put_dir(out, MODEL)
    report.update({"version": fp, "seconds": round(time.perf_counter() - started, 1), "descriptor": descriptor})
    write_report(bus, report)
    store.clear()
    shutil.rmtree(work, ignore_errors=True)
    stages = "; ".join(f"{s['stage']} {s['loss']} {s.get('examples', 0):,} ex, {s.get('steps', 0)} steps"
                       + (f" (resumed at {s['resumed_from_step']})" if s.get("resumed_from_step") else "")
                       for s in report["stages"]) or "no stage: the base model, untrained"
    return {"version": fp, "stages": [{k: v for k, v in s.items() if k != "curve"} for s in report["stages"]],
            "seconds": report["seconds"], "decided": f"model {fp}: {stages}"}


def render_markdown(report: dict[str, Any]) -> str:
    d = report["descriptor"]
    lines = ["# Two-tower training", "",
             f"Model `{report['version']}` from `{d['base_model']}` ({d['training_rows']:,} curriculum rows, "
             f"{d['max_seq_length']} tokens, item field `{d['item_field']}`); "
             + ("stages in order, each from the previous one's model." if d["curriculum"] else
                "**no curriculum**: every stage's examples and loss at once."), "",
             ("| stage | loss | levels | examples | negatives scored | filtered as likely false | random fill "
              "| steps | resumed at | final loss | seconds |"),
             "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for s in report["stages"]:
        parts = s.get("parts", [s])
        levels = ", ".join(str(lv) for p in parts for lv in p.get("levels", []))
        cand = sum(p.get("candidates", 0) for p in parts)
        filt = sum(p.get("filtered_out", 0) for p in parts)
        fill = sum(p.get("filled_random", 0) for p in parts)
        final = s["curve"][-1]["loss"] if s.get("curve") else None
        lines.append(f"| {s['stage']} | {s['loss']} | {levels} | {s.get('examples', 0):,} | {cand:,} | "
                     f"{filt:,} ({filt / cand:.0%}) | {fill:,} | {s.get('steps', 0)} | "
                     f"{s.get('resumed_from_step') or '-'} | {'-' if final is None else f'{final:.4f}'} | "
                     f"{s.get('seconds', 0)} |" if cand else
                     f"| {s['stage']} | {s['loss']} | {levels} | {s.get('examples', 0):,} | - | - | {fill:,} | "
                     f"{s.get('steps', 0)} | {s.get('resumed_from_step') or '-'} | "
                     f"{'-' if final is None else f'{final:.4f}'} | {s.get('seconds', 0)} |")
    if not report["stages"]:
        lines.append("| - | - | - | 0 | - | - | - | 0 | - | - | 0 |")
    lines += ["", ("Negatives are the curriculum's grade-0 items of the same query; a negative the stage's starting "
                   "model scores within the margin of the positive (`twotower.relative_margin`, `absolute_margin`) "
                   "is dropped as a likely false negative."), "", "![training curves](two-tower-figures/curves.png)"]
    return "\n".join(lines) + "\n"


def write_report(bus: DataBus, report: dict[str, Any]) -> None:
    """``reports/two-tower.json`` and ``.md``, and the curves figure."""
    bus.write_json(REPORT_JSON, report)
    bus.write_text(REPORT_MD, render_markdown(report))
    with tempfile.TemporaryDirectory(prefix="relforge-two-tower-") as tmp:
        plot_training_curves(report["stages"], Path(tmp) / "curves.png")
        bus.put_dir(tmp, FIGURES)
