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

from relforge._lazy import lazy_exports

# name -> the private module that defines it, imported on first use (scipy, ir-measures are heavy)
_EXPORTS = {
    "Run": "relforge.evaluate._inputs",
    "query_segments": "relforge.evaluate._inputs",
    "read_grades": "relforge.evaluate._inputs",
    "read_model_gains": "relforge.evaluate._inputs",
    "read_run": "relforge.evaluate._inputs",
    "MetricSettings": "relforge.evaluate._metrics",
    "default_relevant_grade": "relforge.evaluate._metrics",
    "integer_gains": "relforge.evaluate._metrics",
    "per_query_metrics": "relforge.evaluate._metrics",
    "PPIEstimate": "relforge.evaluate._ppi",
    "ppi_ndcg": "relforge.evaluate._ppi",
    "metrics_by_segment": "relforge.evaluate._segments",
    "MetricSummary": "relforge.evaluate._stats",
    "PairedComparison": "relforge.evaluate._stats",
    "bootstrap_mean": "relforge.evaluate._stats",
    "compare_systems": "relforge.evaluate._stats",
    "summarize": "relforge.evaluate._stats",
    "run_evaluate": "relforge.evaluate._step",
    "compare_rounds": "relforge.evaluate.rounds",
}
__all__ = list(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

from relforge.evaluate.step import STEP as STEP  # the step declaration, re-exported
