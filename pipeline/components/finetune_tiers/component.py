"""KFP component `finetune_tiers`: Fine-tune every tier on the human train split (early stopping and model selection on calib) and write each tier's model folder to models/<tier>.

Generated from the step declaration by `python -m pipeline generate`; do not edit.
"""

from kfp import dsl

from pipeline.components import GPU_STEP_IMAGE


@dsl.component(base_image=GPU_STEP_IMAGE)
def finetune_tiers(run_uri: str, config_yaml: str, report: dsl.Output[dsl.Markdown], mode: str = "", head: str = "", balance: str = "", tier: str = "", max_train_pairs: str = "") -> str:
    """Run step `finetune-tiers` on the bus at `run_uri`; returns the step's record as JSON.

    Args:
        run_uri: the run's root on the data bus (a folder, or s3://bucket/prefix).
        config_yaml: the whole relforge configuration as YAML, without secrets.
        mode: sets `finetune.llm_mode` (YAML; empty: unchanged).
        head: sets `finetune.head` (YAML; empty: unchanged).
        balance: sets `finetune.balance` (YAML; empty: unchanged).
        tier: sets `finetune.tiers` (YAML; empty: unchanged).
        max_train_pairs: sets `finetune.max_train_pairs` (YAML; empty: unchanged).
        report: Markdown, from `reports/finetune.md` on the bus.
    """
    from relforge.steps import publish_outputs, run_step_json

    try:
        record = run_step_json("finetune-tiers", run_uri, config_yaml, mode=mode, head=head, balance=balance, tier=tier, max_train_pairs=max_train_pairs)
    finally:  # a step that fails (e.g. a quality gate) still publishes what it wrote: its report says why
        publish_outputs("finetune-tiers", run_uri, config_yaml, {"report": report})
    return record
