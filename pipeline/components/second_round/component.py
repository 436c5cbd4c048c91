"""KFP component `second_round`: When enabled: register the trained retriever as a fourth mining channel and run mine, annotate, curriculum, train-two-tower and export-index again in a sub-run, then report what the round changed.

Generated from the step declaration by `python -m pipeline generate`; do not edit.
"""

from kfp import dsl

from pipeline.components import GPU_STEP_IMAGE


@dsl.component(base_image=GPU_STEP_IMAGE)
def second_round(run_uri: str, config_yaml: str, report: dsl.Output[dsl.Markdown], second_round: str = "") -> str:
    """Run step `second-round` on the bus at `run_uri`; returns the step's record as JSON.

    Args:
        run_uri: the run's root on the data bus (a folder, or s3://bucket/prefix).
        config_yaml: the whole relforge configuration as YAML, without secrets.
        second_round: sets `second_round.enabled` (YAML; empty: unchanged).
        report: Markdown, from `reports/second-round.md` on the bus.
    """
    from relforge.steps import publish_outputs, run_step_json

    try:
        record = run_step_json("second-round", run_uri, config_yaml, second_round=second_round)
    finally:  # a step that fails (e.g. a quality gate) still publishes what it wrote: its report says why
        publish_outputs("second-round", run_uri, config_yaml, {"report": report})
    return record
