"""Committed tables: schema checked on write and on read, only committed files visible, atomic replace."""

from __future__ import annotations

import io

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from relforge.bus import DataBus, _fs, fingerprint
from relforge.errors import NotCommittedError, SchemaError


def judgments(n: int, start: int = 0) -> pa.Table:
    return pa.table({
        "query_id": [f"q{i % 3}" for i in range(start, start + n)],
        "item_id": [f"i{i}" for i in range(start, start + n)],
        "grade": pa.array([i % 4 for i in range(start, start + n)], pa.int8()),
        "source": ["human"] * n,
    })


def _put(bus: DataBus, path: str, data: bytes) -> None:
    _fs.write_bytes_atomic(bus.fs, bus._path(path), data)


def _parquet(table: pa.Table) -> bytes:
    buf = io.BytesIO()
    pq.write_table(table, buf)
    return buf.getvalue()


def test_roundtrip_records_manifest(any_bus):
    manifest = any_bus.write_table(
        "judgments", judgments(10), metadata={"grade_scale": {"name": "x"}},
        inputs={"a.csv": "abc"}, config_hash="cfg", rows_per_file=4,
    )
    assert manifest.rows == 10 and [f.rows for f in manifest.files] == [4, 4, 2]
    assert manifest.fingerprint == fingerprint({"a.csv": "abc"}, "cfg")
    assert manifest.columns == {"query_id": "string", "item_id": "string", "grade": "int8", "source": "string"}
    table = any_bus.read_table("judgments")
    assert table.column("item_id").to_pylist() == [f"i{i}" for i in range(10)]
    assert table.schema.field("grade").type == pa.int8()
    assert any_bus.committed_with("judgments", manifest.fingerprint) is not None
    assert any_bus.committed_with("judgments", "other") is None


def test_write_casts_safe_types_and_rejects_bad_ones(any_bus):
    as_int64 = judgments(3).set_column(2, "grade", pa.array([0, 1, 3], pa.int64()))
    any_bus.write_table("judgments", as_int64)
    assert any_bus.read_table("judgments").schema.field("grade").type == pa.int8()
    with pytest.raises(SchemaError, match="grade"):
        any_bus.write_table("labels", pa.table({"query_id": ["q"]}))
    too_big = judgments(3).set_column(2, "grade", pa.array([0, 1, 300], pa.int64()))
    with pytest.raises(SchemaError, match="`grade`"):
        any_bus.write_table("judgments", too_big)
    with pytest.raises(SchemaError, match="lacks required column"):
        any_bus.write_table("judgments", judgments(3).drop_columns(["source"]))
    with_null = judgments(3).set_column(1, "item_id", pa.array(["a", None, "c"]))
    with pytest.raises(SchemaError, match="null.*row 2"):
        any_bus.write_table("judgments", with_null)
    # the failed writes left the first commit as it was
    assert any_bus.read_table("judgments").num_rows == 3


def test_schema_checked_on_read_wrong_types(any_bus):
    manifest = any_bus.write_table("judgments", judgments(3))
    wrong = judgments(3).set_column(2, "grade", pa.array(["exact", "bad", "ok"]))
    _put(any_bus, f"judgments/{manifest.files[0].path}", _parquet(wrong))
    with pytest.raises(SchemaError, match="`grade`.*expected int8"):
        any_bus.read_table("judgments")
    with pytest.raises(SchemaError, match="`grade`"):
        any_bus.read_table("judgments", columns=["grade"])  # a column subset is checked too


