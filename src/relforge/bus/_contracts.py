"""Table contracts (DESIGN.md "Table contracts"): required columns, their types and nullability.

A contract lists the columns a table must have; other columns are allowed (optional catalog
attributes, per-channel columns of ``candidates``) and kept as they are. Columns whose name
matches a pattern (``rank_*``) are checked against the pattern's type.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from relforge.errors import SchemaError


@dataclass(frozen=True)
class Column:
    name: str
    type: pa.DataType
    nullable: bool = False


@dataclass(frozen=True)
class Contract:
    """The columns a table must have, and the types of pattern-named optional columns."""

    name: str
    columns: tuple[Column, ...]
    patterns: tuple[Column, ...] = field(default_factory=tuple)
    optional: tuple[Column, ...] = field(default_factory=tuple)

    def required_names(self) -> list[str]:
        return [c.name for c in self.columns]

    def conform(self, table: pa.Table, where: str, partial: bool = False) -> pa.Table:
        """Check ``table`` against the contract and cast safe type differences.

        Required columns come first, in contract order; the rest keep their order. With
        ``partial`` (a read of some columns only), missing required columns are allowed and
        the columns present are checked.

        Raises:
            SchemaError: naming ``where``, the column and what is wrong.
        """
        missing = [c.name for c in self.columns if c.name not in table.column_names]
        if missing and not partial:
            raise SchemaError(f"{where}: table `{self.name}` lacks required column(s) {missing}")
        out_cols, out_names = [], []
        seen = set()
        specs = {c.name: c for c in (*self.columns, *self.optional)}
        ordered = [c.name for c in self.columns if c.name in table.column_names] + [
            n for n in table.column_names if n not in {c.name for c in self.columns}
        ]
        for name in ordered:
            if name in seen:
                raise SchemaError(f"{where}: column `{name}` appears twice")
            seen.add(name)
            spec = specs.get(name) or next(
                (p for p in self.patterns if fnmatch.fnmatchcase(name, p.name)), None
            )
            col = table.column(name)
            if spec is not None:
                col = _cast(col, spec, where, self.name)
            out_cols.append(col)
            out_names.append(name)
        return pa.Table.from_arrays(out_cols, names=out_names).replace_schema_metadata(
            table.schema.metadata
        )


def _cast(col: pa.ChunkedArray, spec: Column, where: str, table: str) -> pa.ChunkedArray:
    if not col.type.equals(spec.type):
        if pa.types.is_null(col.type) and spec.nullable:
            col = pa.nulls(len(col), spec.type)
            col = pa.chunked_array([col])
        else:
            try:
                col = col.cast(spec.type, safe=True)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise SchemaError(
                    f"{where}: column `{spec.name}` of `{table}` is {col.type}, "
                    f"expected {spec.type}: {exc}"
                ) from None
    if not spec.nullable and col.null_count:
        first = pc.index(pc.is_null(col), True).as_py()
        raise SchemaError(
            f"{where}: column `{spec.name}` of `{table}` has {col.null_count} null(s), "
            f"first at row {first + 1}"
        )
    return col


_S, _I8, _I32, _F32 = pa.string(), pa.int8(), pa.int32(), pa.float32()

CATALOG = Contract(
    "catalog",
    (Column("item_id", _S), Column("title", _S), Column("text", _S)),
)
QUERIES = Contract(
    "queries",
    (Column("query_id", _S), Column("query", _S), Column("split", _S)),
    optional=(Column("segment", _S, nullable=True),),
)
JUDGMENTS = Contract(
    "judgments",
    (Column("query_id", _S), Column("item_id", _S), Column("grade", _I8), Column("source", _S)),
)
CANDIDATES = Contract(
    "candidates",
    (
        Column("query_id", _S),
        Column("item_id", _S),
        Column("n_channels", _I8),
        Column("bucket", _S),
    ),
    patterns=(Column("rank_*", _I32, nullable=True), Column("score_*", _F32, nullable=True)),
)
LABELS = Contract(
    "labels",
    (
        Column("query_id", _S),
        Column("item_id", _S),
        Column("grade", _I8),
        Column("probs", pa.list_(_F32)),
        Column("confidence", _F32),
        Column("tier", _I8),
        Column("cost", _F32),
        Column("model", _S),
        Column("model_fingerprint", _S),
    ),
    optional=(
        Column("tier_name", _S),
        Column("accepted", pa.bool_()),
        Column("bucket", _S, nullable=True),
        Column("tokens", _I32),
    ),
)
#: Human answers to the review queue (``relforge ingest reviews``): kept apart from ``judgments``
#: so that fine-tuning never trains on them; ``calibrate`` uses them (never a test-split query's).
REVIEWS = Contract(
    "reviews",
    (Column("query_id", _S), Column("item_id", _S), Column("grade", _I8), Column("source", _S)),
    optional=(Column("annotator", _S, nullable=True),),
)
#: The pairs humans should judge next (``annotate``), in priority order.
REVIEW_QUEUE = Contract(
    "review_queue",
    (
        Column("query_id", _S),
        Column("item_id", _S),
        Column("grade", _I8),
        Column("confidence", _F32),
        Column("tier", _I8),
        Column("priority", pa.float64()),
        Column("bucket", _S),
    ),
)
CURRICULUM = Contract(
    "curriculum",
    (
        Column("query_id", _S),
        Column("item_id", _S),
        Column("grade", _I8),
        Column("level", _I8),
        Column("stage", _I8),
    ),
)
#: Ranked items per query from an exported retriever (``export-index``), what ``evaluate`` scores.
RETRIEVAL = Contract(
    "retrieval",
    (Column("query_id", _S), Column("item_id", _S), Column("rank", _I32), Column("score", _F32, nullable=True)),
)

#: Every query the cold-start generator wrote (``synthesize-queries``, in committed shards), one
#: row per (item, query number); ``error`` says why a generation failed (then ``query`` is empty).
GENERATED_QUERIES = Contract(
    "generated_queries",
    (Column("query_id", _S), Column("item_id", _S), Column("query", _S)),
    optional=(Column("error", _S, nullable=True), Column("category", _S, nullable=True), Column("cost", _F32)),
)
#: The generated queries with the filter that removed each (``removed_by`` null: kept; the kept
#: ones are the cold-start sub-run's ``queries``); ``rank_source`` is the source item's rank in
#: the round-trip channel's results (null where that filter was not reached, 0 where absent).
SYNTHETIC_QUERIES = Contract(
    "synthetic_queries",
    (Column("query_id", _S), Column("item_id", _S), Column("query", _S), Column("removed_by", _S, nullable=True)),
    optional=(Column("rank_source", _I32, nullable=True), Column("category", _S, nullable=True)),
)

CONTRACTS: dict[str, Contract] = {
    c.name: c
    for c in (CATALOG, QUERIES, JUDGMENTS, CANDIDATES, LABELS, REVIEWS, REVIEW_QUEUE, CURRICULUM, RETRIEVAL,
              GENERATED_QUERIES, SYNTHETIC_QUERIES)
}


def contract_for(name: str) -> Contract | None:
    """The contract of a table name (``None`` for free-form tables such as reports)."""
    return CONTRACTS.get(name)
