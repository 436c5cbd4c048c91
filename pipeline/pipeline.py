"""The relforge pipelines, made from the step declarations (:data:`relforge.steps.STEPS`).

A pipeline is a subset of the declared steps (:data:`relforge.steps.PIPELINES`): ``relforge``,
DESIGN.md's pipeline, and ``cold-start``, a catalog alone to a distilled labeler (``pull-models``,
``ingest``, ``synthesize-queries``, ``coldstart-candidates``, ``teacher-label``, ``distill``).
Every step of it is one task (its generated component in ``pipeline/components/``); a
task runs after the tasks whose outputs it reads (:func:`relforge.steps.upstream`). Steps
exchange data through the bus (``run_uri``), not through KFP artifacts, so the same
definition runs under ``kfp.local`` on a laptop and on Kubeflow Pipelines in a cluster. The
pipeline's parameters are ``run_uri``, ``config_yaml`` and every step parameter (an empty
value leaves the configuration as it is). For a cluster, :func:`build_pipeline` adds the
Kubernetes settings of each step's declaration and of the configuration's ``cluster`` section
(:class:`relforge.config.ClusterConfig`): the step image (CPU or GPU), S3 credentials from a
secret, CPU and memory (limits = requests, so a step's ``compute.threads: auto`` follows its
CPU limit), retries, and for GPU steps a GPU, the GPU pool's node selector and tolerations.
"""

# No `from __future__ import annotations` here: KFP reads the real annotation objects.
import importlib
import inspect

from kfp import dsl

from relforge.config import ClusterConfig, GpuPoolConfig
from relforge.step_spec import StepSpec
from relforge.steps import pipeline_steps, upstream

#: The default Kubernetes secret with the S3 credentials (``cluster.s3_secret``;
#: manifests/base/s3-credentials.example.yaml).
S3_SECRET = ClusterConfig.model_fields["s3_secret"].default
_S3_ENV = {"AWS_ACCESS_KEY_ID": "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY": "AWS_SECRET_ACCESS_KEY"}
#: Only for S3 outside AWS: a secret without it is fine (optional).
_S3_ENV_OPTIONAL = {"AWS_ENDPOINT_URL": "AWS_ENDPOINT_URL"}
#: Retries per step on a cluster: every step is safe to re-run (committed work is skipped).
RETRIES = 2


def component_of(step: StepSpec):
    """The generated KFP component of ``step``."""
    module = importlib.import_module(f"pipeline.components.{step.component_name}")
    return getattr(module, step.component_name)


def _for_cluster(task: dsl.PipelineTask, step: StepSpec, settings: ClusterConfig) -> None:
    from kfp import kubernetes

    task.container_spec.image = settings.gpu_step_image if step.image == "gpu" else settings.step_image
    kubernetes.use_secret_as_env(task, secret_name=settings.s3_secret, secret_key_to_env=_S3_ENV)
    kubernetes.use_secret_as_env(task, secret_name=settings.s3_secret, secret_key_to_env=_S3_ENV_OPTIONAL,
                                 optional=True)
    r = step.resources
    task.set_cpu_request(r.cpu).set_cpu_limit(r.cpu)
    task.set_memory_request(r.memory).set_memory_limit(r.memory)
    task.set_retry(num_retries=RETRIES, backoff_duration="60s", backoff_factor=2)
    for key, value in step.pod_labels:
        kubernetes.add_pod_label(task, key, value)
    if r.gpu:
        task.set_accelerator_type("nvidia.com/gpu").set_accelerator_limit(r.gpu)
        for key, value in settings.gpu_pool.node_selector.items():
            kubernetes.add_node_selector(task, key, value)
        for toleration in settings.gpu_pool.tolerations:
            kubernetes.add_toleration(task, **toleration.model_dump(exclude_none=True))


def build_pipeline(
    cluster: bool,
    gpu_pool: GpuPoolConfig | dict | None = None,
    steps: tuple[StepSpec, ...] | None = None,
    settings: ClusterConfig | None = None,
    variant: str = "relforge",
):
    """The pipeline function; ``cluster=True`` adds each step's Kubernetes settings.

    Args:
        cluster: add the Kubernetes settings (images, secret, resources, retries, GPU pool).
        gpu_pool: the GPU pool for GPU steps, ``{"node_selector": {...}, "tolerations": [...]}``
            (default: ``settings.gpu_pool``).
        steps: the steps (default: those of ``variant``).
        settings: the configuration's ``cluster`` section (default: its defaults).
        variant: which pipeline (:data:`relforge.steps.PIPELINES`): ``relforge`` or ``cold-start``;
            the compiled pipeline is named ``relforge`` or ``relforge-<variant>``.
    """
    steps = steps if steps is not None else pipeline_steps(variant)
    settings = settings or ClusterConfig()
    if gpu_pool is not None:
        settings = settings.model_copy(update={"gpu_pool": GpuPoolConfig.model_validate(
            gpu_pool.model_dump() if isinstance(gpu_pool, GpuPoolConfig) else gpu_pool)})
    params = [p for s in steps for p in s.params]
    names = ["run_uri", "config_yaml", *(p.identifier for p in params)]

    def relforge(*args, **kwargs):
        kwargs.update(zip(names, args))  # KFP passes the parameters positionally, in signature order
        run_uri, config_yaml = kwargs["run_uri"], kwargs["config_yaml"]
        tasks: dict[str, dsl.PipelineTask] = {}
        for step in steps:
            values = {p.identifier: kwargs[p.identifier] for p in step.params}
            task = component_of(step)(run_uri=run_uri, config_yaml=config_yaml, **values)
            task.set_display_name(step.name)
            task.set_caching_options(False)  # the bus's manifests decide what is already done
            before = [tasks[u.name] for u in upstream(step, steps)]
            if before:
                task.after(*before)
            if cluster:
                _for_cluster(task, step, settings)
            tasks[step.name] = task

    signature = [
        inspect.Parameter("run_uri", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=str),
        inspect.Parameter("config_yaml", inspect.Parameter.POSITIONAL_OR_KEYWORD, default="", annotation=str),
        *(inspect.Parameter(p.identifier, inspect.Parameter.POSITIONAL_OR_KEYWORD, default="", annotation=str)
          for p in params),
    ]
    relforge.__signature__ = inspect.Signature(signature)
    relforge.__annotations__ = {p.name: p.annotation for p in signature}
    return dsl.pipeline(
        name="relforge" if variant == "relforge" else f"relforge-{variant}",
        description=DESCRIPTIONS.get(variant, f"relforge's {variant} pipeline."),
    )(relforge)


#: What each pipeline does, in one sentence (the compiled pipeline's description).
DESCRIPTIONS = {
    "relforge": "Relevance labels from a calibrated cascade, and a retriever trained on them.",
    "cold-start": "From a catalog alone: synthetic queries, BM25 hard negatives, teacher labels and a distilled "
                  "labeler that joins the cascade as a tier.",
}
