"""KFP component `mine`: Retrieve candidates with every configured channel (BM25, character n-grams, dense) and write candidates: per (query, item) each channel's rank and score, and a bucket from their agreement.

Generated from the step declaration by `python -m pipeline generate`; do not edit.
"""

from kfp import dsl

from pipeline.components import STEP_IMAGE


@dsl.component(base_image=STEP_IMAGE)
def mine(run_uri: str, config_yaml: str, report: dsl.Output[dsl.Markdown]) -> str:
    """Run step `mine` on the bus at `run_uri`; returns the step's record as JSON.

    Args:
        run_uri: the run's root on the data bus (a folder, or s3://bucket/prefix).
        config_yaml: the whole relforge configuration as YAML, without secrets.
        report: Markdown, from `reports/mining.md` on the bus.
    """
    from relforge.steps import publish_outputs, run_step_json

    try:
        record = run_step_json("mine", run_uri, config_yaml)
    finally:  # a step that fails (e.g. a quality gate) still publishes what it wrote: its report says why
        publish_outputs("mine", run_uri, config_yaml, {"report": report})
    return record
