"""Property-based tests of the readers: what is written is read back; bad bytes are InputErrors."""

from __future__ import annotations

import csv
import io
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from relforge.errors import InputError
from relforge.grades import GradeScale
from relforge.ingest import GradeMapper, normalize_query, query_id_for, read_file
from relforge.ingest._readers import _as_str, read_csv_text, read_json_text, read_parquet_bytes

# Any text Python can encode as UTF-8 (no lone surrogates); NUL is excluded from CSV cells.
TEXT = st.text(st.characters(blacklist_categories=("Cs",)), max_size=30)
CSV_TEXT = st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=30)
NAMES = st.lists(
    st.text("abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=8), min_size=1, max_size=5, unique=True
)
SETTINGS = settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@st.composite
def csv_tables(draw):
    names = draw(NAMES)
    rows = draw(st.lists(st.tuples(*[CSV_TEXT for _ in names]), max_size=15))
    # a row whose only cell is blank reads as a blank line; such rows are skipped by design
    if len(names) == 1:
        rows = [r for r in rows if r[0].strip()]
    return names, rows


@SETTINGS
@given(table=csv_tables(), delimiter=st.sampled_from([",", "\t", ";"]))
def test_csv_round_trip(table, delimiter):
    names, rows = table
    buf = io.StringIO(newline="")
    writer = csv.writer(buf, delimiter=delimiter)
    writer.writerow(names)
    writer.writerows(rows)
    src = read_csv_text(buf.getvalue(), "t.csv", delimiter=delimiter)
    assert src.columns == names
    assert [tuple(r.values()) for r in src.table.to_pylist()] == [tuple(r) for r in rows]
    assert [src.row(i) for i in range(len(rows))] == list(range(1, len(rows) + 1))


JSON_VALUES = st.one_of(st.none(), TEXT, st.integers(-(2**53), 2**53), st.booleans(),
                        st.floats(allow_nan=False, allow_infinity=False))


@SETTINGS
@given(records=st.lists(st.fixed_dictionaries({"id": st.integers(0, 10**6), "v": JSON_VALUES}), max_size=15),
       blank_every=st.integers(0, 4))
def test_jsonl_round_trip_with_line_numbers(records, blank_every):
    lines, expected_rows = [], []
    for rec in records:
        if blank_every and len(lines) % (blank_every + 1) == blank_every:
            lines.append("")
        lines.append(json.dumps(rec))
        expected_rows.append(len(lines))
    src = read_json_text("\n".join(lines) + "\n", "t.jsonl")
    assert len(src) == len(records)
    assert [src.row(i) for i in range(len(records))] == expected_rows
    if records:
        ids = src.table.column("id").to_pylist()
        assert ids == [r["id"] for r in records]
        got = src.table.column("v").to_pylist()
        for g, r in zip(got, records):  # a column of mixed types comes back as text, never lost
            assert g == r["v"] or g == _as_str(r["v"])


@SETTINGS
@given(data=st.binary(max_size=300), fmt=st.sampled_from(["csv", "jsonl", "tsv", "parquet", "csv.gz"]),
       encoding=st.sampled_from(["utf-8", "latin-1", "cp1252"]))
def test_arbitrary_bytes_read_or_raise_input_error(tmp_path_factory, data, fmt, encoding):
    path = tmp_path_factory.mktemp("bytes") / f"f.{fmt}"
    path.write_bytes(data)
    try:
        src = read_file(path, encoding)
    except InputError as exc:
        assert exc.file == str(path)
        return
    assert isinstance(src.table, pa.Table)


@SETTINGS
@given(text=st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\u2603"),
                   min_size=1, max_size=40), cell=st.integers(0, 3))
def test_undecodable_byte_is_found_at_its_row_and_field(text, cell):
    clean = text.replace("\x00", "")
    rows = [["a", "b"], [clean, "x"], ["y", clean], ["z", "w"]]
    # put a lone 0xff byte (never valid UTF-8) inside one cell of data row 1 or 2
    target_row, target_col = cell // 2 + 1, cell % 2
    marker = "\u2603"  # a snowman, then replaced by the bad byte
    rows[target_row] = [v + marker if j == target_col else v for j, v in enumerate(rows[target_row])]
    buf = io.StringIO(newline="")
    csv.writer(buf).writerows(rows)
    raw = buf.getvalue().encode("utf-8").replace(marker.encode("utf-8"), b"\xff")
    with pytest.raises(InputError) as info:
        read_csv_text(raw.decode("utf-8", errors="surrogateescape"), "t.csv")
    assert (info.value.row, info.value.field) == (target_row, ["a", "b"][target_col])
    assert "byte 0xff" in str(info.value)


@settings(max_examples=40, deadline=None)
@given(rows=st.integers(1, 200), cut=st.floats(0.0, 0.999))
def test_truncated_parquet_is_an_input_error(rows, cut):
    buf = io.BytesIO()
    pq.write_table(pa.table({"x": list(range(rows)), "s": [str(i) for i in range(rows)]}), buf)
    raw = buf.getvalue()
    with pytest.raises(InputError, match="not a readable Parquet file"):
        read_parquet_bytes(raw[: int(len(raw) * cut)], "t.parquet")
    assert read_parquet_bytes(raw, "t.parquet").table.num_rows == rows


@settings(max_examples=100, deadline=None)
@given(
    bins=st.lists(st.floats(-100, 100), min_size=2, max_size=2, unique=True).map(sorted),
    score=st.floats(-1000, 1000),
)
def test_score_bins_are_monotone(bins, score):
    mapper = GradeMapper(GradeScale.from_names(["a", "b", "c"]), score_bins=bins)
    grade = mapper.grade_of(score)
    assert grade == sum(score >= b for b in bins)
    assert mapper.grade_of(score + 1) >= grade


@settings(max_examples=100, deadline=None)
@given(text=st.text(min_size=1, max_size=30))
def test_query_id_ignores_case_and_spacing(text):
    assert query_id_for(text) == query_id_for("  " + text.upper().replace(" ", "   ") + "\t")
    assert query_id_for(text).startswith("q") and len(query_id_for(text)) == 17
    assert normalize_query(normalize_query(text)) == normalize_query(text)


ITEM_TEXT = st.text(st.characters(blacklist_categories=("Cs", "Cc", "Zl", "Zp")), min_size=1, max_size=20).filter(
    lambda s: s.strip()
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(items=st.lists(st.tuples(ITEM_TEXT, ITEM_TEXT), min_size=1, max_size=8, unique_by=lambda t: t[0].strip()))
def test_same_catalog_from_every_format(tmp_path_factory, items):
    from relforge.config import IngestConfig
    from relforge.ingest._tables import build_catalog

    rows = [{"item_id": i, "title": t} for i, t in items]
    folder = tmp_path_factory.mktemp("formats")
    (folder / "c.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    pq.write_table(pa.Table.from_pylist(rows), folder / "c.parquet")
    with (folder / "c.csv").open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=["item_id", "title"])
        writer.writeheader()
        writer.writerows(rows)
    tables = [build_catalog(read_file(folder / name), IngestConfig()) for name in ("c.csv", "c.jsonl", "c.parquet")]
    assert tables[0].equals(tables[1]) and tables[1].equals(tables[2])
    assert tables[0].column("item_id").to_pylist() == [i.strip() for i, _ in items]
