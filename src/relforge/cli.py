"""The ``relforge`` command line: one command per pipeline step, plus ``ingest``, ``models``,
``run-step``, ``status`` and ``submit`` (a run on Kubeflow Pipelines).

The step commands are made from the step declarations (:data:`relforge.steps.STEPS`): each
takes ``--run`` and one option per declared parameter, runs the step's library function
through :func:`relforge.steps.run_step` (as the KFP components do) and prints one line: the
step, its seconds, the rows it wrote and what it decided.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from relforge.config import RelforgeConfig, load_config, set_active
from relforge.errors import RelforgeError
from relforge.logs import print_error, set_progress, setup_logging

app = typer.Typer(
    name="relforge",
    help="Relevance labels from a calibrated cascade of fine-tuned models, and a dense retriever "
    "trained on them. `relforge status --run R` lists the pipeline's steps.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)
console = Console(stderr=True, soft_wrap=True)

_RUN_HELP = "the run's root: a folder or s3://bucket/prefix"


@dataclass
class State:
    """What the global options set: the configuration, and where it came from."""

    config: RelforgeConfig = field(default_factory=RelforgeConfig)
    path: Path | None = None
    overrides: list[str] = field(default_factory=list)


state = State()


def _version(value: bool) -> None:
    if value:
        from importlib.metadata import version

        print(f"relforge {version('relforge')}")
        raise typer.Exit()


@app.callback()
def _global(
    config: Annotated[Path | None, typer.Option("--config", "-c", help="YAML file overriding the defaults")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="override one setting: section.key=value")] = None,
    log_level: Annotated[str, typer.Option(help="debug, info, warning (default: quiet)")] = "warning",
    log_json: Annotated[bool, typer.Option(help="structured JSON log lines on stderr")] = False,
    progress: Annotated[bool | None, typer.Option(help="progress bars (default: on a terminal)")] = None,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="print the version and exit")
    ] = False,
) -> None:
    setup_logging(log_level, json_lines=log_json)
    if progress is not None:
        set_progress(progress)
    state.path, state.overrides = config, list(set_ or [])
    state.config = load_config(config, state.overrides)
    set_active(state.config)


def step_line(record: dict[str, Any]) -> str:
    """One line for a finished step: name, seconds, rows written, what it decided."""
    rows = ", ".join(f"{name} {n:,}" for name, n in record.get("tables", {}).items())
    parts = [f"{record['step']:<16}", f"{record['seconds']:>7.1f} s"]
    if rows:
        parts.append(rows)
    if record.get("decided"):
        parts.append(record["decided"])
    return "  ".join(parts)


def _step_command(step) -> None:
    """Add ``relforge <step>`` with ``--run`` and one option per declared parameter."""

    def command(**kwargs: Any) -> None:
        from relforge.bus import DataBus
        from relforge.steps import run_step

        run = kwargs.pop("run")
        record = run_step(step.name, run, state.config, **kwargs)
        print(step_line(record))
        bus = DataBus(run, state.config.bus)
        for output in step.outputs:
            if output.kind in ("Markdown", "HTML") and bus.exists(output.path):
                print(f"{'':<16}  {output.kind.lower()}: {bus.uri(output.path)}")

    params = [
        inspect.Parameter("run", inspect.Parameter.KEYWORD_ONLY,
                          annotation=Annotated[str, typer.Option("--run", "-r", help=_RUN_HELP)]),
    ]
    for p in step.params:
        params.append(inspect.Parameter(
            p.identifier, inspect.Parameter.KEYWORD_ONLY, default=None,
            annotation=Annotated[str | None, typer.Option(f"--{p.name}", help=p.help or _field_help(p.key))],
        ))
    command.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    command.__doc__ = f"{step.summary}\n\nReads: {', '.join(step.reads) or '-'}. Writes: {', '.join(step.writes) or '-'}."
    app.command(step.name)(command)


def _field_help(key: str) -> str:
    """The description of the configuration field ``section.field`` (``key``)."""
    section, _, name = key.partition(".")
    model = RelforgeConfig.model_fields[section].annotation
    field = getattr(model, "model_fields", {}).get(name)
    return f"sets {key}" + (f": {field.description}" if field and field.description else "")


@app.command("run-step")
def run_step_cmd(
    step: Annotated[str, typer.Argument(help="a step name (see `relforge status`)")],
    run: Annotated[str, typer.Option("--run", "-r", help=_RUN_HELP)],
) -> None:
    """Run one pipeline step by name, as the KFP components do; prints its record as JSON."""
    import json

    from relforge.steps import run_step

    print(json.dumps(run_step(step, run, state.config), indent=2))


@app.command("status")
def status_cmd(run: Annotated[str, typer.Option("--run", "-r", help=_RUN_HELP)]) -> None:
    """The pipeline's steps at a run: what each wrote (committed, rows), its last run, and the
    steps not built yet."""
    from rich.table import Table

    from relforge.bus import DataBus, contract_for
    from relforge.steps import PLANNED, STEPS, step_record

    bus = DataBus(run, state.config.bus)
    records = {s.name: step_record(bus, s.name) for s in STEPS}
    tables = [name for s in STEPS for name in s.writes if contract_for(name)]
    if not any(records.values()) and not any(bus.is_committed(t) for t in tables):
        raise RelforgeError(f"{run}: no relforge run there (nothing committed); start one with `relforge ingest`")
    out = Console(soft_wrap=True)
    table = Table(title=f"relforge run {run}")
    for col in ("step", "writes", "rows", "last run", "decided"):
        table.add_column(col)
    for step in STEPS:
        record = records[step.name]
        last = f"{record['seconds']:.1f} s, {record['finished_at']}" if record else ""
        decided = record.get("decided", "") if record else ""
        for i, name in enumerate(step.writes or ("-",)):
            if contract_for(name):
                rows = f"{bus.manifest(name).rows:,}" if bus.is_committed(name) else "not committed"
            else:
                rows = ""
            table.add_row(step.name if i == 0 else "", name, rows, last if i == 0 else "", decided if i == 0 else "")
    for name in PLANNED:
        table.add_row(name, "", "", "not built yet", "")
    out.print(table)
    documents = sorted({o.path for s in STEPS for o in s.outputs if o.kind in ("Markdown", "HTML")})
    present = [bus.uri(d) for d in documents if bus.exists(d)]
    if present:
        out.print("reports: " + ", ".join(present))


def _pipeline_submit():
    """:func:`pipeline.submit.submit`, from the relforge checkout this package runs from (or the
    working directory): the pipeline definition lives in the repository's ``pipeline/``."""
    import sys

    try:
        from pipeline.submit import submit
    except ModuleNotFoundError:
        import relforge

        roots = [Path(relforge.__file__).resolve().parents[2], Path.cwd()]
        root = next((r for r in roots if (r / "pipeline" / "submit.py").is_file()), None)
        if root is None:
            raise RelforgeError("relforge submit compiles the pipeline of a relforge checkout (its pipeline/ "
                                "folder): run it from the repository's root") from None
        sys.path.insert(0, str(root))
        from pipeline.submit import submit
    return submit


