"""Step ``mine``: the ``candidates`` table from the disagreement of the retrieval channels."""

from __future__ import annotations

import math
import time

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from relforge.bus import DataBus, Manifest, ShardedWriter
from relforge.config import RelforgeConfig
from relforge.errors import InputError
from relforge.logs import get_logger, log_event, track
from relforge.mine._buckets import BUCKET_RULES, BUCKETS
from relforge.mine._candidates import ChannelResult, build_candidates
from relforge.mine._report import write_report
from relforge.mine.channels import Channel, build_channel, has_words

log = get_logger("mine")


def _check_unique(bus: DataBus, table: str, column: pa.ChunkedArray, field: str) -> None:
    if column.null_count:
        first = pc.index(pc.is_null(column), True).as_py()
        raise InputError(bus.uri(table), first + 1, field, "is empty")
    counts = pc.value_counts(column)
    dup = counts.filter(pc.greater(counts.field("counts"), 1))
    if len(dup):
        value = dup.field("values")[0].as_py()
        rows = [i + 1 for i in np.flatnonzero(pc.equal(column, value).to_numpy(zero_copy_only=False))]
        raise InputError(
            bus.uri(table), int(rows[1]), field, f'"{value}" repeats row {rows[0]} ({len(dup)} duplicated value(s))'
        )


def _texts(column: pa.ChunkedArray) -> list[str]:
    return pc.fill_null(column, "").to_pylist()


def _search_shard(
    channels: list[Channel], queries: list[str], k: int
) -> tuple[list[ChannelResult], dict[str, float]]:
    """Each channel's top-k for the shard's queries; duplicate query texts are searched once."""
    unique, inverse = np.unique(np.asarray(queries, dtype=object), return_inverse=True)
    texts = unique.tolist()
    results, seconds = [], {}
    for ch in channels:
        start = time.perf_counter()
        idx, scores = ch.search(texts, k)
        seconds[ch.name] = time.perf_counter() - start
        results.append(ChannelResult(ch.name, ch.lexical, idx[inverse], scores[inverse]))
    return results, seconds


def run_mine(bus: DataBus, config: RelforgeConfig) -> Manifest:
    """Mine candidates for every query (all splits) and write the mining report.

    Reads the committed ``catalog`` (items ranked on ``text``) and ``queries`` tables, builds
    each channel in ``config.mine.channels`` once, and searches the queries shard by shard
    (``queries_per_shard`` each); every shard is committed on its own, so a killed run
    resumes where it stopped, and memory depends on the catalog and the shard size, not on
    the number of queries. Each (query, item) that a channel put in its top ``top_k`` is one
    row with every channel's rank and score (null where that channel did not retrieve it),
    ``n_channels`` and a bucket (see :mod:`relforge.mine._buckets`); ``random_negatives``
    items that no channel retrieved are sampled per query (seeded by ``seed`` and the
    query id) into bucket ``random``.

    Queries with the same text get the same channel results (searched once per shard);
    queries and items without a letter or digit are never matched; a catalog smaller than
    ``top_k`` yields fewer rows per query. The report (``reports/mining.json`` and ``.md``)
    joins the committed ``judgments`` table when there is one.

    Args:
        bus: the run's data bus.
        config: the run's configuration (sections ``mine`` and ``models``).

    Returns:
        The manifest of the committed ``candidates`` table.

    Raises:
        InputError: a duplicate or empty ``item_id`` or ``query_id``.
        ConfigError: an unknown channel name.

    Example:
        >>> manifest = run_mine(DataBus("runs/demo"), load_config())   # doctest: +SKIP
    """
    mine = config.mine
    catalog = bus.read_table("catalog", columns=["item_id", "text"])
    queries = bus.read_table("queries", columns=["query_id", "query"])
    _check_unique(bus, "catalog", catalog.column("item_id"), "item_id")
    _check_unique(bus, "queries", queries.column("query_id"), "query_id")
    item_ids = catalog.column("item_id").combine_chunks()
    n_queries = queries.num_rows
    n_shards = max(1, math.ceil(n_queries / mine.queries_per_shard))

    with bus.sharded_writer(
        "candidates",
        n_shards,
        inputs=bus.input_digests("catalog", "queries"),
        config_hash=config.section_hash("mine", "models"),
    ) as writer:
        if not writer.already_committed:
            channels = [build_channel(name, config) for name in mine.channels]
            writer.metadata = {
                "channels": [ch.describe() for ch in channels],
                "top_k": mine.top_k,
                "random_negatives": mine.random_negatives,
                "seed": mine.seed,
                "buckets": list(BUCKETS),
                "bucket_rules": BUCKET_RULES,
                "items": catalog.num_rows,
                "queries": n_queries,
            }
            pending = writer.pending()
            if pending:
                _mine_shards(writer, pending, channels, catalog, queries, item_ids, config)
    manifest = bus.manifest("candidates")
    write_report(bus)
    return manifest


def _mine_shards(
    writer: ShardedWriter,
    pending: list[int],
    channels: list[Channel],
    catalog: pa.Table,
    queries: pa.Table,
    item_ids: pa.Array,
    config: RelforgeConfig,
) -> None:
    """Index the catalog in every channel, then search and commit the pending shards."""
    mine = config.mine
    texts = _texts(catalog.column("text"))
    eligible = np.fromiter((has_words(t) for t in texts), dtype=bool, count=len(texts))
    for ch in channels:
        start = time.perf_counter()
        ch.expect_queries(queries.num_rows)
        ch.index(texts, item_ids.to_pylist())
        log_event(log, "indexed", channel=ch.name, items=len(texts), s=round(time.perf_counter() - start, 2))
    del texts
    query_ids = queries.column("query_id").combine_chunks()
    query_texts = queries.column("query")
    for i in track(pending, f"mining {len(pending)} shard(s)"):
        lo = i * mine.queries_per_shard
        hi = min(lo + mine.queries_per_shard, queries.num_rows)
        results, seconds = _search_shard(channels, _texts(query_texts.slice(lo, hi - lo)), mine.top_k)
        table = build_candidates(
            query_ids.slice(lo, hi - lo), item_ids, results, eligible, mine.random_negatives, mine.seed
        )
        writer.write(i, table)
        log_event(log, "shard", shard=i, queries=hi - lo, rows=table.num_rows, **{f"{k}_s": round(v, 2) for k, v in seconds.items()})


def mine_step(bus: DataBus, config: RelforgeConfig) -> dict:
    """Step ``mine``: :func:`run_mine`, summarised (rows per bucket) for the step record."""
    manifest = run_mine(bus, config)
    report = bus.read_json("reports/mining.json")
    buckets = {b: v["rows"] for b, v in report["buckets"].items()}
    sizes = ", ".join(f"{b} {n:,}" for b, n in buckets.items())
    return {"candidates": manifest.rows, "buckets": buckets,
            "decided": f"{manifest.rows:,} candidates for {report['queries']:,} queries ({sizes})"}
