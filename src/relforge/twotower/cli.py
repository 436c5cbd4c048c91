"""``relforge search --run R "query"``: the exported retriever answers one query."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def search_command(
    query: Annotated[str, typer.Argument(help="the query text")],
    run: Annotated[str, typer.Option("--run", "-r", help="the run's root: a folder or s3://bucket/prefix")],
    k: Annotated[int, typer.Option("-k", "--top", help="results to show")] = 10,
) -> None:
    """Search the run's exported index (step export-index) with its query encoder; prints the
    items with their scores and titles, and the milliseconds the search took after loading."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from relforge.bus import DataBus
    from relforge.config import active
    from relforge.twotower._retriever import Retriever

    config = active()
    bus = DataBus(run, config.bus)
    retriever = Retriever.from_bus(bus, Path(config.models.cache_dir).expanduser(), batch_size=config.export.batch_size)
    _, _, first_ms = retriever.timed_search(query, k)  # a process's first call also sets up torch's kernels
    ids, scores, ms = retriever.timed_search(query, k)
    titles: dict[str, str] = {}
    if ids and bus.is_committed("catalog"):
        catalog = bus.read_table("catalog", columns=["item_id", "title"])
        hit = catalog.filter(pc.is_in(catalog.column("item_id"), value_set=pa.array(ids, pa.string())))
        titles = dict(zip(hit.column("item_id").to_pylist(), hit.column("title").to_pylist()))
    for rank, (item, score) in enumerate(zip(ids, scores), start=1):
        print(f"{rank:>3}  {score:6.3f}  {item}  {titles.get(item, '')[:100]}")
    m = retriever.manifest
    print(f"{len(ids)} results in {ms:.1f} ms (first call {first_ms:.0f} ms, one-time set-up included; "
          f"{m['kind']} index of {m['items']:,} items, recall@10 "
          f"{m['recall_at_10'] if m['recall_at_10'] is not None else 1.0:.3f}, model {m['model_version']}; "
          f"loaded in {retriever.load_s:.1f} s)")
