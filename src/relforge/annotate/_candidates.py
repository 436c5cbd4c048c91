"""The candidates to label, read as a stream of fixed-size shards (memory does not grow with them).

The candidates are read with :meth:`relforge.bus.DataBus.scan` in batches; those of the chosen
queries (``annotate.splits``, ``annotate.max_queries``) are cut into shards of
``annotate.shard_rows`` in table order, so shard ``i`` holds the same pairs in every run and a
rerun can skip the shards already committed. Only the queries and the catalog's item texts are
held in memory (they grow with the catalog and the query set, not with the candidates).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from relforge.bus import DataBus
from relforge.config import AnnotateConfig

COLUMNS = ["query_id", "item_id", "bucket"]


def _order_key(query_id: str, seed: int) -> str:
    return hashlib.sha256(f"{seed}:{query_id}".encode()).hexdigest()


def chosen_queries(queries: pa.Table, cfg: AnnotateConfig) -> set[str] | None:
    """The query ids whose candidates are labelled, or ``None`` for all.

    ``splits`` keeps the queries of those splits; ``max_queries`` then keeps that many, in the
    order of a seeded hash of their ids (a stable, unbiased subset).
    """
    if cfg.splits is None and cfg.max_queries is None:
        return None
    ids = queries.column("query_id").to_pylist()
    splits = queries.column("split").to_pylist()
    kept = [q for q, s in zip(ids, splits) if cfg.splits is None or s in cfg.splits]
    if cfg.max_queries is not None:
        kept = sorted(kept, key=lambda q: _order_key(q, cfg.seed))[: cfg.max_queries]
    return set(kept)


@dataclass(frozen=True)
class CandidateShards:
    """How the chosen candidates fall into shards.

    Attributes:
        rows: chosen candidate pairs.
        n_shards: shards of ``shard_rows`` (the last one shorter).
        shard_rows: pairs per shard.
    """

    rows: int
    n_shards: int
    shard_rows: int


def _filtered(batch: pa.Table, chosen: set[str] | None) -> pa.Table:
    if chosen is None:
        return batch
    mask = pc.is_in(batch.column("query_id"), value_set=pa.array(sorted(chosen), pa.string()))
    return batch.filter(mask)


def count_shards(bus: DataBus, chosen: set[str] | None, shard_rows: int) -> CandidateShards:
    """Count the chosen candidates (one streamed pass over ``query_id``) and their shards."""
    if chosen is None:
        rows = bus.manifest("candidates").rows
    else:
        rows = sum(_filtered(b, chosen).num_rows for b in bus.scan("candidates", ["query_id"], batch_rows=65_536))
    return CandidateShards(rows=rows, n_shards=max(1, math.ceil(rows / shard_rows)), shard_rows=shard_rows)


def iter_shards(
    bus: DataBus, chosen: set[str] | None, shard_rows: int, wanted: set[int]
) -> Iterator[tuple[int, pa.Table]]:
    """``(shard index, candidates)`` for the shards in ``wanted``, in order; the others are read and dropped.

    Memory holds at most one shard plus one scan batch.
    """
    if not wanted:
        return
    last = max(wanted)
    buffer: list[pa.Table] = []
    buffered = 0
    shard = 0
    for batch in bus.scan("candidates", COLUMNS, batch_rows=min(shard_rows, 65_536)):
        batch = _filtered(batch, chosen)
        while batch.num_rows:
            take = min(shard_rows - buffered, batch.num_rows)
            if shard in wanted:
                buffer.append(batch.slice(0, take))
            buffered += take
            batch = batch.slice(take)
            if buffered == shard_rows:
                if shard in wanted:
                    yield shard, pa.concat_tables(buffer).combine_chunks()
                if shard >= last:
                    return
                buffer, buffered, shard = [], 0, shard + 1
    if buffered and shard in wanted:
        yield shard, pa.concat_tables(buffer).combine_chunks()