@app.command("submit")
def submit_cmd(
    host: Annotated[str, typer.Option("--host", help="the Kubeflow Pipelines API, e.g. "
                                      "https://kubeflow.example.com/pipeline")],
    run: Annotated[str, typer.Option("--run", "-r", help="the run's root on S3: s3://bucket/prefix")],
    namespace: Annotated[str | None, typer.Option(help="the KFP profile namespace (multi-user Kubeflow)")] = None,
    experiment: Annotated[str, typer.Option(help="the experiment (created if missing)")] = "relforge",
    run_name: Annotated[str | None, typer.Option(help="the run's display name")] = None,
    config: Annotated[Path | None, typer.Option("--config", "-c", help="YAML configuration, e.g. configs/cluster.yaml "
                                                "(default: the global --config)")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="override one setting: section.key=value "
                                                   "(after the global ones)")] = None,
    pipeline: Annotated[str, typer.Option("--pipeline", help="relforge (DESIGN.md's pipeline) or cold-start (a "
                                          "catalog alone to a distilled labeler)")] = "relforge",
) -> None:
    """Compile the pipeline and start a run on Kubeflow Pipelines, with the settings that mean
    something in the cluster: no local paths (models.cache_dir is dropped, a local data file or
    model is an error naming its field); the user's data as s3:// URIs. A bearer token for the
    KFP API is read from RELFORGE_KFP_TOKEN."""
    import json

    cfg = state.config
    if config is not None or set_:
        cfg = load_config(config or state.path, [*state.overrides, *(set_ or [])])
    done = _pipeline_submit()(host, run, cfg, namespace=namespace, experiment=experiment, run_name=run_name,
                              variant=pipeline)
    print(json.dumps({"run_id": done.run_id, "experiment": done.experiment, "url": done.url,
                      "dropped": done.dropped}, indent=2))


def _register() -> None:
    from relforge.ingest.cli import app as ingest_app
    from relforge.models.cli import app as models_app
    from relforge.steps import STEPS

    app.add_typer(ingest_app, name="ingest", help="Read a catalog, queries and judgments into the bus.")
    app.add_typer(models_app, name="models", help="Packaged models: pull, list, resolve.")
    for step in STEPS:
        if step.cli:
            _step_command(step)
    from relforge.twotower.cli import search_command

    app.command("search")(search_command)
    app.command("ablate")(ablate_cmd)
    app.command("second-round")(second_round_cmd)


def _run_steps(names: list[str], run: str, overrides: list[str], label: str) -> RelforgeConfig:
    """Run steps by name with ``overrides`` on the configuration; one line per step."""
    from relforge.steps import run_step

    config = load_config(data=state.config.model_dump(mode="json"), overrides=overrides,
                         labels=[label] * len(overrides), source="config")
    for name in names:
        print(step_line(run_step(name, run, config)), flush=True)
    return config


def ablate_cmd(
    run: Annotated[str, typer.Option("--run", "-r", help=_RUN_HELP)],
    only: Annotated[str | None, typer.Option(help="only these variants, comma-separated (ablate.variants)")] = None,
) -> None:
    """Baselines and ablations in one command: the run's own curriculum, retriever and index (skipped
    when committed), each ablation variant in its sub-run, then evaluate; the table with CIs is
    reports/ablation.md."""
    overrides = ["ablate.enabled=true"] + ([f"ablate.only=[{only}]"] if only else [])
    config = _run_steps(["curriculum", "train-two-tower", "export-index", "ablate", "evaluate"], run, overrides,
                        "relforge ablate")
    from relforge.bus import DataBus

    print(f"{'':<16}  table: {DataBus(run, config.bus).uri('reports/ablation.md')}")


def second_round_cmd(run: Annotated[str, typer.Option("--run", "-r", help=_RUN_HELP)]) -> None:
    """The second mining round: the trained retriever as a fourth channel, mine, annotate, curriculum,
    train and export again in a sub-run, then evaluate with both rounds."""
    _run_steps(["second-round", "evaluate"], run, ["second_round.enabled=true"], "relforge second-round")


def main() -> None:
    _register()
    try:
        app()
    except RelforgeError as exc:
        print_error(exc)
        raise SystemExit(2) from None
