"""Metrics per query segment (head / torso / tail), where the queries table has one."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from relforge.evaluate._inputs import query_segments
from relforge.evaluate._stats import MetricSummary, summarize


def metrics_by_segment(
    per_query: pa.Table,
    queries: pa.Table,
    metrics: list[str] | None = None,
    *,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
) -> dict[str, dict[str, MetricSummary]]:
    """Each metric's mean and bootstrap interval over all queries and per ``segment``.

    Args:
        per_query: a table from :func:`per_query_metrics`.
        queries: the ``queries`` table (``query_id``, optional ``segment``).
        metrics: the columns (default: every float column).
        confidence: the intervals' level.
        n_resamples: bootstrap resamples.
        seed: the resampling seed.

    Returns:
        ``{"all": {...}, "<segment>": {...}, ...}``; only ``"all"`` when ``queries`` has no
        ``segment`` column. Queries with a null segment form ``"none"``; evaluated queries
        missing from ``queries`` form ``"unknown"``.

    Example:
        >>> by = metrics_by_segment(per_query, queries)                  # doctest: +SKIP
        >>> by["tail"]["ndcg@10"].mean, by["head"]["ndcg@10"].mean        # doctest: +SKIP
    """
    kw = {"confidence": confidence, "n_resamples": n_resamples, "seed": seed}
    out = {"all": summarize(per_query, metrics, **kw)}
    segments = query_segments(queries)
    if not segments:
        return out
    labels = pa.array([segments.get(q, "unknown") for q in per_query.column("query_id").to_pylist()], pa.string())
    for segment in sorted(set(labels.to_pylist())):
        part = per_query.filter(pc.equal(labels, segment))
        out[segment] = summarize(part, metrics, **kw)
    return out
