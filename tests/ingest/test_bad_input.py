"""Bad input: one clear InputError naming file, row and field, and nothing committed.

Each case first commits a good ingest at the same URI, then breaks one file: the error must
name the file, the row and the field, and the committed tables must stay exactly as they were.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest

from relforge.bus import DataBus
from relforge.errors import InputError
from relforge.ingest import ingest_files
from tests.ingest.conftest import (
    CATALOG,
    GRADES,
    JUDGMENTS,
    QUERIES,
    TINY_MAPPING,
    write_csv,
    write_jsonl,
    write_parquet,
)


def _catalog(files, rows):
    write_csv(files["catalog"], rows)


def _queries(files, rows):
    write_jsonl(files["queries"], rows)


def _judgments(files, rows):
    write_parquet(files["judgments"], rows)


def _not_utf8(files, _):
    raw = files["catalog"].read_bytes().replace(b"Trail shoes", "Trail chaussures \xe9t\xe9".encode("latin-1"))
    files["catalog"].write_bytes(raw)


def _truncated(files, _):
    raw = files["judgments"].read_bytes()
    files["judgments"].write_bytes(raw[: len(raw) - 40])


def _not_json(files, _):
    files["queries"].write_text('{"query": "a"}\n{"query": "b"\n', encoding="utf-8")


def _ragged_csv(files, _):
    files["catalog"].write_text("sku,name\nA1,Shoes\nA2,Jacket,extra\n", encoding="utf-8")


def _replace(rows, i, **changes):
    out = [dict(r) for r in rows]
    out[i].update(changes)
    return out


CASES = {
    # name: (how to break the files, (file, row, field), words the message must hold)
    "missing column": (
        lambda f: _catalog(f, [{k: v for k, v in r.items() if k != "name"} for r in CATALOG]),
        ("catalog.csv", None, "name"), "missing column (mapped to title by --map title=name",
    ),
    "missing column without mapping": (
        lambda f: _judgments(f, [{k: v for k, v in r.items() if k != "label"} for r in JUDGMENTS]),
        ("judgments.parquet", None, "label"), "missing column (mapped to grade",
    ),
    "duplicate item id": (
        lambda f: _catalog(f, _replace(CATALOG, 2, sku="A1")),
        ("catalog.csv", 3, "sku"), "duplicate item id 'A1' (first at row 1)",
    ),
    "duplicate query": (
        lambda f: _queries(f, QUERIES + [{"query": "Running  SHOES"}]),
        ("queries.jsonl", 5, "query"), "duplicate query",
    ),
    "duplicate judgment": (
        lambda f: _judgments(f, JUDGMENTS + [{"query": "socks", "sku": "A4", "label": "exact"}]),
        ("judgments.parquet", 6, "sku"), "duplicate judgment of item 'A4'",
    ),
    "grade off the scale (number)": (
        lambda f: _judgments(f, _replace(JUDGMENTS, 3, label="3")),
        ("judgments.parquet", 4, "label"), "grade 3 is outside the scale 0..2",
    ),
    "grade off the scale (name)": (
        lambda f: _judgments(f, _replace(JUDGMENTS, 1, label="perfect")),
        ("judgments.parquet", 2, "label"), "'perfect' is not on the grade scale",
    ),
    "empty grade": (
        lambda f: _judgments(f, _replace(JUDGMENTS, 4, label=None)),
        ("judgments.parquet", 5, "label"), "is empty",
    ),
    "empty query": (
        lambda f: _queries(f, _replace(QUERIES, 2, query="   ")),
        ("queries.jsonl", 3, "query"), "query is empty",
    ),
    "empty title": (
        lambda f: _catalog(f, _replace(CATALOG, 3, name="")),
        ("catalog.csv", 4, "name"), "title is empty",
    ),
    "unknown item": (
        lambda f: _judgments(f, _replace(JUDGMENTS, 2, sku="ZZ9")),
        ("judgments.parquet", 3, "sku"), "unknown item 'ZZ9': not in",
    ),
    "unknown query": (
        lambda f: _judgments(f, _replace(JUDGMENTS, 0, query="flying cars")),
        ("judgments.parquet", 1, "query"), "unknown query 'flying cars'",
    ),
    "not valid UTF-8": (
        lambda f: _not_utf8(f, None),
        ("catalog.csv", 3, "name"), "byte 0xe9 is not valid utf-8 text; pass the file's encoding",
    ),
    "truncated Parquet": (
        lambda f: _truncated(f, None),
        ("judgments.parquet", None, None), "not a readable Parquet file",
    ),
    "not JSON": (
        lambda f: _not_json(f, None),
        ("queries.jsonl", 2, None), "not valid JSON",
    ),
    "ragged CSV": (
        lambda f: _ragged_csv(f, None),
        ("catalog.csv", 2, None), "has 3 fields, the header has 2",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_names_file_row_field_and_commits_nothing(case, tmp_path, tiny_files, config):
    bus = DataBus(tmp_path / "run")
    good = ingest_files(bus, config, **tiny_files, grades=GRADES, mapping=TINY_MAPPING)
    before = {name: bus.read_table(name) for name in good}

    breaker, (file, row, field), words = CASES[case]
    breaker(tiny_files)
    with pytest.raises(InputError) as info:
        ingest_files(bus, config, **tiny_files, grades=GRADES, mapping=TINY_MAPPING)
    err = info.value
    assert (Path(err.file).name, err.row, err.field) == (file, row, field), str(err)
    assert words in str(err)
    assert str(err).startswith(str(tiny_files[file.split(".")[0]]))  # the path as given

    for name, manifest in good.items():
        assert bus.manifest(name) == manifest
        assert bus.read_table(name).equals(before[name])


def test_unknown_query_id(tmp_path, config):
    catalog = write_csv(tmp_path / "c.csv", [{"item_id": "a", "title": "T"}])
    queries = write_csv(tmp_path / "q.csv", [{"query_id": "Q1", "query": "x"}])
    judgments = write_csv(tmp_path / "j.csv", [
        {"query_id": "Q1", "item_id": "a", "grade": "1"},
        {"query_id": "Q7", "item_id": "a", "grade": "1"},
    ])
    with pytest.raises(InputError) as info:
        ingest_files(DataBus(tmp_path / "run"), config, catalog=catalog, queries=queries,
                     judgments=judgments, grades=GRADES)
    assert (info.value.row, info.value.field) == (2, "query_id")
    assert "unknown query 'Q7'" in str(info.value)


def test_missing_file_and_unknown_format(tmp_path, config):
    bus = DataBus(tmp_path / "run")
    queries = write_csv(tmp_path / "q.csv", [{"query": "x"}])
    with pytest.raises(InputError, match="no such file"):
        ingest_files(bus, config, catalog=tmp_path / "nope.csv", queries=queries, grades=GRADES)
    (tmp_path / "c.xlsx").write_bytes(b"PK")
    with pytest.raises(InputError, match="unknown file type"):
        ingest_files(bus, config, catalog=tmp_path / "c.xlsx", queries=queries, grades=GRADES)
    with pytest.raises(InputError, match="unknown encoding"):
        ingest_files(bus, config, catalog=queries, queries=queries, grades=GRADES, encoding="klingon")


def test_nested_column_is_refused(tmp_path, config):
    catalog = tmp_path / "c.parquet"
    pq.write_table(
        __import__("pyarrow").table({"item_id": ["a"], "title": [{"en": "Lamp"}]}), catalog
    )
    queries = write_csv(tmp_path / "q.csv", [{"query": "x"}])
    with pytest.raises(InputError) as info:
        ingest_files(DataBus(tmp_path / "run"), config, catalog=catalog, queries=queries, grades=GRADES)
    assert info.value.field == "title" and "nested" in str(info.value)


def test_ambiguous_query_text(tmp_path, config):
    catalog = write_csv(tmp_path / "c.csv", [{"item_id": "a", "title": "T"}])
    queries = write_csv(tmp_path / "q.csv", [{"query_id": "Q1", "query": "x"}, {"query_id": "Q2", "query": "X"}])
    judgments = write_csv(tmp_path / "j.csv", [{"query": "x", "item_id": "a", "grade": "1"}])
    with pytest.raises(InputError, match="matches several query ids"):
        ingest_files(DataBus(tmp_path / "run"), config, catalog=catalog, queries=queries,
                     judgments=judgments, grades=GRADES)


def test_missing_column_without_mapping(tmp_path, config):
    catalog = write_csv(tmp_path / "c.csv", [{"item_id": "a", "name": "T"}])
    queries = write_csv(tmp_path / "q.csv", [{"query": "x"}])
    with pytest.raises(InputError) as info:
        ingest_files(DataBus(tmp_path / "run"), config, catalog=catalog, queries=queries, grades=GRADES)
    assert (info.value.file, info.value.row, info.value.field) == (str(catalog), None, "title")
    assert "columns present: item_id, name; map one with --map title=COLUMN" in str(info.value)
