"""Step ``curriculum``: level and stage per labelled candidate of the training queries."""

from __future__ import annotations

from typing import Any

from relforge.bus import DataBus, fingerprint
from relforge.config import RelforgeConfig
from relforge.curriculum._build import build_curriculum
from relforge.curriculum._report import curriculum_report, write_report
from relforge.grades import GRADE_SCALE_KEY, read_grade_scale
from relforge.logs import get_logger, log_event

log = get_logger("curriculum")
TABLE = "curriculum"


def run_curriculum(bus: DataBus, config: RelforgeConfig) -> dict[str, Any]:
    """Build and commit the ``curriculum`` table and its report.

    Reads ``labels`` (or, with ``curriculum.source: judgments``, ``judgments``), ``candidates``
    (the bucket of each pair) and ``queries`` (only the splits in ``curriculum.splits``; never
    ``test``). A rerun with the same inputs and settings finds the table committed and only
    rewrites the report.

    Returns:
        A summary: rows per level and stage, and a ``decided`` line.

    Example:
        >>> run_curriculum(DataBus("runs/demo"), load_config())["decided"]     # doctest: +SKIP
    """
    cfg = config.curriculum
    scale = read_grade_scale(bus)
    source = "labels" if cfg.source == "labels" else "judgments"
    names = [source, "queries"] + (["candidates"] if bus.is_committed("candidates") else [])
    inputs = bus.input_digests(*names)
    config_hash = config.section_hash("curriculum")
    if bus.committed_with(TABLE, fingerprint(inputs, config_hash)) is not None:
        table = bus.read_table(TABLE)
        log_event(log, "curriculum already committed", rows=table.num_rows)
    else:
        table = build_curriculum(bus, config, scale)
        metadata = {GRADE_SCALE_KEY: scale.model_dump(), "stages": {str(k): v for k, v in cfg.stages.items()},
                    "source": cfg.source, "splits": cfg.splits,
                    "rules": [r.model_dump(exclude_none=True) for r in cfg.rules], "default_level": cfg.default_level}
        bus.write_table(TABLE, table, metadata=metadata, inputs=inputs, config_hash=config_hash)
    judgments = bus.read_table("judgments", columns=["query_id", "item_id", "grade"]) \
        if bus.is_committed("judgments") else None
    report = curriculum_report(table, judgments, cfg, scale)
    write_report(bus, report)
    per_level = ", ".join(f"L{lv['level']} {lv['rows']:,}" for lv in report["levels"])
    per_stage = ", ".join(f"S{s['stage']} {s['rows']:,}" for s in report["stages"])
    return {"rows": report["rows"], "queries": report["queries"],
            "levels": {lv["level"]: lv["rows"] for lv in report["levels"]},
            "stages": {s["stage"]: s["rows"] for s in report["stages"]},
            "decided": f"{report['rows']:,} examples from {report['queries']} queries ({per_level}; {per_stage})"}
