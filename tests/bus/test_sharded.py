"""Sharded writes: committed shards survive a failure and are skipped by the rerun."""

from __future__ import annotations

import pyarrow as pa
import pytest

from relforge.errors import NotCommittedError, SchemaError
from tests.bus._shard_writer import shard_table


class Boom(RuntimeError):
    pass


def test_resume_skips_committed_shards(any_bus):
    written = []
    with pytest.raises(Boom), any_bus.sharded_writer("judgments", 4, inputs={"x": "1"}) as w:
        for i in w.pending():
            if i == 2:
                raise Boom("worker died")
            w.write(i, shard_table(i, 5))
            written.append(i)
    assert written == [0, 1]
    assert not any_bus.is_committed("judgments")
    with pytest.raises(NotCommittedError):
        any_bus.read_table("judgments")

    with any_bus.sharded_writer("judgments", 4, inputs={"x": "1"}) as w:
        assert w.done() == [0, 1]
        assert w.pending() == [2, 3]
        for i in w.pending():
            w.write(i, shard_table(i, 5))
    ids = any_bus.read_table("judgments").column("item_id").to_pylist()
    assert sorted(ids) == [f"item-{n:06d}" for n in range(20)]

    # a rerun of the finished table has nothing to do and returns the same manifest
    before = any_bus.manifest("judgments")
    with any_bus.sharded_writer("judgments", 4, inputs={"x": "1"}) as w:
        assert w.already_committed and w.pending() == []
    assert any_bus.manifest("judgments") == before


def test_other_inputs_start_over(any_bus):
    with any_bus.sharded_writer("judgments", 2, inputs={"x": "1"}) as w:
        for i in w.pending():
            w.write(i, shard_table(i, 3))
    with pytest.raises(Boom), any_bus.sharded_writer("judgments", 2, inputs={"x": "2"}) as w:
        assert w.pending() == [0, 1]
        w.write(0, shard_table(0, 4))
        raise Boom
    # the half-done rewrite is invisible: the old table is still the committed one
    assert any_bus.read_table("judgments").num_rows == 6


def test_commit_with_missing_shard_raises(any_bus):
    w = any_bus.sharded_writer("judgments", 3)
    with pytest.raises(NotCommittedError, match="1 shard"), w as writer:
        writer.write(0, shard_table(0, 2))
        writer.write(2, shard_table(2, 2))
    assert not any_bus.is_committed("judgments")


def test_shards_with_other_columns_are_refused_at_commit(any_bus):
    with pytest.raises(SchemaError, match="shard 1 has columns"), any_bus.sharded_writer("stats", 2) as w:
        w.write(0, pa.table({"a": [1], "b": ["x"]}))
        w.write(1, pa.table({"a": [2]}))
    assert not any_bus.is_committed("stats")


def test_shard_checked_against_contract(any_bus):
    with pytest.raises(SchemaError, match="shard 0"), any_bus.sharded_writer("judgments", 1) as w:
        w.write(0, pa.table({"query_id": ["q"]}))
