"""Compile the pipeline for a cluster and start a run on Kubeflow Pipelines.

``relforge submit`` and ``python -m pipeline submit`` both call :func:`submit`: it checks and
trims the configuration for the cluster (:func:`relforge.cluster.cluster_run`: no local paths,
the user's data as ``s3://`` URIs), compiles the pipeline with the configuration's ``cluster``
section (step images, S3 secret, GPU pool), and creates the run with the kfp SDK client
(``Client.create_run_from_pipeline_package``: the experiment is looked up by name and created
if missing, then the run is created with the compiled spec inline).

A KFP behind an authenticating proxy takes a bearer token from ``RELFORGE_KFP_TOKEN``.

Example:
    >>> submit("https://kfp.example.com", "s3://bucket/runs/r1", load_config("configs/cluster.yaml"),
    ...        namespace="team-a")                                         # doctest: +SKIP
"""

from __future__ import annotations

import os
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path

from relforge.config import ClusterConfig, RelforgeConfig

#: The environment variable holding a bearer token for the KFP API (never a command-line option).
TOKEN_ENV = "RELFORGE_KFP_TOKEN"


def compile_pipeline(out: Path, settings: ClusterConfig | None = None, variant: str = "relforge") -> Path:
    """Compile the cluster pipeline ``variant`` (Kubernetes settings from ``settings``) to ``out``."""
    from kfp import compiler

    from pipeline.pipeline import build_pipeline

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    compiler.Compiler().compile(build_pipeline(cluster=True, settings=settings, variant=variant),
                                package_path=str(out))
    return out


@dataclass
class Submitted:
    """A run started on Kubeflow Pipelines."""

    run_id: str
    experiment: str
    url: str
    arguments: dict[str, str]
    dropped: list[str] = field(default_factory=list)


def submit(
    host: str,
    run: str,
    config: RelforgeConfig,
    *,
    namespace: str | None = None,
    experiment: str = "relforge",
    run_name: str | None = None,
    variant: str = "relforge",
) -> Submitted:
    """Compile the pipeline and create a run of it on the KFP API at ``host``.

    Args:
        host: the KFP API, e.g. ``https://kubeflow.example.com/pipeline`` or a port-forward.
        run: the run's root on S3, ``s3://bucket/prefix``.
        config: the run's configuration (checked and trimmed for the cluster).
        namespace: the KFP profile namespace (multi-user KFP); unset: the client's default.
        experiment: the experiment's name (created if missing).
        run_name: the run's display name (default: ``relforge <run>``).
        variant: the pipeline (:data:`relforge.steps.PIPELINES`): ``relforge`` or ``cold-start``.

    Raises:
        ConfigError: a setting the cluster's pods cannot use (a local path, a non-``s3://`` run).
    """
    import kfp

    from relforge.cluster import cluster_run
    from relforge.steps import pipeline_steps

    sent = cluster_run(config, run, [p for s in pipeline_steps(variant) for p in s.params])
    settings = config.cluster
    with warnings.catch_warnings():  # "This client only works with Kubeflow Pipeline v2.0.0-beta.2 and later"
        warnings.simplefilter("ignore", FutureWarning)
        client = kfp.Client(host=host, namespace=namespace or "kubeflow",
                            existing_token=os.environ.get(TOKEN_ENV) or None)
    with tempfile.TemporaryDirectory(prefix="relforge-submit-") as tmp:
        package = compile_pipeline(Path(tmp) / "relforge.yaml", settings, variant=variant)
        result = client.create_run_from_pipeline_package(
            str(package),
            arguments=sent.arguments,
            run_name=run_name or f"relforge{'' if variant == 'relforge' else '-' + variant} {sent.arguments['run_uri']}",
            experiment_name=experiment,
            namespace=namespace,
            pipeline_root=settings.pipeline_root,
            service_account=settings.service_account,
        )
    return Submitted(run_id=result.run_id, experiment=experiment, url=f"{host.rstrip('/')}/#/runs/details/{result.run_id}",
                     arguments=sent.arguments, dropped=sent.dropped)
