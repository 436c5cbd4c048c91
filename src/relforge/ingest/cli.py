"""``relforge ingest esci`` and ``relforge ingest files``: thin shells over the library functions."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from relforge.bus import DataBus, Manifest
from relforge.errors import ConfigError

app = typer.Typer(
    help="Read a catalog, queries and judgments into the bus (tables catalog, queries, judgments).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
console = Console()

_FILES_HELP = (
    "Ingest any catalog, queries and judgments in Parquet, JSON Lines or CSV. Formats come "
    "from the file extensions: .parquet, .jsonl / .ndjson / .json, .csv / .tsv, each "
    "optionally .gz.\n\n"
    "Fields read (after --map). catalog: item_id, title, and those of ingest.text_fields it "
    "has (brand, color, category, bullet_points, description), joined into `text` (or a ready "
    "`text` column). queries: query, and optionally query_id (else \"q\" + a hash of the "
    "text) and segment. judgments: query_id (or query, matched by its text), item_id, grade.\n\n"
    "--map FIELD=COLUMN takes a field from another column, e.g. --map item_id=asin --map "
    "title=name. Prefix FIELD with catalog., queries. or judgments. to map in that file only, "
    "e.g. --map judgments.grade=label.\n\n"
    "A grade is a name from --grades (case-insensitive) or an integer 0..n-1. For numeric "
    "scores, --score-bins gives n-1 ascending thresholds: with --grades bad,ok,good and mean "
    "ratings from 1 to 3, --score-bins 1.5,2.5 makes a score below 1.5 bad, from 1.5 to below "
    "2.5 ok, and 2.5 or more good.\n\n"
    "Everything is validated before anything is written: the first problem is reported with "
    "its file, row and field, and tables already at --out stay as they were."
)


def _config():
    from relforge.config import active

    return active()


def _split_floats(text: str | None, option: str) -> list[float] | None:
    if text is None:
        return None
    try:
        return [float(x) for x in text.split(",")]
    except ValueError:
        raise ConfigError(f"{option} {text!r}: expected comma-separated numbers") from None


def _report(bus: DataBus, manifests: dict[str, Manifest]) -> None:
    table = Table(title=f"ingested into {bus.root}")
    table.add_column("table")
    table.add_column("rows", justify="right")
    table.add_column("detail")
    splits = Counter(bus.read_table("queries", columns=["split"]).column("split").to_pylist())
    grades = Counter(bus.read_table("judgments", columns=["grade"]).column("grade").to_pylist())
    scale = manifests["judgments"].metadata.get("grade_scale", {}).get("names", [])
    details = {
        "queries": ", ".join(f"{k} {v}" for k, v in sorted(splits.items())),
        "judgments": ", ".join(
            f"{scale[g] if g < len(scale) else g} {n}" for g, n in sorted(grades.items())
        ),
    }
    for name, manifest in manifests.items():
        table.add_row(name, f"{manifest.rows:,}", details.get(name, ""))
    console.print(table)


@app.command("esci")
def esci(
    out: Annotated[str, typer.Option("--out", help="the run's URI: a local folder or s3://bucket/prefix")],
    data_dir: Annotated[
        Path | None,
        typer.Option(help="the ESCI-150 folder (default: $RELFORGE_DATA, else the copy installed with relforge)"),
    ] = None,
    replace: Annotated[bool, typer.Option(help="replace tables at --out that came from other inputs")] = False,
) -> None:
    """Ingest the shipped ESCI-150 data (150 queries, 6,678 judged pairs, 6,764 products).

    Grades: Irrelevant < Complement < Substitute < Exact = 0..3, with the ESCI gains.
    """
    from relforge.ingest import ingest_esci

    config = _config()
    bus = DataBus(out, config.bus)
    _report(bus, ingest_esci(bus, config, data_dir, replace=replace or None))


@app.command("files", help=_FILES_HELP)
def files(
    catalog: Annotated[Path, typer.Option(help="items file (Parquet, JSONL or CSV)")],
    queries: Annotated[Path, typer.Option(help="queries file")],
    grades: Annotated[str, typer.Option(help="grade names, worst first, e.g. irrelevant,partial,exact")],
    out: Annotated[str, typer.Option("--out", help="the run's URI: a local folder or s3://bucket/prefix")],
    judgments: Annotated[Path | None, typer.Option(help="judgments file (without it every query is unlabeled)")] = None,
    map_: Annotated[
        list[str] | None, typer.Option("--map", help="FIELD=COLUMN, repeatable, e.g. --map item_id=asin")
    ] = None,
    score_bins: Annotated[
        str | None, typer.Option(help="n-1 ascending thresholds for numeric scores, e.g. 1.5,2.5")
    ] = None,
    gains: Annotated[str | None, typer.Option(help="NDCG gain per grade, e.g. 0,1,3 (default 2^g-1)")] = None,
    encoding: Annotated[
        str | None, typer.Option(help="text encoding of CSV / JSON files, e.g. latin-1 (default: ingest.encoding)")
    ] = None,
    replace: Annotated[bool, typer.Option(help="replace tables at --out that came from other inputs")] = False,
) -> None:
    from relforge.ingest import ingest_files, parse_mapping, parse_score_bins

    config = _config()
    bus = DataBus(out, config.bus)
    manifests = ingest_files(
        bus, config,
        catalog=catalog, queries=queries, judgments=judgments,
        grades=[g for g in grades.split(",") if g.strip()],
        gains=_split_floats(gains, "--gains"),
        mapping=parse_mapping(map_ or []),
        score_bins=parse_score_bins(score_bins),
        encoding=encoding,
        replace=replace or None,
    )
    _report(bus, manifests)


@app.command("reviews")
def reviews(
    file: Annotated[Path, typer.Option("--file", help="a Label Studio JSON export, or CSV / JSONL with query_id, item_id, grade")],
    run: Annotated[str, typer.Option("--run", help="the run's URI: a local folder or s3://bucket/prefix")],
    encoding: Annotated[str, typer.Option(help="text encoding of CSV / JSON files")] = "utf-8",
) -> None:
    """Human answers to the review queue (annotate's review/ exports) into the run's `reviews` table.

    A Label Studio export's `annotations` give the grade (its last answer that was not cancelled);
    CSV / JSONL rows give it in `grade` (a grade name or an integer; blank: not judged yet, skipped).
    The next `relforge calibrate` adds these pairs to its calibration pairs, except those of
    test-split queries, whose human grades stay for evaluation only.
    """
    from relforge.ingest._reviews import ingest_reviews

    config = _config()
    result = ingest_reviews(DataBus(run, config.bus), file, encoding)
    splits = ", ".join(f"{k} {v}" for k, v in sorted(result["splits"].items())) or "none"
    console.print(f"reviews: {result['read']} read ({result['new']} new, {result['updated']} updated; by split: "
                  f"{splits}); table reviews now {result['rows']:,} rows")
