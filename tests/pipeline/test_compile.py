"""The KFP pipeline compiles, and the cluster spec carries the S3 secret and a GPU for fine-tuning."""

import yaml
from pipeline.__main__ import compile_pipeline
from pipeline.pipeline import S3_SECRET


def test_cluster_pipeline_compiles_with_kubernetes_settings(tmp_path):
    path = compile_pipeline(tmp_path / "relforge.yaml")
    docs = list(yaml.safe_load_all(path.read_text()))
    spec, platform = docs[0], docs[1]
    tasks = spec["root"]["dag"]["tasks"]
    assert set(tasks) == {"pull-models", "ingest-esci", "mine", "finetune-tiers"}
    assert set(tasks["mine"]["dependentTasks"]) == {"ingest-esci", "pull-models"}
    executors = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    assert all(e["secretAsEnv"][0]["secretName"] == S3_SECRET for e in executors.values())
    resources = spec["deploymentSpec"]["executors"]["exec-finetune-tiers"]["container"]["resources"]
    assert resources["accelerator"]["resourceType"] == "nvidia.com/gpu"
