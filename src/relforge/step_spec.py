"""How a pipeline step is declared: once, beside its code.

A step's package declares one :class:`StepSpec` (its function, what it reads and writes on
the bus, its configuration section, its parameters, its KFP outputs, its image and
resources) and :mod:`relforge.steps` lists the declarations in pipeline order. Everything
else comes from the declaration: the KFP component (``python -m pipeline generate``), the
pipeline's edges (a step runs after the steps whose outputs it reads), ``relforge run-step``,
the step's CLI command with one option per parameter, ``relforge status``, and what the
compile test expects.

Example:
    >>> STEP = StepSpec(
    ...     name="mine", run="relforge.mine._run:run_mine",
    ...     summary="Candidates from the disagreement of several retrieval channels.",
    ...     reads=("catalog", "queries"), writes=("candidates",), section="mine",
    ...     resources=Resources(cpu="4", memory="16Gi"))
    >>> STEP.component_name
    'mine'
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

#: KFP artifact types a step may publish (small outputs only; data stays on the bus).
OutputKind = Literal["Metrics", "ClassificationMetrics", "HTML", "Markdown", "Model"]


@dataclass(frozen=True)
class Param:
    """A step parameter: a CLI option ``--<name>`` and a KFP pipeline parameter, both setting
    the configuration key ``key`` (the value is read as YAML, like ``--set key=value``).

    Attributes:
        name: the option's name, e.g. ``source`` (``--source``; pipeline parameter ``source``).
        key: the configuration key it sets, e.g. ``ingest.source``.
        help: one line for ``--help``; default: the configuration field's description.
    """

    name: str
    key: str
    help: str = ""

    @property
    def identifier(self) -> str:
        return self.name.replace("-", "_")


@dataclass(frozen=True)
class Output:
    """A small KFP output artifact taken from a document or folder on the bus.

    Attributes:
        name: the component output's name, e.g. ``report``.
        kind: ``Metrics`` (a JSON object of numbers on the bus, logged as metrics),
            ``ClassificationMetrics`` (a confusion matrix document), ``HTML``, ``Markdown``
            or ``Model`` (a folder).
        path: where it is on the bus, relative to the run, e.g. ``reports/finetune.md``.
    """

    name: str
    kind: OutputKind
    path: str


@dataclass(frozen=True)
class Resources:
    """What one run of the step needs on a cluster node (Kubernetes quantities)."""

    cpu: str = "1"
    memory: str = "2Gi"
    gpu: int = 0


@dataclass(frozen=True)
class StepSpec:
    """One pipeline step, declared once.

    Attributes:
        name: the step's name (CLI command, component, ``run-step``), e.g. ``finetune-tiers``.
        run: ``"module:function"``; the function takes ``(bus, config)`` and returns a JSON-able
            summary (a dict; its optional key ``decided`` is one line saying what it decided).
        summary: one sentence: what the step does.
        reads: names on the bus it reads: tables (``catalog``) or artifacts (``models``).
        writes: names on the bus it writes.
        section: the configuration section it reads (``None`` if none of its own).
        params: its parameters (CLI options and pipeline parameters over configuration keys).
        outputs: small KFP output artifacts copied from the bus after the step ran.
        image: ``cpu`` or ``gpu`` (which step image runs it on a cluster).
        resources: CPU, memory and GPUs per run on a cluster.
        cli: whether ``relforge <name>`` is generated (``False`` where the package has its own
            richer commands, e.g. ``relforge ingest esci|files``).
        stability: ``alpha``, ``beta`` or ``stable`` (the component's ``metadata.yaml``).
        services: external services it talks to (``metadata.yaml``), e.g. ``("S3",)``.
        pod_labels: labels on the step's pod on a cluster.
    """

    name: str
    run: str
    summary: str
    reads: tuple[str, ...] = ()
    writes: tuple[str, ...] = ()
    section: str | None = None
    params: tuple[Param, ...] = ()
    outputs: tuple[Output, ...] = ()
    image: Literal["cpu", "gpu"] = "cpu"
    resources: Resources = field(default_factory=Resources)
    cli: bool = True
    stability: Literal["alpha", "beta", "stable"] = "alpha"
    services: tuple[str, ...] = ("S3",)
    pod_labels: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if ":" not in self.run:
            raise ValueError(f"step {self.name!r}: run must be 'module:function', got {self.run!r}")
        names = [p.name for p in self.params]
        if len(set(names)) != len(names):
            raise ValueError(f"step {self.name!r}: parameter names repeat: {names}")

    @property
    def component_name(self) -> str:
        """The KFP component's (and its folder's) name: ``finetune-tiers`` -> ``finetune_tiers``."""
        return self.name.replace("-", "_")

    def function(self) -> Callable[..., Any]:
        """The step's library function (imported on first use)."""
        module, func = self.run.split(":")
        return getattr(importlib.import_module(module), func)
