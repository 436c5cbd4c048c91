"""Human answers to the review queue, back into the run: ``relforge ingest reviews --file F --run R``.

Accepted files:

- a **Label Studio** JSON export (``.json``: a list of tasks, each with ``data`` holding
  ``query_id`` and ``item_id``, as ``annotate`` exported them, and ``annotations``): the last
  annotation that was not cancelled and has a ``choices`` answer gives the grade (a grade name);
  tasks nobody annotated are skipped;
- **CSV**, **JSON Lines** (or Parquet) with ``query_id``, ``item_id`` and ``grade`` (a grade
  name or an integer; a blank grade is a pair not judged yet and is skipped), optionally
  ``annotator``: ``annotate``'s ``review/review.csv`` and ``review.jsonl`` once filled in.

Every pair must name a known query and item, and its grade must be on the run's grade scale;
the first problem is an :class:`~relforge.errors.InputError` naming the file, the row and the
field, and nothing is written. The answers go to the ``reviews`` table (``source`` =
``review``), merged with the earlier ones (a pair answered again takes the new answer). They
are kept apart from ``judgments``, so fine-tuning never trains on them; ``calibrate`` adds them
to its calibration pairs (never those of test-split queries: their human grades are for
evaluation only).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa

from relforge.bus import DataBus
from relforge.errors import InputError
from relforge.grades import GRADE_SCALE_KEY, GradeScale, read_grade_scale
from relforge.ingest._commit import sha256_file
from relforge.ingest._grades import GradeMapper
from relforge.ingest._readers import read_file
from relforge.logs import get_logger, log_event

REVIEWS = "reviews"
log = get_logger("ingest.reviews")


def _label_studio_rows(path: Path, label: str) -> list[tuple[int, str, str, object, str | None]] | None:
    """``(row, query_id, item_id, grade value, annotator)`` of a Label Studio export, or ``None`` if not one."""
    if path.suffix.lower() != ".json":
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None
    if not isinstance(data, list) or not data or not isinstance(data[0], dict) or "annotations" not in data[0]:
        return None
    rows = []
    for n, task in enumerate(data, start=1):
        fields: dict[str, Any] = task.get("data") or {}
        for key in ("query_id", "item_id"):
            if not fields.get(key):
                raise InputError(label, n, f"data.{key}", "missing: export the tasks relforge wrote (review/label-studio.json)")
        answer, annotator = None, None
        for annotation in task.get("annotations") or []:
            if annotation.get("was_cancelled"):
                continue
            for result in annotation.get("result") or []:
                choices = (result.get("value") or {}).get("choices") if result.get("type") == "choices" else None
                if choices:
                    answer = choices[0]
                    who = annotation.get("completed_by")
                    annotator = str(who.get("email", who.get("id"))) if isinstance(who, dict) else (
                        None if who is None else str(who))
        if answer is not None:
            rows.append((n, str(fields["query_id"]), str(fields["item_id"]), answer, annotator))
    return rows


def _table_rows(path: Path, label: str, encoding: str) -> list[tuple[int, str, str, object, str | None]]:
    src = read_file(path, encoding, name=label)
    src.require("query_id", "item_id", "grade")
    cols = src.table.to_pydict()
    annotators = cols.get("annotator") or [None] * len(src)
    rows = []
    for i, (q, item, grade, who) in enumerate(zip(cols["query_id"], cols["item_id"], cols["grade"], annotators)):
        if grade is None or (isinstance(grade, str) and not grade.strip()):
            continue  # not judged yet
        if q in (None, "") or item in (None, ""):
            raise src.fail(i, "query_id" if q in (None, "") else "item_id", "is empty")
        rows.append((src.row(i), str(q), str(item), grade, None if who in (None, "") else str(who)))
    return rows


def read_reviews(path: str | Path, scale: GradeScale, known_queries: set[str], known_items: set[str],
                 encoding: str = "utf-8", name: str | None = None) -> pa.Table:
    """The reviews in ``path`` as a ``reviews`` table (see the module docstring).

    Raises:
        InputError: an unknown file type, query or item, a grade off the scale, a duplicate pair.
    """
    path = Path(path)
    label = name or str(path)
    if not path.is_file():
        raise InputError(label, None, None, "no such file")
    rows = _label_studio_rows(path, label)
    if rows is None:
        rows = _table_rows(path, label, encoding)
    mapper = GradeMapper(scale)
    seen: dict[tuple[str, str], int] = {}
    out: dict[str, list] = {"query_id": [], "item_id": [], "grade": [], "source": [], "annotator": []}
    for row, q, item, value, who in rows:
        if q not in known_queries:
            raise InputError(label, row, "query_id", f"unknown query {q!r}: not in the run's queries")
        if item not in known_items:
            raise InputError(label, row, "item_id", f"unknown item {item!r}: not in the run's catalog")
        try:
            grade = mapper.grade_of(value)
        except ValueError as exc:
            raise InputError(label, row, "grade", str(exc)) from None
        first = seen.setdefault((q, item), row)
        if first != row:
            raise InputError(label, row, "item_id", f"duplicate review of item {item!r} for query {q!r} (first at row {first})")
        for key, value_ in zip(out, (q, item, grade, "review", who)):
            out[key].append(value_)
    return pa.table({
        "query_id": pa.array(out["query_id"], pa.string()), "item_id": pa.array(out["item_id"], pa.string()),
        "grade": pa.array(out["grade"], pa.int8()), "source": pa.array(out["source"], pa.string()),
        "annotator": pa.array(out["annotator"], pa.string()),
    })


def ingest_reviews(bus: DataBus, path: str | Path, encoding: str = "utf-8") -> dict[str, Any]:
    """Validate the reviews in ``path`` and merge them into the run's ``reviews`` table.

    Returns:
        ``{"read", "new", "updated", "rows", "splits"}``: pairs read, pairs not reviewed before,
        pairs whose earlier answer was replaced, the table's rows after the merge, and the
        reviewed pairs per query split (those of the test split are kept, and never used by
        calibration).
    """
    scale = read_grade_scale(bus)
    queries = bus.read_table("queries", columns=["query_id", "split"]).to_pydict()
    split_of = dict(zip(queries["query_id"], queries["split"]))
    items = set(bus.read_table("catalog", columns=["item_id"]).column("item_id").to_pylist())
    new = read_reviews(path, scale, set(split_of), items, encoding)
    keys = list(zip(new.column("query_id").to_pylist(), new.column("item_id").to_pylist()))
    fresh = set(keys)
    updated = 0
    inputs = {"file": sha256_file(path)[:16]}
    if bus.is_committed(REVIEWS):
        old = bus.read_table(REVIEWS)
        old_keys = list(zip(old.column("query_id").to_pylist(), old.column("item_id").to_pylist()))
        keep = [i for i, k in enumerate(old_keys) if k not in fresh]
        updated = len(old_keys) - len(keep)
        inputs["previous"] = bus.manifest(REVIEWS).digest()
        old = old.take(pa.array(keep, pa.int64())).select(new.column_names).cast(new.schema)
        new_table = pa.concat_tables([old, new])
    else:
        new_table = new
    bus.write_table(REVIEWS, new_table, metadata={GRADE_SCALE_KEY: scale.model_dump()}, inputs=inputs)
    splits: dict[str, int] = {}
    for q, _ in keys:
        splits[split_of[q]] = splits.get(split_of[q], 0) + 1
    if splits.get("test"):
        log_event(log, f"{splits['test']} review(s) of test-split queries: kept, never used by calibrate", level=30)
    return {"read": len(keys), "new": len(keys) - updated, "updated": updated, "rows": new_table.num_rows,
            "splits": splits}
