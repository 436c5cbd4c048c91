"""The cascade's labels of the evaluated queries' retrieved items, for the prediction-powered
estimate: the ``labels`` table where the candidates were labelled, and the calibrated cascade
(``calibrators/``, ``models/``) run here on the unjudged top-k items no label covers.

Labels made here are kept on the bus (``cache/evaluate/cascade-labels``) and reused.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from relforge.bus import DataBus
from relforge.config import RelforgeConfig
from relforge.evaluate._inputs import Run
from relforge.grades import GradeScale
from relforge.logs import get_logger, log_event

log = get_logger("evaluate.labels")
EXTRA = "cache/evaluate/cascade-labels"
COLUMNS = ["query_id", "item_id", "grade", "probs"]


def _keys(table: pa.Table) -> set[tuple[str, str]]:
    return set(zip(table.column("query_id").to_pylist(), table.column("item_id").to_pylist()))


def unjudged_top(runs: Iterable[Run], judged: dict[str, dict[str, int]], k: int) -> set[tuple[str, str]]:
    """The (query, item) pairs in some run's top ``k`` that humans did not judge."""
    out: set[tuple[str, str]] = set()
    for run in runs:
        for q, items in run.ranking.items():
            if q in judged:
                out |= {(q, i) for i in items[:k] if i not in judged[q]}
    return out


def cascade_labels(
    bus: DataBus, config: RelforgeConfig, scale: GradeScale, runs: Iterable[Run],
    judged: dict[str, dict[str, int]], query_text: dict[str, str], k: int,
) -> tuple[pa.Table, dict[str, Any]]:
    """The cascade's ``query_id``, ``item_id``, ``grade``, ``probs`` of the evaluated queries.

    Returns:
        The labels, and counts: from ``labels``, reused from earlier runs of this step, labelled
        now, failed, still missing (no cascade on the bus, or ``evaluate.label_unjudged`` off).
    """
    runs = list(runs)
    queries = pa.array(sorted(judged), pa.string())
    parts, stats = [], {"from_labels": 0, "reused": 0, "labelled_now": 0, "failed": 0, "missing": 0}
    if bus.is_committed("labels"):
        labels = bus.read_table("labels", columns=COLUMNS)
        labels = labels.filter(pc.is_in(labels.column("query_id"), value_set=queries))
        parts.append(labels)
        stats["from_labels"] = labels.num_rows
    extra = bus.read_table(EXTRA).select(COLUMNS) if bus.is_committed(EXTRA) else None
    if extra is not None:
        parts.append(extra)
        stats["reused"] = extra.num_rows
    have = set().union(*(_keys(p) for p in parts)) if parts else set()
    missing = sorted(unjudged_top(runs, judged, k) - have)
    if missing and config.evaluate.label_unjudged and bus.exists("calibrators/cascade.json"):
        new = _label_now(bus, config, scale, missing, query_text)
        stats["labelled_now"], stats["failed"] = new.num_rows, len(missing) - new.num_rows
        if new.num_rows:
            kept = new if extra is None else pa.concat_tables([extra, new.cast(extra.schema)])
            bus.write_table(EXTRA, kept, metadata={"note": "cascade labels of unjudged retrieved items (evaluate)"})
            parts.append(new)
        missing = sorted(set(missing) - _keys(new))
    stats["missing"] = len(missing)
    if not parts:
        empty = pa.table({"query_id": pa.array([], pa.string()), "item_id": pa.array([], pa.string()),
                          "grade": pa.array([], pa.int8()), "probs": pa.array([], pa.list_(pa.float32()))})
        return empty, stats
    table = pa.concat_tables([p.cast(parts[0].schema) for p in parts])
    seen: set[tuple[str, str]] = set()
    first = []
    for row, key in enumerate(zip(table.column("query_id").to_pylist(), table.column("item_id").to_pylist())):
        if key not in seen:
            seen.add(key)
            first.append(row)
    return table.take(pa.array(first, pa.int64())), stats


def _label_now(bus: DataBus, config: RelforgeConfig, scale: GradeScale, pairs: list[tuple[str, str]],
               query_text: dict[str, str]) -> pa.Table:
    """Label ``pairs`` with the calibrated cascade (failed pairs left out)."""
    from relforge.annotate import Cascade
    from relforge.calibrate import read_cascade
    from relforge.tiers import Pair

    field = config.finetune.item_field
    catalog = bus.read_table("catalog", columns=["item_id", field])
    texts = ["" if t is None else str(t) for t in catalog.column(field).to_pylist()]
    item_text = dict(zip(catalog.column("item_id").to_pylist(), texts))
    log_event(log, "labelling unjudged retrieved items with the cascade", pairs=len(pairs))
    cascade = Cascade(bus, config, read_cascade(bus), scale, catalog_texts=texts)
    try:
        out = cascade.label([Pair(query_text[q], item_text.get(i, "")) for q, i in pairs])
    finally:
        cascade.close()
    ok = np.flatnonzero(~out.failed)
    return pa.table({
        "query_id": pa.array([pairs[i][0] for i in ok], pa.string()),
        "item_id": pa.array([pairs[i][1] for i in ok], pa.string()),
        "grade": pa.array(out.grade[ok], pa.int8()),
        "probs": pa.array([p.tolist() for p in out.probs[ok]], pa.list_(pa.float32())),
    })
