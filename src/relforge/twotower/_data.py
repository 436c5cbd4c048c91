"""The curriculum as training rows: query and item texts, grade, level and graded target.

Test-split queries never reach training: a curriculum row of a test query is an error here,
whatever made the table (the curriculum step leaves them out; this is the second lock).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from relforge.bus import DataBus
from relforge.config import RelforgeConfig
from relforge.errors import InputError
from relforge.grades import GradeScale

TABLE = "curriculum"


@dataclass
class TrainingRows:
    """Curriculum rows joined with their texts, in the table's order.

    Attributes:
        query_id, item_id: the pair's keys.
        query, text: the query text and the item text (``twotower.item_field``).
        grade, level: the curriculum's grade and level.
        target: the graded target (expected gain under the calibrated probabilities, or grade / top grade).
    """

    query_id: np.ndarray
    item_id: np.ndarray
    query: np.ndarray
    text: np.ndarray
    grade: np.ndarray
    level: np.ndarray
    target: np.ndarray

    def __len__(self) -> int:
        return len(self.grade)

    def subset(self, mask_or_index: np.ndarray) -> TrainingRows:
        idx = np.flatnonzero(mask_or_index) if mask_or_index.dtype == bool else mask_or_index
        return TrainingRows(*(getattr(self, f)[idx] for f in
                              ("query_id", "item_id", "query", "text", "grade", "level", "target")))


def graded_targets(grade: np.ndarray, probs: list | None, scale: GradeScale, kind: str) -> np.ndarray:
    """The target of the graded losses per row.

    ``expected-gain``: the scale's gains weighted by the calibrated probabilities (the gain of
    the grade where a row has none); ``grade``: ``grade / (n - 1)``.

    Example:
        >>> from relforge.grades import ESCI
        >>> graded_targets(np.array([3, 0]), [[0, 0, 0.5, 0.5], None], ESCI, "expected-gain").round(3).tolist()
        [0.55, 0.0]
    """
    if kind == "grade":
        return grade.astype(np.float32) / max(scale.n - 1, 1)
    gains = np.asarray(scale.gains, dtype=np.float64)
    out = gains[grade.astype(np.int64)].astype(np.float64)
    for i, p in enumerate(probs or []):
        if p is not None and len(p) == scale.n and np.isfinite(p).all() and sum(p) > 0:
            q = np.asarray(p, dtype=np.float64)
            out[i] = float(q @ gains / q.sum())
    return out.astype(np.float32)


def stage_levels(bus: DataBus, config: RelforgeConfig) -> dict[int, list[int]]:
    """Stage -> levels as the committed curriculum recorded them (else ``curriculum.stages``)."""
    if bus.is_committed(TABLE):
        recorded = bus.manifest(TABLE).metadata.get("stages")
        if recorded:
            return {int(k): list(v) for k, v in recorded.items()}
    return dict(config.curriculum.stages)


def load_training_rows(bus: DataBus, config: RelforgeConfig, scale: GradeScale) -> TrainingRows:
    """The committed ``curriculum`` with texts and targets.

    Raises:
        InputError: a row of a test-split query (naming the row), or an unknown query or item.
    """
    cfg = config.twotower
    table = bus.read_table(TABLE)
    where = bus.uri(TABLE)
    queries = bus.read_table("queries", columns=["query_id", "query", "split"]).to_pydict()
    split = dict(zip(queries["query_id"], queries["split"]))
    text_of_query = dict(zip(queries["query_id"], queries["query"]))
    catalog = bus.read_table("catalog", columns=["item_id", cfg.item_field])
    text_of_item = dict(zip(catalog.column("item_id").to_pylist(),
                            ("" if t is None else str(t) for t in catalog.column(cfg.item_field).to_pylist())))
    qids = table.column("query_id").to_pylist()
    iids = table.column("item_id").to_pylist()
    for row, (q, i) in enumerate(zip(qids, iids), start=1):
        if q not in split:
            raise InputError(where, row, "query_id", f"{q!r} is not in the queries table")
        if split[q] == "test":
            raise InputError(where, row, "query_id", f"{q!r} is a test-split query: test queries are never trained on")
        if i not in text_of_item:
            raise InputError(where, row, "item_id", f"{i!r} is not in the catalog")
    grade = table.column("grade").to_numpy().astype(np.int64)
    probs = table.column("probs").to_pylist() if "probs" in table.column_names else None
    return TrainingRows(
        query_id=np.asarray(qids, dtype=object), item_id=np.asarray(iids, dtype=object),
        query=np.asarray([text_of_query[q] for q in qids], dtype=object),
        text=np.asarray([text_of_item[i] for i in iids], dtype=object),
        grade=grade, level=table.column("level").to_numpy().astype(np.int64),
        target=graded_targets(grade, probs, scale, cfg.graded_target),
    )
