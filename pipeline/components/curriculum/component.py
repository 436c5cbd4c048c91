"""KFP component `curriculum`: Give every labelled candidate of the training queries a difficulty level (1-5) and a training stage (1-3) by the configured rules, and report the counts and each level's grade mix.

Generated from the step declaration by `python -m pipeline generate`; do not edit.
"""

from kfp import dsl

from pipeline.components import STEP_IMAGE


@dsl.component(base_image=STEP_IMAGE)
def curriculum(run_uri: str, config_yaml: str, report: dsl.Output[dsl.Markdown], metrics: dsl.Output[dsl.Metrics]) -> str:
    """Run step `curriculum` on the bus at `run_uri`; returns the step's record as JSON.

    Args:
        run_uri: the run's root on the data bus (a folder, or s3://bucket/prefix).
        config_yaml: the whole relforge configuration as YAML, without secrets.
        report: Markdown, from `reports/curriculum.md` on the bus.
        metrics: Metrics, from `reports/curriculum-metrics.json` on the bus.
    """
    from relforge.steps import publish_outputs, run_step_json

    try:
        record = run_step_json("curriculum", run_uri, config_yaml)
    finally:  # a step that fails (e.g. a quality gate) still publishes what it wrote: its report says why
        publish_outputs("curriculum", run_uri, config_yaml, {"report": report, "metrics": metrics})
    return record
