"""KFP component `mine`: Retrieves candidates with every configured channel and writes `candidates` (per-channel ranks and scores, buckets) plus the mining report."""

from kfp import dsl

from pipeline.components import STEP_IMAGE


@dsl.component(base_image=STEP_IMAGE)
def mine(run_uri: str, config_yaml: str) -> str:
    """Run step `mine` on the bus at `run_uri`; returns the step's JSON summary."""
    from relforge.steps import run_step_json

    return run_step_json("mine", run_uri, config_yaml)
