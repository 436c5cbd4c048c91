"""KFP component `synthesize_queries`: Have a generator tier write search queries for a stratified sample of catalog items, filter them (length, title copies, the BM25 round trip, exact and near duplicates) and make the kept ones the queries of the cold-start sub-run.

Generated from the step declaration by `python -m pipeline generate`; do not edit.
"""

from kfp import dsl

from pipeline.components import STEP_IMAGE


@dsl.component(base_image=STEP_IMAGE)
def synthesize_queries(run_uri: str, config_yaml: str, report: dsl.Output[dsl.Markdown], synthetic_items: str = "", queries_per_item: str = "", generator: str = "") -> str:
    """Run step `synthesize-queries` on the bus at `run_uri`; returns the step's record as JSON.

    Args:
        run_uri: the run's root on the data bus (a folder, or s3://bucket/prefix).
        config_yaml: the whole relforge configuration as YAML, without secrets.
        synthetic_items: sets `coldstart.items` (YAML; empty: unchanged).
        queries_per_item: sets `coldstart.queries_per_item` (YAML; empty: unchanged).
        generator: sets `coldstart.generator` (YAML; empty: unchanged).
        report: Markdown, from `reports/coldstart-queries.md` on the bus.
    """
    from relforge.steps import publish_outputs, run_step_json

    try:
        record = run_step_json("synthesize-queries", run_uri, config_yaml, synthetic_items=synthetic_items, queries_per_item=queries_per_item, generator=generator)
    finally:  # a step that fails (e.g. a quality gate) still publishes what it wrote: its report says why
        publish_outputs("synthesize-queries", run_uri, config_yaml, {"report": report})
    return record
