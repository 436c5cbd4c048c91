"""Local-runner test of the generated component `finetune_tiers`: KFP's real local runner
runs it on a tiny run prepared by `pipeline/components/conftest.py` (every declared step before
`finetune-tiers` run through the library), and the test checks what it committed. Generated from the step declaration by `python -m pipeline generate`; do not edit."""

from kfp import local

from pipeline.components.finetune_tiers import finetune_tiers


def test_component_commits_what_its_step_writes_under_the_kfp_local_runner(tiny_run):
    run = tiny_run.before("finetune-tiers")
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(run.parent / "_kfp"),
               raise_on_error=True)
    task = finetune_tiers(run_uri=str(run), config_yaml=tiny_run.config_yaml)
    tiny_run.check("finetune-tiers", run, task)
