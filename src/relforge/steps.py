"""The pipeline's steps by name: what the KFP components and ``relforge run-step`` call.

A step takes the run's bus and the configuration and returns a JSON-able summary. The
components in ``pipeline/components/`` are one line over :func:`run_step`, so nothing in a
step knows whether it runs on a laptop or in a cluster.
"""

from __future__ import annotations

import importlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import yaml

from relforge.bus import DataBus
from relforge.config import RelforgeConfig, load_config
from relforge.logs import get_logger, log_event

log = get_logger("steps")


@dataclass(frozen=True)
class Step:
    """A pipeline step: its library function and the tables it writes."""

    name: str
    target: str  # "module:function"
    writes: tuple[str, ...]
    built: bool = True

    def function(self) -> Callable[..., Any]:
        module, func = self.target.split(":")
        return getattr(importlib.import_module(module), func)


#: DESIGN.md's pipeline, in order. ``built=False`` marks steps a later issue builds.
STEPS: tuple[Step, ...] = (
    Step("pull-models", "relforge.steps:_pull_models", ()),
    Step("ingest-esci", "relforge.ingest:ingest_esci", ("catalog", "queries", "judgments")),
    Step("mine", "relforge.mine:run_mine", ("candidates",)),
    Step("finetune-tiers", "relforge.finetune:run_finetune_tiers", ()),
    Step("calibrate", "", (), built=False),
    Step("annotate", "", ("labels",), built=False),
    Step("curriculum", "", ("curriculum",), built=False),
    Step("train-two-tower", "", (), built=False),
    Step("export-index", "", (), built=False),
    Step("evaluate", "", (), built=False),
)
_BY_NAME = {s.name: s for s in STEPS}


def _pull_models(bus: DataBus, config: RelforgeConfig) -> dict[str, str]:
    from relforge.models import pull

    folders = pull(config=config.models)
    return {name: str(path) for name, path in folders.items()}


def config_to_yaml(config: RelforgeConfig) -> str:
    """The configuration as YAML for a pipeline parameter, without secrets."""
    data = config.model_dump(mode="json")
    data["bus"].pop("access_key", None)
    data["bus"].pop("secret_key", None)
    return yaml.safe_dump(data, sort_keys=False)


def config_from_yaml(text: str) -> RelforgeConfig:
    data = yaml.safe_load(text) if text else {}
    return RelforgeConfig.model_validate(data or {})


def get_step(name: str) -> Step:
    try:
        step = _BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown step {name!r}; steps: {', '.join(_BY_NAME)}") from None
    if not step.built:
        raise NotImplementedError(f"step {name!r} is not built yet")
    return step


def run_step(name: str, run_uri: str, config: RelforgeConfig | str | None = None) -> dict[str, Any]:
    """Run step ``name`` on the bus at ``run_uri``.

    Args:
        name: a step name from :data:`STEPS`.
        run_uri: the run's root (local folder or ``s3://bucket/prefix``).
        config: the configuration, or its YAML text, or ``None`` for the defaults.

    Returns:
        ``{"step", "seconds", "result", "tables": {name: rows}}``.
    """
    if config is None:
        config = load_config()
    elif isinstance(config, str):
        config = config_from_yaml(config)
    step = get_step(name)
    bus = DataBus(run_uri, config.bus)
    start = time.monotonic()
    result = step.function()(bus, config)
    seconds = round(time.monotonic() - start, 2)
    tables = {t: bus.manifest(t).rows for t in step.writes if bus.is_committed(t)}
    log_event(log, "step done", step=name, seconds=seconds, **tables)
    return {"step": name, "seconds": seconds, "result": _jsonable(result), "tables": tables}


def _jsonable(result: Any) -> Any:
    if hasattr(result, "model_dump"):
        return result.model_dump(mode="json", exclude={"files", "columns"})
    if isinstance(result, dict):
        return {str(k): _jsonable(v) for k, v in result.items()}
    if isinstance(result, (list, tuple)):
        return [_jsonable(v) for v in result]
    if isinstance(result, (str, int, float, bool)) or result is None:
        return result
    return str(result)


def run_step_json(name: str, run_uri: str, config_yaml: str) -> str:
    """:func:`run_step` with a JSON result: the body of every KFP component."""
    import json

    return json.dumps(run_step(name, run_uri, config_yaml))
