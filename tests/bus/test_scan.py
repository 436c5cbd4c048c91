"""DataBus.scan streams a committed table in bounded batches: the same rows as read_table, in order."""

from __future__ import annotations

import pyarrow as pa
import pytest

from relforge.bus import DataBus
from relforge.errors import NotCommittedError, SchemaError


def _judgments(n: int) -> pa.Table:
    return pa.table({
        "query_id": [f"q{i // 7}" for i in range(n)], "item_id": [f"i{i:05d}" for i in range(n)],
        "grade": pa.array([i % 4 for i in range(n)], pa.int8()), "source": ["human"] * n,
    })


def test_scan_yields_every_row_in_order_in_bounded_batches(any_bus):
    any_bus.write_table("judgments", _judgments(1000), rows_per_file=300)  # 4 files
    batches = list(any_bus.scan("judgments", batch_rows=128))
    assert all(b.num_rows <= 128 for b in batches) and len(batches) >= 8
    streamed = pa.concat_tables(batches)
    assert streamed.equals(any_bus.read_table("judgments").replace_schema_metadata(None))


def test_scan_reads_only_the_columns_asked_for_and_checks_them(local_bus):
    local_bus.write_table("judgments", _judgments(50))
    batches = list(local_bus.scan("judgments", ["item_id", "grade"], batch_rows=20))
    assert batches[0].column_names == ["item_id", "grade"] and batches[0].schema.field("grade").type == pa.int8()
    assert sum(b.num_rows for b in batches) == 50
    with pytest.raises(SchemaError, match="no column"):
        local_bus.scan("judgments", ["nope"])


def test_scan_fails_at_once_on_a_table_that_is_not_committed(local_bus):
    with pytest.raises(NotCommittedError):
        local_bus.scan("judgments")


def test_scan_notices_a_file_with_other_rows_than_its_manifest(local_bus, tmp_path):
    local_bus.write_table("judgments", _judgments(40))
    manifest = local_bus.manifest("judgments")
    path = tmp_path / "run" / "judgments" / manifest.files[0].path
    import pyarrow.parquet as pq

    pq.write_table(_judgments(10), path)
    with pytest.raises(SchemaError, match="has 10 rows, manifest says 40"):
        list(local_bus.scan("judgments"))


def test_memory_of_a_scan_does_not_hold_the_table(local_bus):
    local_bus.write_table("judgments", _judgments(20_000), rows_per_file=20_000)
    it = local_bus.scan("judgments", batch_rows=1000)
    first = next(it)
    assert first.num_rows == 1000 and isinstance(it, type(x for x in ()))  # a generator, not a list


def test_bus_scan_does_not_exist_for_unknown_tables(tmp_path):
    with pytest.raises(NotCommittedError):
        DataBus(tmp_path / "none").scan("catalog")
