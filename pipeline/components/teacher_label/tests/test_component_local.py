"""Local-runner test of the generated component `teacher_label`: KFP's real local runner
runs it on a tiny run prepared by `pipeline/components/conftest.py` (every declared step before
`teacher-label` run through the library), and the test checks what it committed. Generated from the step declaration by `python -m pipeline generate`; do not edit."""

from kfp import local

from pipeline.components.teacher_label import teacher_label


def test_component_commits_what_its_step_writes_under_the_kfp_local_runner(tiny_run):
    run = tiny_run.before("teacher-label")
    local.init(runner=local.SubprocessRunner(use_venv=False), pipeline_root=str(run.parent / "_kfp"),
               raise_on_error=True)
    task = teacher_label(run_uri=str(run), config_yaml=tiny_run.config_yaml)
    tiny_run.check("teacher-label", run, task)
