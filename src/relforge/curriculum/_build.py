"""The ``curriculum`` table: the labelled candidates (or the human judgments) of the training
queries, each with its level, stage and the rule that placed it."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from relforge.bus import DataBus
from relforge.config import RelforgeConfig
from relforge.curriculum._rules import assign_levels, rule_names, stages_of
from relforge.errors import InputError
from relforge.grades import GradeScale

#: The bucket of a human-judged pair that no mining channel retrieved.
UNMINED = "unmined"


def training_queries(bus: DataBus, splits: list[str]) -> tuple[set[str], set[str]]:
    """``(query ids in splits, test-split query ids)`` from the ``queries`` table."""
    queries = bus.read_table("queries", columns=["query_id", "split"]).to_pydict()
    chosen = {q for q, s in zip(queries["query_id"], queries["split"]) if s in splits and s != "test"}
    test = {q for q, s in zip(queries["query_id"], queries["split"]) if s == "test"}
    return chosen, test


def _keep_queries(table: pa.Table, queries: set[str]) -> pa.Table:
    return table.filter(pc.is_in(table.column("query_id"), value_set=pa.array(sorted(queries), pa.string())))


def _with_buckets(bus: DataBus, rows: pa.Table) -> pa.Table:
    """``rows`` with the mining ``bucket`` of each pair (``unmined`` where no channel found it)."""
    bucket = pa.nulls(rows.num_rows, pa.string())
    if bus.is_committed("candidates"):
        candidates = bus.read_table("candidates", columns=["query_id", "item_id", "bucket"])
        keys = rows.select(["query_id", "item_id"]).append_column("_row", pa.array(np.arange(rows.num_rows)))
        joined = keys.join(candidates, keys=["query_id", "item_id"], join_type="left outer")
        order = np.argsort(joined.column("_row").to_numpy())  # acero does not keep the row order
        bucket = joined.column("bucket").take(pa.array(order))
    if "bucket" in rows.column_names:
        rows = rows.drop_columns(["bucket"])
    rows = rows.append_column("bucket", bucket)
    return rows.set_column(rows.schema.get_field_index("bucket"), "bucket",
                           pc.fill_null(rows.column("bucket"), UNMINED))


def source_rows(bus: DataBus, config: RelforgeConfig, scale: GradeScale) -> tuple[pa.Table, str]:
    """The labelled pairs of the training queries: ``query_id``, ``item_id``, ``grade``, ``probs``,
    ``confidence``, ``bucket``; and the source's name (``cascade`` or ``human``).

    Raises:
        InputError: no labelled pair for the chosen splits.
    """
    cfg = config.curriculum
    chosen, _ = training_queries(bus, cfg.splits)
    if cfg.source == "labels":
        labels = bus.read_table("labels", columns=["query_id", "item_id", "grade", "probs", "confidence"])
        rows, source, where = _keep_queries(labels, chosen), "cascade", bus.uri("labels")
    else:
        judged = bus.read_table("judgments", columns=["query_id", "item_id", "grade"])
        rows, source, where = _keep_queries(judged, chosen), "human", bus.uri("judgments")
        grades = rows.column("grade").to_numpy().astype(np.int64)
        onehot = np.eye(scale.n, dtype=np.float32)[grades] if len(grades) else np.zeros((0, scale.n), np.float32)
        rows = rows.append_column("probs", pa.array(list(onehot), pa.list_(pa.float32())))
        rows = rows.append_column("confidence", pa.array(np.ones(rows.num_rows, np.float32)))
    if rows.num_rows == 0:
        raise InputError(where, None, "query_id", f"no labelled pair of a query in splits {cfg.splits}")
    rows = _with_buckets(bus, rows)
    return rows.sort_by([("query_id", "ascending"), ("item_id", "ascending")]), source


def build_curriculum(bus: DataBus, config: RelforgeConfig, scale: GradeScale) -> pa.Table:
    """The ``curriculum`` table (contract columns first, then ``probs``, ``confidence``,
    ``bucket``, ``rule`` and ``source``), ordered by query and item; rows no rule placed and
    without a default level are left out.

    Raises:
        InputError: a test-split query among the rows (never trained on), or no labelled pair.
    """
    cfg = config.curriculum
    rows, source = source_rows(bus, config, scale)
    _, test = training_queries(bus, cfg.splits)
    leaked = set(rows.column("query_id").to_pylist()) & test
    if leaked:
        raise InputError(bus.uri("queries"), None, "split",
                         f"{len(leaked)} test-split quer(ies) among the training pairs, e.g. {min(leaked)!r}")
    bucket = np.asarray(rows.column("bucket").to_pylist(), dtype=object)
    grade = rows.column("grade").to_numpy().astype(np.int64)
    confidence = rows.column("confidence").to_numpy(zero_copy_only=False).astype(np.float64)
    level, rule_of = assign_levels(bucket, grade, confidence, cfg.rules, cfg.default_level, scale.n)
    stage = stages_of(level, cfg.stages)
    keep = (level > 0) & (stage > 0)
    idx = pa.array(np.flatnonzero(keep))
    names = rule_names(cfg.rules, rule_of[keep])
    return pa.table({
        "query_id": rows.column("query_id").take(idx),
        "item_id": rows.column("item_id").take(idx),
        "grade": pa.array(grade[keep], pa.int8()),
        "level": pa.array(level[keep], pa.int8()),
        "stage": pa.array(stage[keep], pa.int8()),
        "probs": rows.column("probs").take(idx).cast(pa.list_(pa.float32())),
        "confidence": pa.array(confidence[keep], pa.float32()),
        "bucket": rows.column("bucket").take(idx),
        "rule": pa.array(names, pa.string()),
        "source": pa.array([source] * len(names), pa.string()),
    })
