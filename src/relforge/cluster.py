"""What a run on a cluster is sent: the configuration less everything that only means something
on the submitter's machine.

``relforge submit`` (and ``python -m pipeline submit``) send the run's configuration to
Kubeflow Pipelines as the pipeline parameter ``config_yaml``; each step's pod reads it. A
setting that names the submitter's machine would be wrong there, so :func:`cluster_run`

- **drops** ``models.cache_dir`` (the step image's ``RELFORGE_CACHE``, where its packaged models
  are, applies), the S3 keys (the pods read the Secret ``cluster.s3_secret``) and a
  ``bus.endpoint_url`` on a loopback address (the Secret's ``AWS_ENDPOINT_URL`` applies);
- **refuses**, naming the field, a run URI that is not ``s3://``, a data file
  (``ingest.catalog`` / ``queries`` / ``judgments``) that is not ``s3://``, a model reference
  or prompt file that is a local path (models may be ``s3://``, ``packaged:`` or a hub id), and
  a ``REPLACE-ME`` placeholder of the cluster profile left in place;
- lists each changed step parameter (e.g. ``catalog``) as a pipeline argument as well, so that
  the run's page in the KFP UI shows the user's data URIs.

Example:
    >>> run = cluster_run(load_config("configs/cluster.yaml"), "s3://bucket/runs/r1")   # doctest: +SKIP
    >>> run.arguments["run_uri"]                                                         # doctest: +SKIP
    's3://bucket/runs/r1'
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import yaml

from relforge.config import RelforgeConfig
from relforge.errors import ConfigError
from relforge.step_spec import Param

#: Data files a run on a cluster reads: ``s3://`` only.
DATA_FIELDS = ("ingest.catalog", "ingest.queries", "ingest.judgments")
#: What marks a value of ``configs/cluster.yaml`` the user must replace.
PLACEHOLDER = "REPLACE-ME"
#: Model references outside ``tiers.specs`` (which are checked per tier: ``model``, ``prompt``).
MODEL_FIELDS = ("models.embedder", "models.tier0", "models.tier1", "models.tier2", "models.tier3",
                "mine.dense_model")


@dataclass
class ClusterRun:
    """What is sent to Kubeflow Pipelines for one run.

    Attributes:
        arguments: the pipeline arguments: ``run_uri``, ``config_yaml`` and each changed step parameter.
        dropped: ``field: why`` for every setting left out.
    """

    arguments: dict[str, str]
    dropped: list[str] = field(default_factory=list)

    @property
    def config_yaml(self) -> str:
        return self.arguments["config_yaml"]


def is_local_path(value: str) -> bool:
    """Whether ``value`` names a file or folder on this machine (not ``s3://``, ``packaged:`` or a hub id).

    Example:
        >>> [is_local_path(v) for v in ("s3://b/m", "packaged:minilm-l6", "google/gemma-2b", "/data/m", "./m")]
        [False, False, False, True, True]
    """
    text = str(value)
    if "://" in text:
        return text.startswith("file://")
    if text.startswith("packaged:"):
        return False
    if text.startswith(("/", "~", "./", "../", ".\\")) or (len(text) > 1 and text[1] == ":"):
        return True
    try:
        return Path(text).expanduser().exists()
    except OSError:
        return False


def _get(data: dict[str, Any], dotted: str) -> Any:
    node: Any = data
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def _loopback(url: str) -> bool:
    host = urlparse(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback or ipaddress.ip_address(host).is_unspecified
    except ValueError:
        return False


def check_for_cluster(config: RelforgeConfig, run_uri: str) -> None:
    """Raise :class:`ConfigError`, naming the field, for a setting a pod cannot use (see the module docstring)."""
    if not run_uri.startswith("s3://") or len(run_uri.rstrip("/")) <= len("s3://"):
        raise ConfigError(f"--run {run_uri}: a run on a cluster lives on S3: give s3://bucket/prefix")
    data = config.model_dump(mode="json")
    problems = []
    for key in DATA_FIELDS:
        value = _get(data, key)
        if value and not str(value).startswith("s3://"):
            problems.append(f"{key}: {value} is not an s3:// URI; the cluster's pods cannot read files on this "
                            "machine: upload it (aws s3 cp) and give its s3:// URI")
    for key in MODEL_FIELDS:
        value = _get(data, key)
        if value and is_local_path(str(value)):
            problems.append(f"{key}: {value} is a local path; on a cluster give an s3:// folder, a packaged: model "
                            "or a hub id")
    for name, spec in config.tiers.specs.items():
        if spec.model and is_local_path(spec.model):
            problems.append(f"tiers.specs.{name}.model: {spec.model} is a local path; on a cluster give an s3:// "
                            "folder, a packaged: model or a hub id")
        if spec.prompt:
            problems.append(f"tiers.specs.{name}.prompt: {spec.prompt} is a file on this machine, which the "
                            "cluster's pods cannot read; leave it unset (the shipped prompt of the grade scale)")
    problems += [f"{key}: {value} is a placeholder of the cluster profile; replace it with yours"
                 for key, value in _leaves(data) if PLACEHOLDER in value]
    if problems:
        raise ConfigError("; ".join(problems))


def _leaves(node: Any, prefix: str = "") -> list[tuple[str, str]]:
    """The string settings as ``(dotted key, value)``."""
    if isinstance(node, dict):
        return [kv for k, v in node.items() for kv in _leaves(v, f"{prefix}{k}.")]
    if isinstance(node, list):
        return [kv for i, v in enumerate(node) for kv in _leaves(v, f"{prefix}{i}.")]
    return [(prefix.rstrip("."), node)] if isinstance(node, str) else []


def cluster_run(config: RelforgeConfig, run_uri: str, params: Iterable[Param] = ()) -> ClusterRun:
    """The pipeline arguments of a run on a cluster (see the module docstring).

    Args:
        config: the run's configuration as the submitter loaded it.
        run_uri: the run's root, ``s3://bucket/prefix``.
        params: the step parameters (``relforge.steps``); each whose key differs from the
            default becomes a pipeline argument too.

    Raises:
        ConfigError: naming the field, for a setting the cluster's pods cannot use.
    """
    check_for_cluster(config, run_uri)
    data = config.model_dump(mode="json")
    dropped = ["models.cache_dir: a folder on this machine; the step image's RELFORGE_CACHE applies"]
    data["models"].pop("cache_dir", None)
    for key in ("access_key", "secret_key"):
        if data["bus"].pop(key, None):
            dropped.append(f"bus.{key}: a secret; the pods read the Secret {config.cluster.s3_secret}")
    endpoint = data["bus"].get("endpoint_url")
    if endpoint and _loopback(endpoint):
        data["bus"].pop("endpoint_url")
        dropped.append(f"bus.endpoint_url: {endpoint} is this machine; the Secret's AWS_ENDPOINT_URL applies")
    arguments = {"run_uri": run_uri.rstrip("/"), "config_yaml": yaml.safe_dump(data, sort_keys=False)}
    defaults = RelforgeConfig().model_dump(mode="json")
    for p in params:
        value = _get(data, p.key)
        if value is None or value == _get(defaults, p.key):
            continue
        arguments[p.identifier] = value if isinstance(value, str) else json.dumps(value)
    return ClusterRun(arguments=arguments, dropped=dropped)
