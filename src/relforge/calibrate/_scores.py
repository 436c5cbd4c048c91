"""Tier scores of judged pairs, cached on the bus by the tier's fingerprint: a rerun does not rescore.

``cache/scores/<tier>-<fingerprint>`` is a table of the pairs a tier version has scored (query
and item ids, a hash of the texts it read, the probabilities, the measured cost and tokens).
Scoring a set of pairs reads it, scores only the pairs it lacks (a new review, a changed item
text), and writes the union back. A pair the tier failed to score is not cached: the next run
retries it. The scorer is built only when there is something to score, so a rerun on cached
scores loads no model.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa

from relforge.bus import DataBus
from relforge.calibrate._tiers import TierModel
from relforge.logs import get_logger, log_event
from relforge.tiers import Pair, TierScorer

log = get_logger("calibrate.scores")


@dataclass
class TierScores:
    """One tier's scores of a fixed list of pairs.

    Attributes:
        probs: ``(n, K)`` uncalibrated class probabilities (NaN rows where failed).
        cost: ``(n,)`` measured cost per pair (when the pair was scored, cached or now).
        failed: ``(n,)`` pairs the tier could not score (this run).
        errors: why each failed pair failed.
        scored_now: pairs scored in this run (the others came from the cache).
        prepare_seconds: one-off seconds before scoring in this run (the bi-encoder encoding the
            pairs' items once when no run had cached the catalog's vectors), not in ``cost``.
    """

    probs: np.ndarray
    cost: np.ndarray
    failed: np.ndarray
    errors: list[str | None]
    scored_now: int
    prepare_seconds: float = 0.0


def cache_name(tier: TierModel) -> str:
    return f"cache/scores/{tier.name}-{tier.fingerprint}"


def text_hash(query: str, text: str) -> str:
    return hashlib.sha256(f"{query}\0{text}".encode()).hexdigest()[:16]


def score_cached(
    bus: DataBus,
    tier: TierModel,
    make_scorer: Callable[[], TierScorer],
    query_id: list[str],
    item_id: list[str],
    query: list[str],
    text: list[str],
    n_grades: int,
    catalog_texts: list[str] | None = None,
) -> TierScores:
    """Scores of the pairs by ``tier``: cached ones read, the others scored and added to the cache.

    Args:
        make_scorer: builds the tier's scorer (called only if some pair is not cached).
        query_id, item_id, query, text: the pairs, in order.
        catalog_texts: handed to the scorer's ``prepare_items`` before scoring, with the pairs'
            item texts to ``encode``: a bi-encoder without the catalog's cached vectors encodes
            them first, apart, so that the per-pair cost measured here is that of a run whose
            items are encoded once (as ``annotate`` finds them after ``mine``), not that of
            encoding each judged item for one pair.
    """
    n = len(query_id)
    hashes = [text_hash(q, t) for q, t in zip(query, text)]
    probs = np.full((n, n_grades), np.nan, dtype=np.float64)
    cost = np.zeros(n, dtype=np.float64)
    tokens = np.zeros(n, dtype=np.int32)
    have = np.zeros(n, dtype=bool)
    name = cache_name(tier)
    cached: pa.Table | None = None
    if bus.is_committed(name):
        cached = bus.read_table(name)
        index = {
            (q, i, h): r
            for r, (q, i, h) in enumerate(zip(cached.column("query_id").to_pylist(), cached.column("item_id").to_pylist(),
                                               cached.column("text_hash").to_pylist()))
        }
        rows = np.array([index.get((q, i, h), -1) for q, i, h in zip(query_id, item_id, hashes)], dtype=np.int64)
        have = rows >= 0
        if have.any():
            cached_probs = np.asarray(cached.column("probs").to_pylist(), dtype=np.float64)
            probs[have] = cached_probs[rows[have]]
            cost[have] = cached.column("cost").to_numpy()[rows[have]]
            tokens[have] = cached.column("tokens").to_numpy()[rows[have]]
    todo = np.flatnonzero(~have)
    failed = np.zeros(n, dtype=bool)
    errors: list[str | None] = [None] * n
    prepare_seconds = 0.0
    if todo.size:
        log_event(log, "scoring", tier=tier.name, pairs=int(todo.size), cached=int(have.sum()))
        scorer = make_scorer()
        try:
            if catalog_texts is not None:
                scorer.prepare_items(catalog_texts, encode=[text[i] for i in todo])
                prepare_seconds = float(scorer.prepare_seconds)
            scores = scorer.score([Pair(query[i], text[i]) for i in todo])
        finally:
            scorer.close()
        probs[todo] = scores.probs
        cost[todo] = scores.cost
        if scores.tokens is not None:
            tokens[todo] = scores.tokens
        failed[todo] = scores.failed
        for j, i in enumerate(todo):
            errors[i] = scores.errors[j]
        new = todo[~scores.failed]
        if new.size:
            added = pa.table({
                "query_id": pa.array([query_id[i] for i in new], pa.string()),
                "item_id": pa.array([item_id[i] for i in new], pa.string()),
                "text_hash": pa.array([hashes[i] for i in new], pa.string()),
                "probs": pa.array([probs[i].astype(np.float32).tolist() for i in new], pa.list_(pa.float32())),
                "cost": pa.array(cost[new].astype(np.float32), pa.float32()),
                "tokens": pa.array(tokens[new], pa.int32()),
            })
            table = added if cached is None else pa.concat_tables([cached.select(added.column_names), added])
            bus.write_table(name, table, metadata={"tier": tier.name, "model": tier.ref, "fingerprint": tier.fingerprint})
    ok = ~failed
    probs[ok] /= probs[ok].sum(axis=1, keepdims=True)  # float32 rows, summed exactly to 1 in float64
    return TierScores(probs=probs, cost=cost, failed=failed, errors=errors, scored_now=int(todo.size),
                      prepare_seconds=prepare_seconds)
