"""Readers for Parquet, JSON Lines (or a JSON array) and CSV / TSV files, optionally gzipped.

Every problem is an :class:`~relforge.errors.InputError` naming the file, the row and the
field: text that is not valid in the given encoding, a line that is not a JSON object, a CSV
row with the wrong number of fields, a truncated or corrupt Parquet file.

Example:
    >>> src = read_file("queries.csv")                     # doctest: +SKIP
    >>> src.columns                                        # doctest: +SKIP
    ['query_id', 'query']
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import json
import re
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from relforge.errors import InputError
from relforge.ingest._source import Source

#: Bytes that the decoder could not read become these lone surrogates (PEP 383).
_UNDECODABLE = re.compile("[\udc80-\udcff]")
_FORMATS = {
    ".parquet": "parquet", ".pq": "parquet",
    ".jsonl": "jsonl", ".ndjson": "jsonl", ".json": "jsonl",
    ".csv": "csv", ".tsv": "tsv",
}


def file_format(path: str | Path) -> str:
    """``parquet``, ``jsonl``, ``csv`` or ``tsv``, from the file name (a ``.gz`` suffix is allowed)."""
    suffixes = [s.lower() for s in Path(path).suffixes]
    if suffixes and suffixes[-1] == ".gz":
        suffixes = suffixes[:-1]
    fmt = _FORMATS.get(suffixes[-1]) if suffixes else None
    if fmt is None:
        raise InputError(
            str(path), None, None,
            "unknown file type; use .parquet, .jsonl / .ndjson / .json or .csv / .tsv (optionally .gz)",
        )
    return fmt


def read_file(path: str | Path, encoding: str = "utf-8", name: str | None = None) -> Source:
    """Read a Parquet, JSON Lines or CSV file into a :class:`Source`.

    Args:
        path: the file; its format comes from its extension.
        encoding: the text encoding of CSV and JSON files (Parquet text is always UTF-8).
        name: the file name used in error messages (default: ``path`` as given).

    Returns:
        The file's columns and each row's number (CSV: data rows after the header;
        JSON Lines: line numbers; JSON array: element numbers), all 1-based.

    Raises:
        InputError: naming the file, row and field of the first problem.
    """
    label = name or str(path)
    fmt = file_format(path)
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        raise InputError(label, None, None, "no such file") from None
    except OSError as exc:
        raise InputError(label, None, None, f"cannot be read: {exc.strerror or exc}") from None
    if str(path).lower().endswith(".gz"):
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise InputError(label, None, None, f"not a valid gzip file: {exc}") from None
    if fmt == "parquet":
        return read_parquet_bytes(raw, label)
    text = decode(raw, encoding, label)
    if fmt == "jsonl":
        return read_json_text(text, label, encoding)
    return read_csv_text(text, label, encoding, delimiter="\t" if fmt == "tsv" else ",")


def read_parquet_bytes(raw: bytes, label: str) -> Source:
    """A Parquet file's columns; a truncated or corrupt file is an :class:`InputError`."""
    try:
        table = pq.read_table(pa.BufferReader(raw))
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise InputError(
            label, None, None, f"not a readable Parquet file (truncated or corrupt?): {exc}"
        ) from None
    return Source(label, table.replace_schema_metadata(None))


def decode(raw: bytes, encoding: str, label: str) -> str:
    """Decode ``raw``; bytes the encoding cannot read become lone surrogates, found later per row."""
    try:
        codecs.lookup(encoding)
    except LookupError:
        raise InputError(label, None, None, f"unknown encoding {encoding!r}") from None
    if codecs.lookup(encoding).name == "utf-8":
        encoding = "utf-8-sig"  # drop a byte-order mark
    try:
        return raw.decode(encoding, errors="surrogateescape")
    except UnicodeDecodeError as exc:  # encodings where surrogateescape cannot help (e.g. UTF-16)
        line = raw[: exc.start].count(b"\n") + 1
        raise InputError(
            label, None, None,
            f"not valid {encoding} text at line {line}, byte {exc.start}: {exc.reason}",
        ) from None


def _bad_text(label: str, row: int | None, field: str | None, value: str, encoding: str) -> InputError:
    match = _UNDECODABLE.search(value)
    byte = ord(match.group()) - 0xDC00 if match else None
    what = f"byte 0x{byte:02x} " if byte is not None else ""
    return InputError(
        label, row, field,
        f"{what}is not valid {encoding} text; pass the file's encoding, e.g. --encoding latin-1",
    )


