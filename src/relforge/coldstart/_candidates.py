"""Step ``coldstart-candidates``: the pairs the teacher grades, for every synthetic query.

Per kept synthetic query of the sub-run (``coldstart/queries``):

- its **source** item (bucket ``source``): the item the query was written for;
- ``hard_negatives`` **hard negatives** (bucket ``hard_negative``): the top items of
  ``coldstart.channel`` (BM25 by default, built with :func:`relforge.mine.build_channel`: the
  mining channel itself, not a second BM25) other than the source. They share words with the
  query, so some are in truth relevant: the teacher grades them, nothing assumes they are not;
- ``random_negatives`` **random** items (bucket ``random``): sampled, seeded by the query's id,
  among the items the channel did not put in its top ``max(round_trip_k, hard_negatives + 1)``
  (:func:`relforge.mine.sample_negatives`).

The rows follow the ``candidates`` contract (``rank_<channel>`` / ``score_<channel>`` where the
channel retrieved the item, ``n_channels`` 1 or 0), so ``annotate`` and the report read them as
any candidates. Queries are processed in shards of ``mine.queries_per_shard``, each committed on
its own.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pyarrow as pa

from relforge.bus import DataBus
from relforge.coldstart._sample import stable_hash
from relforge.coldstart._subrun import SUBRUN, coldstart_bus, settings_hash
from relforge.config import RelforgeConfig
from relforge.errors import InputError
from relforge.logs import get_logger, log_event, track
from relforge.tiers import has_words

log = get_logger("coldstart.candidates")

BUCKETS = ("source", "hard_negative", "random")


def candidate_rows(
    query_ids: list[str], source_pos: np.ndarray, found: np.ndarray, scores: np.ndarray, item_ids: pa.Array,
    eligible: np.ndarray, hard: int, random_n: int, seed: int, channel: str,
) -> pa.Table:
    """The candidate rows of a shard of queries (see the module docstring).

    Args:
        query_ids: the shard's query ids.
        source_pos: ``(n,)`` catalog position of each query's source item.
        found, scores: the channel's ``(n, k)`` results (:meth:`relforge.mine.Channel.search`).
        item_ids: the catalog's item ids.
        eligible: ``(n_items,)`` items that may be drawn as random negatives.
        hard, random_n: hard and random negatives per query.
        seed: the random negatives' seed (with the query id).
        channel: the channel's name (the columns ``rank_<channel>``, ``score_<channel>``).
    """
    from relforge.mine import sample_negatives

    q_col, i_col, bucket, rank, score = [], [], [], [], []
    for q, qid in enumerate(query_ids):
        row = found[q]
        hits = row[row >= 0]
        src = int(source_pos[q])
        where = np.flatnonzero(hits == src)
        q_col.append(qid)
        i_col.append(src)
        bucket.append("source")
        rank.append(int(where[0]) + 1 if len(where) else None)
        score.append(float(scores[q, where[0]]) if len(where) else None)
        taken = 0
        for r, pos in enumerate(hits.tolist()):
            if taken == hard:
                break
            if pos == src:
                continue
            q_col.append(qid)
            i_col.append(pos)
            bucket.append("hard_negative")
            rank.append(r + 1)
            score.append(float(scores[q, r]))
            taken += 1
        rng = np.random.default_rng([seed, stable_hash(seed, qid)])
        exclude = np.unique(np.concatenate([hits, [src]])).astype(np.int64)
        for pos in sample_negatives(rng, random_n, eligible, exclude).tolist():
            q_col.append(qid)
            i_col.append(pos)
            bucket.append("random")
            rank.append(None)
            score.append(None)
    found_mask = [r is not None for r in rank]
    return pa.table({
        "query_id": pa.array(q_col, pa.string()),
        "item_id": item_ids.take(pa.array(i_col, pa.int64())),
        "n_channels": pa.array([1 if f else 0 for f in found_mask], pa.int8()),
        "bucket": pa.array(bucket, pa.string()),
        f"rank_{channel}": pa.array(rank, pa.int32()),
        f"score_{channel}": pa.array(score, pa.float32()),
    })


def run_coldstart_candidates(bus: DataBus, config: RelforgeConfig) -> dict[str, Any]:
    """Write the sub-run's ``candidates``: source, hard negatives and random items per synthetic query.

    Args:
        bus: the run's bus; the sub-run (``coldstart/``) must hold ``catalog`` and ``queries``
            (``relforge synthesize-queries``).
        config: the run's configuration (sections ``coldstart``, ``mine``).

    Returns:
        A summary (rows per bucket; the share of sources the channel found) with a ``decided`` line.

    Raises:
        NotCommittedError: ``synthesize-queries`` has not run.
        InputError: a synthetic query whose source item is not in the catalog.
    """
    from relforge.mine import build_channel

    cs = config.coldstart
    sub = coldstart_bus(bus)
    catalog = sub.read_table("catalog", columns=["item_id", config.finetune.item_field])
    queries = sub.read_table("queries", columns=["query_id", "query", "source_item_id"])
    item_ids = catalog.column("item_id").combine_chunks()
    position = {iid: i for i, iid in enumerate(item_ids.to_pylist())}
    sources = queries.column("source_item_id").to_pylist()
    for row, s in enumerate(sources, 1):
        if s not in position:
            raise InputError(sub.uri("queries"), row, "source_item_id", f"{s!r} is not in the catalog")
    per_shard = config.mine.queries_per_shard
    n_shards = max(1, math.ceil(queries.num_rows / per_shard))
    k = max(cs.round_trip_k, cs.hard_negatives + 1)
    settings = {"channel": cs.channel, "k": k, "hard": cs.hard_negatives, "random": cs.random_negatives,
                "seed": cs.seed, "item_field": config.finetune.item_field,
                "mine": config.mine.model_dump(mode="json", include={"bm25_k1", "bm25_b", "ngram_range", "ngram_features",
                                                                     "dense_model", "dense_max_seq_length"})}
    metadata = {"buckets": list(BUCKETS), "channel": cs.channel, "hard_negatives": cs.hard_negatives,
                "random_negatives": cs.random_negatives, "top_k": k}
    with sub.sharded_writer("candidates", n_shards, metadata=metadata, inputs=sub.input_digests("catalog", "queries"),
                            config_hash=settings_hash(settings)) as writer:
        pending = writer.pending()
        if pending:
            texts = ["" if t is None else str(t) for t in catalog.column(config.finetune.item_field).to_pylist()]
            eligible = np.fromiter((has_words(t) for t in texts), dtype=bool, count=len(texts))
            channel = build_channel(cs.channel, config)
            channel.expect_queries(queries.num_rows)
            channel.index(texts, item_ids.to_pylist())
            del texts
            qids, qtexts = queries.column("query_id").to_pylist(), queries.column("query").to_pylist()
            for shard in track(pending, f"coldstart-candidates: {len(pending)} shard(s)"):
                lo, hi = shard * per_shard, min((shard + 1) * per_shard, queries.num_rows)
                found, scores = channel.search(qtexts[lo:hi], k)
                table = candidate_rows(qids[lo:hi], np.array([position[s] for s in sources[lo:hi]]), found, scores,
                                       item_ids, eligible, cs.hard_negatives, cs.random_negatives, cs.seed, cs.channel)
                writer.write(shard, table)
                log_event(log, "shard", shard=shard, queries=hi - lo, rows=table.num_rows)
    table = sub.read_table("candidates", columns=["bucket", f"rank_{cs.channel}"])
    buckets = table.column("bucket").to_pylist()
    counts = {b: buckets.count(b) for b in BUCKETS}
    ranks = [r for b, r in zip(buckets, table.column(f"rank_{cs.channel}").to_pylist()) if b == "source"]
    found_share = sum(r is not None for r in ranks) / len(ranks) if ranks else 0.0
    return {"candidates": table.num_rows, "buckets": counts, "queries": queries.num_rows,
            "source_found": found_share,
            "decided": f"{table.num_rows:,} pairs for {queries.num_rows:,} synthetic queries in {SUBRUN}/candidates "
                       f"(source {counts['source']:,}, hard negatives {counts['hard_negative']:,}, "
                       f"random {counts['random']:,})"}
