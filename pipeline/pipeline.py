"""The relforge pipeline: the built steps of DESIGN.md, in order, on one data bus.

Steps exchange data through the bus (``run_uri``), not through KFP artifacts, so the same
definition runs under ``kfp.local`` on a laptop and on Kubeflow Pipelines in a cluster. For a
cluster, :func:`build_pipeline` adds the Kubernetes settings: S3 credentials from a secret,
resources, and a GPU for fine-tuning.
"""

# No `from __future__ import annotations` here: KFP reads the real annotation objects.
from kfp import dsl

from pipeline.components.finetune_tiers import finetune_tiers
from pipeline.components.ingest_esci import ingest_esci
from pipeline.components.mine import mine
from pipeline.components.pull_models import pull_models

#: The Kubernetes secret with the S3 credentials (manifests/base/s3-credentials.example.yaml).
S3_SECRET = "relforge-s3"
_S3_ENV = {
    "AWS_ACCESS_KEY_ID": "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY": "AWS_SECRET_ACCESS_KEY",
    "AWS_ENDPOINT_URL": "AWS_ENDPOINT_URL",
}


def _for_cluster(task: dsl.PipelineTask, cpu: str, memory: str, gpu: bool = False) -> None:
    from kfp import kubernetes

    kubernetes.use_secret_as_env(task, secret_name=S3_SECRET, secret_key_to_env=_S3_ENV)
    task.set_cpu_request(cpu).set_memory_request(memory).set_memory_limit(memory)
    if gpu:
        task.set_accelerator_type("nvidia.com/gpu").set_accelerator_limit(1)
        kubernetes.add_toleration(task, key="nvidia.com/gpu", operator="Exists", effect="NoSchedule")


def build_pipeline(cluster: bool):
    """The pipeline function; ``cluster=True`` adds the Kubernetes settings."""

    @dsl.pipeline(
        name="relforge",
        description="Relevance labels from a calibrated cascade, and a retriever trained on them.",
    )
    def relforge(run_uri: str, config_yaml: str = ""):
        pulled = pull_models(run_uri=run_uri, config_yaml=config_yaml)
        ingested = ingest_esci(run_uri=run_uri, config_yaml=config_yaml)
        mined = mine(run_uri=run_uri, config_yaml=config_yaml).after(ingested, pulled)
        tuned = finetune_tiers(run_uri=run_uri, config_yaml=config_yaml).after(ingested, pulled)
        for task in (pulled, ingested, mined, tuned):
            task.set_caching_options(False)  # the bus's manifests decide what is already done
        if cluster:
            _for_cluster(pulled, "1", "4Gi")
            _for_cluster(ingested, "1", "2Gi")
            _for_cluster(mined, "4", "16Gi")
            _for_cluster(tuned, "8", "32Gi", gpu=True)

    return relforge
