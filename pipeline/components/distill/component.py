"""KFP component `distill`: Train the student (the tier-1 cross-encoder by default) on the teacher's hard or soft labels, calibrate it on the run's human judgments where there are any, and write it as the tier folder models/<name>.

Generated from the step declaration by `python -m pipeline generate`; do not edit.
"""

from kfp import dsl

from pipeline.components import GPU_STEP_IMAGE


@dsl.component(base_image=GPU_STEP_IMAGE)
def distill(run_uri: str, config_yaml: str, report: dsl.Output[dsl.Markdown], targets: str = "", student: str = "") -> str:
    """Run step `distill` on the bus at `run_uri`; returns the step's record as JSON.

    Args:
        run_uri: the run's root on the data bus (a folder, or s3://bucket/prefix).
        config_yaml: the whole relforge configuration as YAML, without secrets.
        targets: sets `coldstart.targets` (YAML; empty: unchanged).
        student: sets `coldstart.student` (YAML; empty: unchanged).
        report: Markdown, from `reports/coldstart-distill.md` on the bus.
    """
    from relforge.steps import publish_outputs, run_step_json

    try:
        record = run_step_json("distill", run_uri, config_yaml, targets=targets, student=student)
    finally:  # a step that fails (e.g. a quality gate) still publishes what it wrote: its report says why
        publish_outputs("distill", run_uri, config_yaml, {"report": report})
    return record
