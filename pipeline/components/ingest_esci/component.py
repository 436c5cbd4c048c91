"""KFP component `ingest-esci`: Reads the ESCI-150 data shipped in the image into `catalog`, `queries` (with the query-level split) and `judgments`."""

from kfp import dsl

from pipeline.components import STEP_IMAGE


@dsl.component(base_image=STEP_IMAGE)
def ingest_esci(run_uri: str, config_yaml: str) -> str:
    """Run step `ingest-esci` on the bus at `run_uri`; returns the step's JSON summary."""
    from relforge.steps import run_step_json

    return run_step_json("ingest-esci", run_uri, config_yaml)
