"""Rows read from one input file, with each row's number in that file for error messages."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from relforge.errors import InputError

#: Lists in these fields are breadcrumbs (``Home > Kitchen > Towels``); other lists are joined with ", ".
BREADCRUMB_FIELDS = frozenset({"category", "categories", "category_path"})


@dataclass
class Source:
    """The columns read from one file, as Arrow, and where each row came from.

    Args:
        file: the name shown in error messages (usually the path as the user gave it).
        table: the columns as read (types as the file format gives them).
        rows: the 1-based row number of each table row in the file; ``None`` means
            ``index + 1`` (a CSV data row, a JSON Lines line).
        origin: the file's own name of a renamed column (``{"item_id": "asin"}``), so that
            errors name the field as the file spells it.

    Example:
        >>> src = Source("q.csv", pa.table({"query": ["a", " "]}))
        >>> src.row(1)
        2
    """

    file: str
    table: pa.Table
    rows: list[int] | None = None
    origin: dict[str, str] = dataclasses.field(default_factory=dict)

    def __len__(self) -> int:
        return self.table.num_rows

    @property
    def columns(self) -> list[str]:
        return self.table.column_names

    def row(self, index: int) -> int:
        """The row number in the file of table row ``index`` (0-based)."""
        return self.rows[index] if self.rows is not None else index + 1

    def has(self, field: str) -> bool:
        return field in self.table.column_names

    def require(self, *fields: str) -> None:
        """Raise naming the first missing column and the columns the file has."""
        for field in fields:
            if field not in self.table.column_names:
                present = ", ".join(self.table.column_names) or "none"
                raise InputError(
                    self.file, None, field,
                    f"missing column (columns present: {present}; "
                    f"map one with --map {field}=COLUMN)",
                )

    def renamed(self, mapping: dict[str, str]) -> Source:
        """A copy with columns renamed ``target <- source`` for each ``target: source`` present.

        A mapped column replaces a column that already has the target name.
        """
        applied = {t: s for t, s in mapping.items() if s in self.table.column_names and t != s}
        if not applied:
            return self
        names, arrays = [], []
        for name, col in zip(self.table.column_names, self.table.columns):
            if name not in applied:  # a mapped column replaces one with the target's name
                names.append(name)
                arrays.append(col)
        for target, source in applied.items():
            names.append(target)
            arrays.append(self.table.column(source))
        origin = {**self.origin, **{t: self.origin.get(s, s) for t, s in applied.items()}}
        return Source(self.file, pa.Table.from_arrays(arrays, names=names), self.rows, origin)

    def text(self, field: str) -> pa.ChunkedArray:
        """Column ``field`` as strings (numbers and booleans converted, lists joined)."""
        return as_text(self.table.column(field), self, field)

    def first(self, mask: pa.ChunkedArray | pa.Array) -> int | None:
        """The 0-based index of the first true value of ``mask``, or ``None``."""
        mask = pc.fill_null(mask, False)
        index = pc.index(mask, True).as_py()
        return None if index < 0 else index

    def fail(self, index: int | None, column: str | None, message: str) -> InputError:
        """An :class:`InputError` for table row ``index`` (0-based) and ``column`` of this file."""
        name = self.origin.get(column, column) if column is not None else None
        return InputError(self.file, None if index is None else self.row(index), name, message)


def as_text(col: pa.ChunkedArray, src: Source, field: str) -> pa.ChunkedArray:
    """Any scalar or list column as a string column; nested records are an error."""
    typ = col.type
    if pa.types.is_string(typ):
        return col
    if pa.types.is_large_string(typ) or pa.types.is_string_view(typ):
        return col.cast(pa.string())
    if pa.types.is_null(typ):
        return pa.chunked_array([pa.nulls(len(col), pa.string())])
    if pa.types.is_binary(typ) or pa.types.is_large_binary(typ):
        try:
            return col.cast(pa.string())
        except pa.ArrowInvalid:
            for i, value in enumerate(col.to_pylist()):
                if value is not None:
                    try:
                        value.decode("utf-8")
                    except UnicodeDecodeError as exc:
                        raise src.fail(i, field, f"not valid UTF-8 text ({exc.reason})") from None
            raise
    if pa.types.is_list(typ) or pa.types.is_large_list(typ):
        sep = " > " if field.lower() in BREADCRUMB_FIELDS else ", "
        if not is_scalar(typ.value_type):
            raise src.fail(None, field, f"is a list of {typ.value_type}; expected text")
        as_str = col.cast(pa.list_(pa.string())) if not pa.types.is_string(typ.value_type) else col
        return pc.binary_join(as_str, sep)
    if is_scalar(typ):
        return col.cast(pa.string())
    raise src.fail(None, field, f"is a nested {typ}; expected text (map a text column instead)")


def is_scalar(typ: pa.DataType) -> bool:
    return (
        pa.types.is_string(typ) or pa.types.is_large_string(typ) or pa.types.is_integer(typ)
        or pa.types.is_floating(typ) or pa.types.is_boolean(typ) or pa.types.is_decimal(typ)
        or pa.types.is_null(typ)
    )
