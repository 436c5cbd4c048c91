"""``relforge mine --run URI``: the step's command (a thin shell over :func:`run_mine`)."""

from __future__ import annotations

from typing import Annotated

import typer

from relforge.bus import DataBus
from relforge.cli import app, console, state


@app.command("mine")
def mine_command(
    run: Annotated[str, typer.Option("--run", "-r", help="the run's bus root: a folder or s3://bucket/prefix")],
) -> None:
    """Mine candidates (table `candidates`) from the catalog and queries on the bus, and write
    the mining report (reports/mining.md and .json)."""
    from relforge.mine._report import REPORT_MD
    from relforge.mine._run import run_mine

    bus = DataBus(run, state.config.bus)
    manifest = run_mine(bus, state.config)
    report = bus.read_json("reports/mining.json")
    sizes = ", ".join(f"{b} {v['rows']:,}" for b, v in report["buckets"].items())
    console.print(f"candidates: {manifest.rows:,} rows for {report['queries']:,} queries ({sizes})")
    console.print(f"report: {bus.uri(REPORT_MD)}")
