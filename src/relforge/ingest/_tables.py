"""Validated ``catalog``, ``queries`` and ``judgments`` tables from the sources read.

Everything is checked here, before any table is written: missing columns, empty ids, titles
and queries, duplicate ids and pairs, grades off the scale, judgments that point to an
unknown item or query. The first problem is raised as an :class:`InputError` naming the
file, the row and the field.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from relforge.config import IngestConfig, SplitConfig
from relforge.ingest._grades import GradeMapper
from relforge.ingest._source import Source
from relforge.ingest._split import normalize_query, query_id_for, split_queries

#: Separator between the catalog fields joined into ``text``.
TEXT_SEPARATOR = " | "


@dataclass
class IngestedTables:
    """The three tables of an ingest, validated and ready to write."""

    catalog: pa.Table
    queries: pa.Table
    judgments: pa.Table

    def as_dict(self) -> dict[str, pa.Table]:
        return {"catalog": self.catalog, "queries": self.queries, "judgments": self.judgments}


def _clean(col: pa.ChunkedArray) -> pa.ChunkedArray:
    """Whitespace trimmed; empty strings become null."""
    trimmed = pc.utf8_trim_whitespace(col)
    return pc.if_else(pc.equal(trimmed, ""), pa.scalar(None, pa.string()), trimmed)


def _require_text(src: Source, field: str, what: str) -> pa.ChunkedArray:
    """Column ``field`` as trimmed text; a null or blank value is an error at its row."""
    col = _clean(src.text(field))
    bad = src.first(pc.is_null(col))
    if bad is not None:
        raise src.fail(bad, field, f"{what} is empty")
    return col


def _require_unique(src: Source, values: list[str], field: str, what: str) -> None:
    seen: dict[str, int] = {}
    for i, value in enumerate(values):
        first = seen.setdefault(value, i)
        if first != i:
            raise src.fail(i, field, f"duplicate {what} {value!r} (first at row {src.row(first)})")


def build_catalog(src: Source, config: IngestConfig) -> pa.Table:
    """The ``catalog`` table: item_id, title, text, and the other text fields as optional columns.

    ``text`` is the input's own ``text`` column where it has one and the row's value is not
    blank; otherwise the ``config.text_fields`` the file has, joined with `` | ``. Whitespace
    runs become one space and ``text`` is cut to ``config.max_text_chars``.
    """
    src.require("item_id", "title")
    item_ids = _require_text(src, "item_id", "item id")
    titles = _require_text(src, "title", "title")
    _require_unique(src, item_ids.to_pylist(), "item_id", "item id")
    attributes: dict[str, pa.ChunkedArray] = {}
    for field in config.text_fields:
        if field not in ("title", "item_id", "text") and src.has(field):
            attributes[field] = _clean(src.text(field))
    fields = [titles if f == "title" else attributes.get(f) for f in config.text_fields]
    parts = [f.to_pylist() for f in fields if f is not None] or [titles.to_pylist()]
    own_text = _clean(src.text("text")).to_pylist() if src.has("text") else [None] * len(src)
    limit = config.max_text_chars
    texts = []
    for i, own in enumerate(own_text):
        joined = own or TEXT_SEPARATOR.join(p[i] for p in parts if p[i])
        texts.append(" ".join(joined.split())[:limit])
    columns = {"item_id": item_ids, "title": titles, "text": pa.array(texts, pa.string())}
    columns.update(attributes)
    return pa.table(columns)


def build_queries(src: Source) -> tuple[pa.Table, dict[str, str]]:
    """The ``queries`` table without its split, and a map from normalised query text to id.

    ``query_id`` is the file's own where it has one, else :func:`query_id_for` the text.
    Two rows with the same id (or, without ids, the same normalised text) are an error.
    """
    src.require("query")
    queries = _require_text(src, "query", "query")
    texts = queries.to_pylist()
    if src.has("query_id"):
        ids = _require_text(src, "query_id", "query id").to_pylist()
        _require_unique(src, ids, "query_id", "query id")
    else:
        ids = [query_id_for(t) for t in texts]
        _require_unique(src, ids, "query", "query (after normalising case and spaces)")
    by_text: dict[str, str] = {}
    for qid, text in zip(ids, texts):
        key = normalize_query(text)
        by_text[key] = qid if by_text.get(key, qid) == qid else ""  # "" = ambiguous
    columns: dict[str, pa.Array | pa.ChunkedArray] = {
        "query_id": pa.array(ids, pa.string()),
        "query": queries,
    }
    if src.has("segment"):
        columns["segment"] = _clean(src.text("segment"))
    return pa.table(columns), by_text


def build_judgments(
    src: Source,
    mapper: GradeMapper,
    item_ids: set[str],
    query_ids: set[str],
    query_by_text: dict[str, str],
    catalog_file: str,
    queries_file: str,
) -> pa.Table:
    """The ``judgments`` table: query_id, item_id, grade int8, source ``human``.

    A judgment names its query by ``query_id`` or, where the file has no such column, by the
    query text (matched after normalising case and spaces).
    """
    if not src.has("query_id") and src.has("query"):
        src.require("item_id", "grade")
        texts = _require_text(src, "query", "query").to_pylist()
        qids = []
        for i, text in enumerate(texts):
            qid = query_by_text.get(normalize_query(text))
            if qid is None:
                raise src.fail(i, "query", f"unknown query {text!r}: not in {queries_file}")
            if qid == "":
                raise src.fail(
                    i, "query", f"query {text!r} matches several query ids in {queries_file}; "
                    "give judgments a query_id column",
                )
            qids.append(qid)
    else:
        src.require("query_id", "item_id", "grade")
        qids = _require_text(src, "query_id", "query id").to_pylist()
        for i, qid in enumerate(qids):
            if qid not in query_ids:
                raise src.fail(i, "query_id", f"unknown query {qid!r}: not in {queries_file}")
    items = _require_text(src, "item_id", "item id").to_pylist()
    for i, item in enumerate(items):
        if item not in item_ids:
            raise src.fail(i, "item_id", f"unknown item {item!r}: not in {catalog_file}")
    grades = mapper.grades(src, "grade")
    seen: dict[tuple[str, str], int] = {}
    for i, pair in enumerate(zip(qids, items)):
        first = seen.setdefault(pair, i)
        if first != i:
            raise src.fail(
                i, "item_id",
                f"duplicate judgment of item {pair[1]!r} for query {pair[0]!r} (first at row {src.row(first)})",
            )
    return pa.table({
        "query_id": pa.array(qids, pa.string()),
        "item_id": pa.array(items, pa.string()),
        "grade": grades,
        "source": pa.array(["human"] * len(items), pa.string()),
    })


def empty_judgments() -> pa.Table:
    return pa.table({
        "query_id": pa.array([], pa.string()), "item_id": pa.array([], pa.string()),
        "grade": pa.array([], pa.int8()), "source": pa.array([], pa.string()),
    })


def build_tables(
    catalog: Source,
    queries: Source,
    judgments: Source | None,
    mapper: GradeMapper,
    ingest: IngestConfig,
    split: SplitConfig,
) -> IngestedTables:
    """Validate the three sources and build the tables, the split included.

    Raises:
        InputError: at the first problem, naming the file, the row and the field.
    """
    catalog_table = build_catalog(catalog, ingest)
    queries_table, by_text = build_queries(queries)
    query_ids = queries_table.column("query_id").to_pylist()
    if judgments is None:
        judgments_table = empty_judgments()
    else:
        judgments_table = build_judgments(
            judgments, mapper,
            set(catalog_table.column("item_id").to_pylist()), set(query_ids), by_text,
            catalog.file, queries.file,
        )
    splits = split_queries(query_ids, set(judgments_table.column("query_id").to_pylist()), split)
    split_col = pa.array([splits[q] for q in query_ids], pa.string())
    queries_table = queries_table.add_column(2, "split", split_col)
    return IngestedTables(catalog_table, queries_table, judgments_table)
