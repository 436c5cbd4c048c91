"""``relforge finetune-tiers``: a thin shell over :func:`relforge.finetune.run_finetune_tiers`."""

from __future__ import annotations

from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from relforge.cli import app, state
from relforge.config import FinetuneConfig
from relforge.errors import ConfigError


@app.command("finetune-tiers")
def finetune_tiers(
    run: Annotated[str, typer.Option("--run", "-r", help="the run's root: a folder or s3://bucket/prefix")],
    mode: Annotated[
        str | None, typer.Option(help="causal-lm tiers: probe (frozen model + head, CPU default) or lora")
    ] = None,
    head: Annotated[str | None, typer.Option(help="cross-encoder and probe head: softmax or ordinal")] = None,
    balance: Annotated[str | None, typer.Option(help="class balance: class-weights, sampler or none")] = None,
    tier: Annotated[list[str] | None, typer.Option("--tier", help="only this tier (repeatable)")] = None,
    max_train_pairs: Annotated[int | None, typer.Option(help="cap on train pairs, sampled per query")] = None,
) -> None:
    """Fine-tune the tiers on the human train split (early stopping on calib); writes models/<tier>.

    Reads catalog, queries and judgments (run `relforge ingest` first). Each tier's folder goes
    to models/<tier> on the bus with relforge_tier.json; the report to reports/finetune.json|md.
    """
    from relforge.bus import DataBus
    from relforge.finetune import run_finetune_tiers
    from relforge.logs import _progress_enabled

    config = state.config
    updates = {k: v for k, v in {"llm_mode": mode, "head": head, "balance": balance,
                                  "max_train_pairs": max_train_pairs}.items() if v is not None}
    if updates:
        try:
            finetune = FinetuneConfig.model_validate({**config.finetune.model_dump(), **updates})
        except ValidationError as exc:
            raise ConfigError("; ".join(f"--{'-'.join(map(str, e['loc'])).replace('_', '-')}: {e['msg']}"
                                        for e in exc.errors())) from None
        config = config.model_copy(update={"finetune": finetune})
    bus = DataBus(run, config.bus)
    summary = run_finetune_tiers(bus, config, tiers=tier, progress=_progress_enabled)
    table = Table(title=f"finetune-tiers at {run}")
    for col in ("tier", "mode", "head", "train pairs", "calib acc", "calib QWK", "where"):
        table.add_column(col)
    for name, r in summary["tiers"].items():
        best = r.get("calib_best") or {}
        table.add_row(
            name, r.get("mode", ""), r.get("head", "grade-tokens"), str(r.get("train_pairs", "")),
            f"{best['accuracy']:.3f}" if best else "", f"{best['qwk']:.3f}" if best else "",
            r.get("uri", bus.uri(f"models/{name}")),
        )
    Console().print(table)
