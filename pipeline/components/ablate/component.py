"""KFP component `ablate`: When enabled: the baselines and ablations (untrained MiniLM, human labels, no curriculum, no calibration, stage 3 only), each variant's steps in its own sub-run; step evaluate scores them.

Generated from the step declaration by `python -m pipeline generate`; do not edit.
"""

from kfp import dsl

from pipeline.components import GPU_STEP_IMAGE


@dsl.component(base_image=GPU_STEP_IMAGE)
def ablate(run_uri: str, config_yaml: str, runs: dsl.Output[dsl.Markdown], ablate: str = "") -> str:
    """Run step `ablate` on the bus at `run_uri`; returns the step's record as JSON.

    Args:
        run_uri: the run's root on the data bus (a folder, or s3://bucket/prefix).
        config_yaml: the whole relforge configuration as YAML, without secrets.
        ablate: sets `ablate.enabled` (YAML; empty: unchanged).
        runs: Markdown, from `reports/ablation-runs.md` on the bus.
    """
    from relforge.steps import publish_outputs, run_step_json

    try:
        record = run_step_json("ablate", run_uri, config_yaml, ablate=ablate)
    finally:  # a step that fails (e.g. a quality gate) still publishes what it wrote: its report says why
        publish_outputs("ablate", run_uri, config_yaml, {"runs": runs})
    return record
