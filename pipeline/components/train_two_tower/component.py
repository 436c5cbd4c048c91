"""KFP component `train_two_tower`: Train the two-tower retriever from the packaged MiniLM on the curriculum, stage after stage (in-batch and filtered hard negatives, then a graded loss), resumable from checkpoints on the bus.

Generated from the step declaration by `python -m pipeline generate`; do not edit.
"""

from kfp import dsl

from pipeline.components import GPU_STEP_IMAGE


@dsl.component(base_image=GPU_STEP_IMAGE)
def train_two_tower(run_uri: str, config_yaml: str, model: dsl.Output[dsl.Model], report: dsl.Output[dsl.Markdown]) -> str:
    """Run step `train-two-tower` on the bus at `run_uri`; returns the step's record as JSON.

    Args:
        run_uri: the run's root on the data bus (a folder, or s3://bucket/prefix).
        config_yaml: the whole relforge configuration as YAML, without secrets.
        model: Model, from `models/two-tower` on the bus.
        report: Markdown, from `reports/two-tower.md` on the bus.
    """
    from relforge.steps import publish_outputs, run_step_json

    try:
        record = run_step_json("train-two-tower", run_uri, config_yaml)
    finally:  # a step that fails (e.g. a quality gate) still publishes what it wrote: its report says why
        publish_outputs("train-two-tower", run_uri, config_yaml, {"model": model, "report": report})
    return record
