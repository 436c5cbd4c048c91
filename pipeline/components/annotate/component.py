"""KFP component `annotate`: Label every candidate with the calibrated cascade (tier k scores only the pairs the tiers below did not accept), in committed shards with a cost ledger, and write the review queue for human annotators.

Generated from the step declaration by `python -m pipeline generate`; do not edit.
"""

from kfp import dsl

from pipeline.components import STEP_IMAGE


@dsl.component(base_image=STEP_IMAGE)
def annotate(run_uri: str, config_yaml: str, report: dsl.Output[dsl.Markdown], metrics: dsl.Output[dsl.Metrics], max_budget: str = "", shard_rows: str = "", splits: str = "", max_queries: str = "", review_budget: str = "", blind: str = "") -> str:
    """Run step `annotate` on the bus at `run_uri`; returns the step's record as JSON.

    Args:
        run_uri: the run's root on the data bus (a folder, or s3://bucket/prefix).
        config_yaml: the whole relforge configuration as YAML, without secrets.
        max_budget: sets `annotate.max_budget` (YAML; empty: unchanged).
        shard_rows: sets `annotate.shard_rows` (YAML; empty: unchanged).
        splits: sets `annotate.splits` (YAML; empty: unchanged).
        max_queries: sets `annotate.max_queries` (YAML; empty: unchanged).
        review_budget: sets `review.budget` (YAML; empty: unchanged).
        blind: sets `review.blind` (YAML; empty: unchanged).
        report: Markdown, from `reports/annotate.md` on the bus.
        metrics: Metrics, from `reports/annotate-metrics.json` on the bus.
    """
    from relforge.steps import publish_outputs, run_step_json

    try:
        record = run_step_json("annotate", run_uri, config_yaml, max_budget=max_budget, shard_rows=shard_rows, splits=splits, max_queries=max_queries, review_budget=review_budget, blind=blind)
    finally:  # a step that fails (e.g. a quality gate) still publishes what it wrote: its report says why
        publish_outputs("annotate", run_uri, config_yaml, {"report": report, "metrics": metrics})
    return record