def test_schema_checked_on_read_wrong_rows_missing_column_and_truncation(any_bus):
    manifest = any_bus.write_table("judgments", judgments(3))
    path = f"judgments/{manifest.files[0].path}"
    _put(any_bus, path, _parquet(judgments(5)))
    with pytest.raises(SchemaError, match="has 5 rows, manifest says 3"):
        any_bus.read_table("judgments")
    _put(any_bus, path, _parquet(judgments(3).drop_columns(["source"])))
    with pytest.raises(SchemaError, match="lacks column"):
        any_bus.read_table("judgments")
    good = _parquet(judgments(3))
    _put(any_bus, path, good[: len(good) // 2])
    with pytest.raises(SchemaError, match="unreadable Parquet"):
        any_bus.read_table("judgments")


def test_free_form_table_checked_against_its_manifest(any_bus):
    manifest = any_bus.write_table("stats", pa.table({"a": [1, 2], "b": ["x", "y"]}))
    _put(any_bus, f"stats/{manifest.files[0].path}", _parquet(pa.table({"a": [1, 2]})))
    with pytest.raises(SchemaError, match=r"lacks column\(s\) \['b'\]"):
        any_bus.read_table("stats")
    with pytest.raises(SchemaError, match="no column"):
        any_bus.read_table("stats", columns=["zzz"])


def test_corrupt_manifest_is_a_schema_error(any_bus):
    any_bus.write_table("judgments", judgments(2))
    _put(any_bus, "judgments/manifest.json", b'{"table": "judgments"')
    with pytest.raises(SchemaError, match="not a valid manifest"):
        any_bus.read_table("judgments")


def test_readers_see_only_committed_tables(any_bus):
    # files of an unfinished write, no manifest yet
    _put(any_bus, "judgments/part-unfinished-00000.parquet", _parquet(judgments(4)))
    assert not any_bus.is_committed("judgments")
    with pytest.raises(NotCommittedError, match="not committed"):
        any_bus.read_table("judgments")
    with pytest.raises(NotCommittedError):
        any_bus.manifest("judgments")
    any_bus.write_table("judgments", judgments(2))
    # a stray file written after the commit is ignored: only the manifest's files count
    _put(any_bus, "judgments/part-stray-00000.parquet", _parquet(judgments(7, start=100)))
    assert any_bus.read_table("judgments").column("item_id").to_pylist() == ["i0", "i1"]


def test_commit_removes_files_of_earlier_and_unfinished_writes(local_bus):
    _put(local_bus, "judgments/part-unfinished-00000.parquet", _parquet(judgments(4)))
    first = local_bus.write_table("judgments", judgments(2))
    second = local_bus.write_table("judgments", judgments(3))
    folder = local_bus._path("judgments")
    names = sorted(p.rsplit("/", 1)[-1] for p in _list(local_bus, folder))
    assert names == sorted(["manifest.json", *(f.path for f in second.files)])
    assert first.files[0].path not in names


def _list(bus: DataBus, folder: str) -> list[str]:
    import pyarrow.fs as pafs

    infos = bus.fs.get_file_info(pafs.FileSelector(folder, recursive=True))
    return [i.path for i in infos if i.type == pafs.FileType.File]


def test_failed_replace_keeps_the_old_table(any_bus, monkeypatch):
    any_bus.write_table("judgments", judgments(5))
    old_manifest = any_bus.manifest("judgments")
    calls = {"n": 0}
    real = any_bus._write_parquet

    def dies_on_second_file(name, rel, table):
        calls["n"] += 1
        if calls["n"] == 2:
            raise OSError("disk full (simulated)")
        return real(name, rel, table)

    monkeypatch.setattr(any_bus, "_write_parquet", dies_on_second_file)
    with pytest.raises(OSError, match="simulated"):
        any_bus.write_table("judgments", judgments(9, start=50), rows_per_file=3)
    assert calls["n"] == 2  # the first new file was written before the failure
    assert any_bus.manifest("judgments") == old_manifest
    assert any_bus.read_table("judgments").column("item_id").to_pylist() == [f"i{i}" for i in range(5)]


def test_failed_manifest_write_keeps_the_old_table(any_bus, monkeypatch):
    any_bus.write_table("judgments", judgments(5))
    real = _fs.write_bytes_atomic

    def no_manifest(fs, path, data):
        if path.endswith("manifest.json"):
            raise OSError("connection reset (simulated)")
        real(fs, path, data)

    monkeypatch.setattr(_fs, "write_bytes_atomic", no_manifest)
    with pytest.raises(OSError, match="simulated"):
        any_bus.write_table("judgments", judgments(9, start=50))
    monkeypatch.setattr(_fs, "write_bytes_atomic", real)
    assert any_bus.read_table("judgments").num_rows == 5
