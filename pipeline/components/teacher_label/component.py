"""KFP component `teacher_label`: Grade every synthetic candidate with the teacher (the top tier, a named tier, or the calibrated cascade), in committed shards; pairs it failed to score are never labelled.

Generated from the step declaration by `python -m pipeline generate`; do not edit.
"""

from kfp import dsl

from pipeline.components import STEP_IMAGE


@dsl.component(base_image=STEP_IMAGE)
def teacher_label(run_uri: str, config_yaml: str, teacher: str = "") -> str:
    """Run step `teacher-label` on the bus at `run_uri`; returns the step's record as JSON.

    Args:
        run_uri: the run's root on the data bus (a folder, or s3://bucket/prefix).
        config_yaml: the whole relforge configuration as YAML, without secrets.
        teacher: sets `coldstart.teacher` (YAML; empty: unchanged).
    """
    from relforge.steps import publish_outputs, run_step_json

    try:
        record = run_step_json("teacher-label", run_uri, config_yaml, teacher=teacher)
    finally:  # a step that fails (e.g. a quality gate) still publishes what it wrote: its report says why
        publish_outputs("teacher-label", run_uri, config_yaml, {})
    return record
