"""KFP component `finetune-tiers`: Fine-tunes the tier models on the human train split and puts them on the bus under `models/tier*`."""

from kfp import dsl

from pipeline.components import GPU_STEP_IMAGE


@dsl.component(base_image=GPU_STEP_IMAGE)
def finetune_tiers(run_uri: str, config_yaml: str) -> str:
    """Run step `finetune-tiers` on the bus at `run_uri`; returns the step's JSON summary."""
    from relforge.steps import run_step_json

    return run_step_json("finetune-tiers", run_uri, config_yaml)
