"""Retrieval metrics on human judgments, their uncertainty, and a prediction-powered nDCG.

- :func:`per_query_metrics`: nDCG@10 with the grade scale's own gains, Recall@100, the share
  of grade-0 items in the top 10 and the judged share of the top 10, each (but the judged
  share) under two conventions for unjudged items: counted as irrelevant, and judged-only
  (condensed lists). Computed by ir-measures (pytrec_eval), not by hand.
- :func:`summarize`, :func:`compare_systems`: bootstrap intervals over queries and paired
  tests between two systems (scipy.stats).
- :func:`ppi_ndcg`: nDCG@10 with the cascade's labels for unjudged items, their bias
  corrected on items with both labels, with a valid interval (prediction-powered
  inference with a query bootstrap).
- :func:`metrics_by_segment`: the same summaries per query segment (head / tail).

Example:
    >>> import pyarrow as pa
    >>> from relforge.grades import ESCI
    >>> from relforge.evaluate import per_query_metrics, summarize
    >>> run = pa.table({"query_id": ["q1", "q1", "q2"], "item_id": ["a", "x", "c"], "rank": [1, 2, 1]})
    >>> judged = pa.table({"query_id": ["q1", "q1", "q2"], "item_id": ["a", "b", "c"], "grade": [3, 2, 0]})
    >>> table = per_query_metrics(run, judged, ESCI)
    >>> table.column("judged@10").to_pylist()
    [0.5, 1.0]
    >>> summarize(table)["ndcg@10"].n   # q2 has no judged item of positive gain
    1
"""

from relforge.evaluate._inputs import Run, query_segments, read_grades, read_model_gains, read_run
from relforge.evaluate._metrics import (
    MetricSettings,
    default_relevant_grade,
    integer_gains,
    per_query_metrics,
)
from relforge.evaluate._ppi import PPIEstimate, ppi_ndcg
from relforge.evaluate._segments import metrics_by_segment
from relforge.evaluate._stats import (
    MetricSummary,
    PairedComparison,
    bootstrap_mean,
    compare_systems,
    summarize,
)

__all__ = [
    "MetricSettings",
    "MetricSummary",
    "PPIEstimate",
    "PairedComparison",
    "Run",
    "bootstrap_mean",
    "compare_systems",
    "default_relevant_grade",
    "integer_gains",
    "metrics_by_segment",
    "per_query_metrics",
    "ppi_ndcg",
    "query_segments",
    "read_grades",
    "read_model_gains",
    "read_run",
    "summarize",
]
