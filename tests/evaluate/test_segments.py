"""Metrics per query segment."""

from __future__ import annotations

import pyarrow as pa

from relforge.evaluate import metrics_by_segment


def test_segments_split_the_queries():
    per_query = pa.table({"query_id": ["h1", "h2", "t1", "t2", "x"], "ndcg@10": [0.9, 0.8, 0.3, 0.1, 0.5]})
    queries = pa.table({"query_id": ["h1", "h2", "t1", "t2"], "query": ["a"] * 4, "segment": ["head", "head", "tail", "tail"]})
    by = metrics_by_segment(per_query, queries, n_resamples=200)
    assert set(by) == {"all", "head", "tail", "unknown"}
    assert abs(by["head"]["ndcg@10"].mean - 0.85) < 1e-12 and by["tail"]["ndcg@10"].n == 2
    assert by["all"]["ndcg@10"].n == 5


def test_no_segment_column_gives_only_the_whole():
    per_query = pa.table({"query_id": ["a", "b"], "ndcg@10": [0.2, 0.4]})
    by = metrics_by_segment(per_query, pa.table({"query_id": ["a", "b"], "query": ["x", "y"]}), n_resamples=100)
    assert list(by) == ["all"]
