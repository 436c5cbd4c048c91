"""KFP component `export_index`: Encode the catalog with the trained model, build the index (exact or ANN by size), measure its recall@10 against exact search, refuse one under the minimum, publish index, item ids, query encoder and manifest, and search the test queries into `retrieval`.

Generated from the step declaration by `python -m pipeline generate`; do not edit.
"""

from kfp import dsl

from pipeline.components import GPU_STEP_IMAGE


@dsl.component(base_image=GPU_STEP_IMAGE)
def export_index(run_uri: str, config_yaml: str, index: dsl.Output[dsl.Model], report: dsl.Output[dsl.Markdown], metrics: dsl.Output[dsl.Metrics]) -> str:
    """Run step `export-index` on the bus at `run_uri`; returns the step's record as JSON.

    Args:
        run_uri: the run's root on the data bus (a folder, or s3://bucket/prefix).
        config_yaml: the whole relforge configuration as YAML, without secrets.
        index: Model, from `export` on the bus.
        report: Markdown, from `reports/index.md` on the bus.
        metrics: Metrics, from `reports/index-metrics.json` on the bus.
    """
    from relforge.steps import publish_outputs, run_step_json

    try:
        record = run_step_json("export-index", run_uri, config_yaml)
    finally:  # a step that fails (e.g. a quality gate) still publishes what it wrote: its report says why
        publish_outputs("export-index", run_uri, config_yaml, {"index": index, "report": report, "metrics": metrics})
    return record
