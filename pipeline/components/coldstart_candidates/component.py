"""KFP component `coldstart_candidates`: For every synthetic query, its source item, hard negatives from the mining channel (BM25) and random items: the cold-start sub-run's candidates.

Generated from the step declaration by `python -m pipeline generate`; do not edit.
"""

from kfp import dsl

from pipeline.components import STEP_IMAGE


@dsl.component(base_image=STEP_IMAGE)
def coldstart_candidates(run_uri: str, config_yaml: str) -> str:
    """Run step `coldstart-candidates` on the bus at `run_uri`; returns the step's record as JSON.

    Args:
        run_uri: the run's root on the data bus (a folder, or s3://bucket/prefix).
        config_yaml: the whole relforge configuration as YAML, without secrets.
    """
    from relforge.steps import publish_outputs, run_step_json

    try:
        record = run_step_json("coldstart-candidates", run_uri, config_yaml)
    finally:  # a step that fails (e.g. a quality gate) still publishes what it wrote: its report says why
        publish_outputs("coldstart-candidates", run_uri, config_yaml, {})
    return record
