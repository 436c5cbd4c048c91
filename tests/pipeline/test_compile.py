"""The KFP pipeline compiles from the step declarations: one task per step, its edges from what it
reads, and on a cluster each step's declared resources, retries, the S3 secret and the GPU pool."""

import yaml
from pipeline.__main__ import compile_pipeline
from pipeline.pipeline import RETRIES, S3_SECRET

from relforge.steps import PIPELINES, upstream

STEPS = PIPELINES["relforge"]  # the default pipeline's steps


def _compiled(tmp_path):
    path = compile_pipeline(tmp_path / "relforge.yaml")
    return path, list(yaml.safe_load_all(path.read_text()))


def test_cluster_pipeline_has_one_task_per_declared_step_with_its_edges(tmp_path):
    _, (spec, _platform) = _compiled(tmp_path)
    tasks = spec["root"]["dag"]["tasks"]
    assert set(tasks) == {s.name for s in STEPS}
    for step in STEPS:
        assert set(tasks[step.name].get("dependentTasks", [])) == {u.name for u in upstream(step, STEPS)}, step.name
        assert tasks[step.name]["retryPolicy"]["maxRetryCount"] == RETRIES
    params = spec["root"]["inputDefinitions"]["parameters"]
    assert {"run_uri", "config_yaml"} | {p.identifier for s in STEPS for p in s.params} == set(params)


def test_cluster_settings_follow_each_declaration(tmp_path):
    _, (spec, platform) = _compiled(tmp_path)
    executors = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    for step in STEPS:
        name = f"exec-{step.name}"
        assert executors[name]["secretAsEnv"][0]["secretName"] == S3_SECRET
        resources = spec["deploymentSpec"]["executors"][name]["container"]["resources"]
        assert resources["resourceCpuRequest"] == resources["resourceCpuLimit"] == step.resources.cpu
        assert resources["resourceMemoryLimit"] == step.resources.memory
        if step.resources.gpu:
            assert resources["accelerator"]["resourceType"] == "nvidia.com/gpu"
            assert executors[name]["tolerations"][0]["key"] == "nvidia.com/gpu"
        else:
            assert "accelerator" not in resources


def test_kfp_reads_the_compiled_spec_back(tmp_path):
    from kfp.components import load_component_from_file

    path, _ = _compiled(tmp_path)
    pipeline = load_component_from_file(str(path))
    assert pipeline.name == "relforge"


def test_the_cold_start_pipeline_has_its_steps_only_with_their_edges(tmp_path):
    steps = PIPELINES["cold-start"]
    path = compile_pipeline(tmp_path / "cold-start.yaml", variant="cold-start")
    spec, _platform = list(yaml.safe_load_all(path.read_text()))
    tasks = spec["root"]["dag"]["tasks"]
    assert set(tasks) == {"pull-models", "ingest", "synthesize-queries", "coldstart-candidates", "teacher-label",
                          "distill"}
    for step in steps:
        assert set(tasks[step.name].get("dependentTasks", [])) == {u.name for u in upstream(step, steps)}, step.name
    assert set(tasks["coldstart-candidates"]["dependentTasks"]) == {"synthesize-queries"}
    assert "ingest" in tasks["synthesize-queries"]["dependentTasks"]
    params = spec["root"]["inputDefinitions"]["parameters"]
    assert {"run_uri", "config_yaml"} | {p.identifier for s in steps for p in s.params} == set(params)
    assert spec["pipelineInfo"]["name"] == "relforge-cold-start"
