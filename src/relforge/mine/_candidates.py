"""One shard of the ``candidates`` table, from the channels' top-k results for its queries."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from relforge.mine._buckets import RANDOM, assign_buckets


@dataclass(frozen=True)
class ChannelResult:
    """One channel's answer for a shard's queries (see ``Channel.search``)."""

    name: str
    lexical: bool
    item_index: np.ndarray
    scores: np.ndarray


def query_rng(seed: int, query_id: str) -> np.random.Generator:
    """The random generator of one query: the same for a query whatever shard it is in."""
    digest = int.from_bytes(hashlib.sha256(query_id.encode("utf-8")).digest()[:8], "little")
    return np.random.default_rng([seed, digest])


def sample_negatives(
    rng: np.random.Generator, n: int, eligible: np.ndarray, exclude: np.ndarray
) -> np.ndarray:
    """``n`` distinct catalog positions, eligible and not in ``exclude`` (fewer if there are not enough).

    Rejection sampling on large catalogs (cost independent of the catalog size); a shuffle of
    the whole remainder on small ones.
    """
    if n <= 0:
        return np.zeros(0, dtype=np.int64)
    allowed = int(eligible.sum()) - int(eligible[exclude].sum()) if len(exclude) else int(eligible.sum())
    if allowed <= 4 * n:
        mask = eligible.copy()
        mask[exclude] = False
        pool = np.flatnonzero(mask)
        return np.sort(rng.permutation(pool)[:n])
    excluded = set(exclude.tolist())
    chosen: list[int] = []
    seen: set[int] = set()
    while len(chosen) < n:
        for pos in rng.integers(0, len(eligible), size=2 * n + 8).tolist():
            if pos in seen or pos in excluded or not eligible[pos]:
                continue
            seen.add(pos)
            chosen.append(pos)
            if len(chosen) == n:
                break
    return np.sort(np.asarray(chosen, dtype=np.int64))


def candidates_schema(channels: Sequence[str]) -> pa.Schema:
    """The shard schema for these channels (contract columns first)."""
    fields = [
        pa.field("query_id", pa.string(), nullable=False),
        pa.field("item_id", pa.string(), nullable=False),
        pa.field("n_channels", pa.int8(), nullable=False),
        pa.field("bucket", pa.string(), nullable=False),
    ]
    fields += [pa.field(f"rank_{c}", pa.int32()) for c in channels]
    fields += [pa.field(f"score_{c}", pa.float32()) for c in channels]
    return pa.schema(fields)


def build_candidates(
    query_ids: pa.Array,
    item_ids: pa.Array,
    results: Sequence[ChannelResult],
    eligible: np.ndarray,
    random_negatives: int,
    seed: int,
) -> pa.Table:
    """The candidate rows of a shard: every (query, item) some channel retrieved, plus sampled negatives.

    Rows are grouped by query (in the order given) and, within a query, ordered by the
    number of channels (most first), the best rank over channels, then catalog position.

    Args:
        query_ids: the shard's query ids.
        item_ids: the catalog's item ids (position ``i`` is item ``i``).
        results: one :class:`ChannelResult` per channel, rows aligned with ``query_ids``.
        eligible: ``(n_items,)`` bool: items that may be sampled as random negatives.
        random_negatives: negatives per query.
        seed: the run's seed (each query's draw depends on it and its id only).

    Returns:
        A table with the schema of :func:`candidates_schema`.
    """
    nq, n_items, n_ch = len(query_ids), len(item_ids), len(results)
    keys, channel_of, ranks, scores = [], [], [], []
    for j, res in enumerate(results):
        if res.item_index.shape[0] != nq:
            raise ValueError(f"channel {res.name}: {res.item_index.shape[0]} result rows for {nq} queries")
        k = res.item_index.shape[1]
        q = np.repeat(np.arange(nq, dtype=np.int64), k)
        item = res.item_index.reshape(-1)
        hit = item >= 0
        keys.append(q[hit] * n_items + item[hit])
        channel_of.append(np.full(int(hit.sum()), j, dtype=np.int64))
        ranks.append(np.tile(np.arange(1, k + 1, dtype=np.int32), nq)[hit])
        scores.append(res.scores.reshape(-1)[hit].astype(np.float32))
    all_keys = np.concatenate(keys) if keys else np.zeros(0, np.int64)
    uniq, inverse = np.unique(all_keys, return_inverse=True)
    m = len(uniq)
    rank_mat = np.zeros((m, n_ch), dtype=np.int32)
    score_mat = np.zeros((m, n_ch), dtype=np.float32)
    found = np.zeros((m, n_ch), dtype=bool)
    offset = 0
    for j in range(n_ch):
        rows = inverse[offset : offset + len(keys[j])]
        offset += len(keys[j])
        # reversed, so that a channel listing an item twice keeps its best rank
        rank_mat[rows[::-1], j] = ranks[j][::-1]
        score_mat[rows[::-1], j] = scores[j][::-1]
        found[rows, j] = True

    q_pos, i_pos = uniq // max(n_items, 1), uniq % max(n_items, 1)
    n_found = found.sum(axis=1).astype(np.int8)
    buckets = assign_buckets(found, [r.lexical for r in results])

    # random negatives: per query, items no channel retrieved
    neg_q, neg_i = [], []
    if random_negatives > 0 and n_items:
        starts = np.searchsorted(q_pos, np.arange(nq + 1))
        for qi in range(nq):
            rng = query_rng(seed, query_ids[qi].as_py())
            picked = sample_negatives(rng, random_negatives, eligible, i_pos[starts[qi] : starts[qi + 1]])
            neg_q.append(np.full(len(picked), qi, dtype=np.int64))
            neg_i.append(picked)
    neg_q_arr = np.concatenate(neg_q) if neg_q else np.zeros(0, np.int64)
    neg_i_arr = np.concatenate(neg_i) if neg_i else np.zeros(0, np.int64)
    n_neg = len(neg_q_arr)

    best_rank = np.where(found, rank_mat, np.iinfo(np.int32).max).min(axis=1) if n_ch else np.zeros(m)
    all_q = np.concatenate([q_pos, neg_q_arr])
    all_i = np.concatenate([i_pos, neg_i_arr])
    all_n = np.concatenate([n_found, np.zeros(n_neg, np.int8)])
    all_best = np.concatenate([best_rank, np.full(n_neg, np.iinfo(np.int32).max)])
    order = np.lexsort((all_i, all_best, -all_n.astype(np.int16), all_q))
    found_all = np.concatenate([found, np.zeros((n_neg, n_ch), bool)])[order]
    rank_all = np.concatenate([rank_mat, np.zeros((n_neg, n_ch), np.int32)])[order]
    score_all = np.concatenate([score_mat, np.zeros((n_neg, n_ch), np.float32)])[order]
    bucket_all = np.concatenate([buckets, np.full(n_neg, RANDOM, dtype=object)])[order]

    columns = {
        "query_id": query_ids.take(pa.array(all_q[order])),
        "item_id": item_ids.take(pa.array(all_i[order])),
        "n_channels": pa.array(all_n[order], pa.int8()),
        "bucket": pa.array(bucket_all.tolist(), pa.string()),
    }
    for j, res in enumerate(results):
        columns[f"rank_{res.name}"] = pa.array(rank_all[:, j], pa.int32(), mask=~found_all[:, j])
    for j, res in enumerate(results):
        columns[f"score_{res.name}"] = pa.array(score_all[:, j], pa.float32(), mask=~found_all[:, j])
    return pa.table(columns, schema=candidates_schema([r.name for r in results]))