def read_csv_text(text: str, label: str, encoding: str = "utf-8", delimiter: str = ",") -> Source:
    """CSV (or TSV) text with a header row into a :class:`Source` of string columns."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    check = bool(_UNDECODABLE.search(text))
    try:
        header = next(reader, None)
        if header is None:
            raise InputError(label, None, None, "is empty (no header row)")
        header = [h.strip() for h in header]
        for h in header:
            if check and _UNDECODABLE.search(h):
                raise _bad_text(label, None, h, h, encoding)
        seen: set[str] = set()
        for h in header:
            if not h:
                raise InputError(label, None, None, "the header has an empty column name")
            if h in seen:
                raise InputError(label, None, h, "column appears twice in the header")
            seen.add(h)
        columns: list[list[str]] = [[] for _ in header]
        row = 0
        for record in reader:
            if not record or (len(record) == 1 and not record[0].strip() and len(header) > 1):
                continue  # blank line
            row += 1
            if len(record) != len(header):
                raise InputError(
                    label, row, None,
                    f"has {len(record)} fields, the header has {len(header)}",
                )
            for j, value in enumerate(record):
                if check and _UNDECODABLE.search(value):
                    raise _bad_text(label, row, header[j], value, encoding)
                columns[j].append(value)
    except csv.Error as exc:
        raise InputError(label, reader.line_num or None, None, f"not valid CSV: {exc}") from None
    table = pa.table({h: pa.array(col, pa.string()) for h, col in zip(header, columns)})
    return Source(label, table)


def read_json_text(text: str, label: str, encoding: str = "utf-8") -> Source:
    """JSON Lines (one object a line), or one JSON array of objects, into a :class:`Source`."""
    stripped = text.lstrip()
    records: list[dict[str, Any]] = []
    rows: list[int] = []
    if stripped.startswith("["):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InputError(label, None, None, f"not valid JSON at line {exc.lineno}: {exc.msg}") from None
        for i, obj in enumerate(data, start=1):
            _add_record(obj, label, i, encoding, records, rows)
    else:
        for i, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                if _UNDECODABLE.search(line):
                    raise _bad_text(label, i, None, line, encoding) from None
                raise InputError(label, i, None, f"not valid JSON: {exc.msg} (column {exc.colno})") from None
            _add_record(obj, label, i, encoding, records, rows)
    return Source(label, _records_to_table(records), rows)


def _add_record(obj: Any, label: str, row: int, encoding: str, records: list, rows: list) -> None:
    if not isinstance(obj, dict):
        raise InputError(label, row, None, f"is a JSON {type(obj).__name__}, expected an object")
    for key, value in obj.items():
        if _UNDECODABLE.search(key):
            raise _bad_text(label, row, None, key, encoding)
        if _has_undecodable(value):
            raise _bad_text(label, row, key, json.dumps(value, ensure_ascii=False), encoding)
    records.append(obj)
    rows.append(row)


def _has_undecodable(value: Any) -> bool:
    if isinstance(value, str):
        return bool(_UNDECODABLE.search(value))
    if isinstance(value, list):
        return any(_has_undecodable(v) for v in value)
    if isinstance(value, dict):
        return any(_has_undecodable(k) or _has_undecodable(v) for k, v in value.items())
    return False


def _records_to_table(records: list[dict[str, Any]]) -> pa.Table:
    """Columns in first-seen key order; a column of mixed types becomes text."""
    names: dict[str, None] = {}
    for rec in records:
        for key in rec:
            names.setdefault(key, None)
    arrays = {}
    for name in names:
        values = [rec.get(name) for rec in records]
        arrays[name] = _to_array(values)
    return pa.table(arrays) if arrays else pa.table({})


def _to_array(values: list[Any]) -> pa.Array:
    try:
        return pa.array(values)
    except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError):
        pass
    if all(v is None or isinstance(v, list) for v in values):
        try:
            return pa.array(
                [None if v is None else [_as_str(x) for x in v] for v in values], pa.list_(pa.string())
            )
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError):
            pass
    return pa.array([None if v is None else _as_str(v) for v in values], pa.string())


def _as_str(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value) if isinstance(value, float) else str(value)
    return json.dumps(value, ensure_ascii=False)
