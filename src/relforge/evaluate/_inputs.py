"""The tables the metrics read: a run (ranked items per query), human judgments, model labels.

Each is checked and turned into plain Python structures; a problem is an
:class:`~relforge.errors.InputError` naming the table, the (1-based) row and the field.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from relforge.errors import InputError
from relforge.grades import GradeScale


@dataclass(frozen=True)
class Run:
    """Ranked item ids per query, best first (``ranking[q][0]`` is rank 1)."""

    ranking: dict[str, list[str]]

    def ir_measures_run(self, depth: int | None = None) -> dict[str, dict[str, float]]:
        """ir-measures' run layout, scores strictly decreasing with the rank (no ties)."""
        out = {}
        for q, items in self.ranking.items():
            items = items if depth is None else items[:depth]
            if items:
                out[q] = {item: float(len(items) - r) for r, item in enumerate(items)}
        return out


def _require(table: pa.Table, name: str, columns: Sequence[str]) -> None:
    for column in columns:
        if column not in table.column_names:
            raise InputError(name, None, column, f"no such column (columns: {table.column_names})")


def _strings(table: pa.Table, name: str, column: str) -> list[str]:
    values = table.column(column).to_pylist()
    for row, value in enumerate(values, start=1):
        if value is None or str(value) == "":
            raise InputError(name, row, column, "is empty")
    return [str(v) for v in values]


def read_run(run: pa.Table, name: str = "run") -> Run:
    """A run table (``query_id``, ``item_id`` and ``rank``, 1 = best, or ``score``, higher =
    better) as a :class:`Run`. Rows with equal scores keep their table order.

    Raises:
        InputError: a missing column, an empty id, a null rank or score, or an item listed
            twice for the same query.
    """
    _require(run, name, ("query_id", "item_id"))
    by = "rank" if "rank" in run.column_names else "score"
    _require(run, name, (by,))
    qids, items = _strings(run, name, "query_id"), _strings(run, name, "item_id")
    keys = run.column(by).to_pylist()
    for row, key in enumerate(keys, start=1):
        if key is None or (isinstance(key, float) and np.isnan(key)):
            raise InputError(name, row, by, "is null")
    grouped: dict[str, list[tuple[float, int, str]]] = {}
    seen: set[tuple[str, str]] = set()
    for row, (q, item, key) in enumerate(zip(qids, items, keys), start=1):
        if (q, item) in seen:
            raise InputError(name, row, "item_id", f"{item!r} is listed twice for query {q!r}")
        seen.add((q, item))
        grouped.setdefault(q, []).append((float(key) if by == "rank" else -float(key), row, item))
    return Run({q: [item for _, _, item in sorted(rows)] for q, rows in grouped.items()})


def read_grades(table: pa.Table, scale: GradeScale, name: str) -> dict[str, dict[str, int]]:
    """``query_id`` -> ``item_id`` -> grade, from a table with those three columns.

    Raises:
        InputError: a missing column, an empty id, a grade off ``scale``, a duplicate pair.
    """
    _require(table, name, ("query_id", "item_id", "grade"))
    qids, items = _strings(table, name, "query_id"), _strings(table, name, "item_id")
    out: dict[str, dict[str, int]] = {}
    for row, (q, item, grade) in enumerate(zip(qids, items, table.column("grade").to_pylist()), start=1):
        if grade is None or not 0 <= int(grade) < scale.n:
            raise InputError(name, row, "grade", f"{grade!r} is not a grade of the {scale.name} scale (0..{scale.n - 1})")
        if item in out.setdefault(q, {}):
            raise InputError(name, row, "item_id", f"{item!r} is judged twice for query {q!r}")
        out[q][item] = int(grade)
    return out


def read_model_gains(
    labels: pa.Table, scale: GradeScale, use_probs: bool = True, name: str = "model_labels"
) -> dict[str, dict[str, float]]:
    """``query_id`` -> ``item_id`` -> the model's gain: the expected gain under the
    calibrated ``probs`` when the table has them (and ``use_probs``), else the gain of the
    predicted ``grade``.

    Raises:
        InputError: as :func:`read_grades`, or a ``probs`` list of the wrong length.
    """
    grades = read_grades(labels, scale, name)
    if not (use_probs and "probs" in labels.column_names):
        return {q: {i: float(scale.gains[g]) for i, g in items.items()} for q, items in grades.items()}
    gains = np.asarray(scale.gains, dtype=np.float64)
    out: dict[str, dict[str, float]] = {}
    rows = zip(labels.column("query_id").to_pylist(), labels.column("item_id").to_pylist(),
               labels.column("probs").to_pylist())
    for row, (q, item, probs) in enumerate(rows, start=1):
        if probs is None or len(probs) != scale.n:
            raise InputError(name, row, "probs", f"expected {scale.n} probabilities, got {probs!r}")
        p = np.asarray(probs, dtype=np.float64)
        out.setdefault(str(q), {})[str(item)] = float(p @ gains / p.sum())
    return out


def query_segments(queries: pa.Table, name: str = "queries") -> dict[str, str]:
    """``query_id`` -> ``segment`` (``"none"`` where the segment is null); empty when the
    table has no ``segment`` column."""
    _require(queries, name, ("query_id",))
    if "segment" not in queries.column_names:
        return {}
    qids = _strings(queries, name, "query_id")
    return {q: ("none" if s is None or s == "" else str(s)) for q, s in zip(qids, queries.column("segment").to_pylist())}
