"""Ingest of the shipped ESCI-150 data (package data ``relforge/data/esci-us-150``; see its README).

The files are the OpenSearch Search Relevance Workbench's ESCI sample: a query set (query
texts only), judgments by query text and ASIN with the ratings ``0.000`` / ``1.000`` /
``10.000`` / ``100.000`` (I / C / S / E), and the products as zipped OpenSearch bulk ndjson.
The products' ``query_id`` lists name queries of the full ESCI data set, not of this query
set, so query ids are derived from the query text (:func:`~relforge.ingest.query_id_for`).
"""

from __future__ import annotations

import json
import os
import zipfile
from importlib import resources
from pathlib import Path

import pyarrow as pa

from relforge.bus import DataBus, Manifest
from relforge.config import RelforgeConfig
from relforge.errors import InputError
from relforge.grades import ESCI
from relforge.ingest._commit import already_ingested, sha256_file, write_tables
from relforge.ingest._grades import GradeMapper
from relforge.ingest._source import Source
from relforge.ingest._tables import IngestedTables, build_tables

QUERYSET = "esci_us_queryset.json"
JUDGMENTS = "esci_us_judgments.json"
PRODUCTS = "esci_us_ecommerce_shrunk.ndjson.zip"
FILES = (QUERYSET, JUDGMENTS, PRODUCTS)
DATA_NAME = "esci-us-150"
#: Rating strings to ESCI grades (Irrelevant 0 < Complement 1 < Substitute 2 < Exact 3).
RATINGS = {"0.000": 0, "1.000": 1, "10.000": 2, "100.000": 3}
#: Product fields kept: ESCI name -> catalog column.
PRODUCT_FIELDS = {
    "asin": "item_id", "title": "title", "brand": "brand", "color": "color",
    "category": "category", "bullet_points": "bullet_points", "description": "description",
}


def _has_data(folder: Path) -> bool:
    return all((folder / f).is_file() for f in FILES)


def packaged_esci_dir() -> Path:
    """The ESCI-150 folder installed with relforge (package data of the wheel or the checkout)."""
    return Path(os.fspath(resources.files("relforge").joinpath("data", DATA_NAME)))


def find_esci_dir(data_dir: str | Path | None = None) -> Path:
    """The folder holding the ESCI-150 files.

    Looked for, in order: ``data_dir``; ``$RELFORGE_DATA`` (the folder itself, or a folder
    holding ``esci-us-150``); the copy installed with relforge (:func:`packaged_esci_dir`).
    The working directory plays no part.

    Raises:
        InputError: when none of them holds the files.
    """
    if data_dir is not None:
        folder = Path(data_dir).expanduser()
        if not _has_data(folder):
            missing = [f for f in FILES if not (folder / f).is_file()]
            raise InputError(str(folder), None, None, f"not the ESCI-150 data: missing {missing}")
        return folder
    candidates = []
    env = os.environ.get("RELFORGE_DATA")
    if env:
        candidates += [Path(env).expanduser(), Path(env).expanduser() / DATA_NAME]
    candidates.append(packaged_esci_dir())
    for folder in candidates:
        if _has_data(folder):
            return folder
    looked = ", ".join(str(c) for c in candidates)
    raise InputError(
        DATA_NAME, None, None,
        f"ESCI-150 data not found (looked in {looked}); set RELFORGE_DATA or pass --data-dir",
    )


def _check_sums(folder: Path, digests: dict[str, str]) -> None:
    sums = folder / "SHA256SUMS"
    if not sums.is_file():
        return
    for line in sums.read_text(encoding="utf-8").splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1] in digests and digests[parts[1]] != parts[0]:
            raise InputError(
                str(folder / parts[1]), None, None,
                "does not match its SHA-256 in SHA256SUMS (modified or truncated?)",
            )


def _load_json(path: Path) -> object:
    try:
        return json.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise InputError(str(path), None, None, f"not valid UTF-8 at byte {exc.start}") from None
    except json.JSONDecodeError as exc:
        raise InputError(str(path), exc.lineno, None, f"not valid JSON: {exc.msg}") from None


def read_esci_queries(path: Path) -> Source:
    """The query set: one row per ``querySetQueries[]`` entry, its ``queryText`` as ``query``."""
    data = _load_json(path)
    entries = data.get("querySetQueries") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise InputError(str(path), None, "querySetQueries", "missing or not a list")
    texts = []
    for i, entry in enumerate(entries, start=1):
        if not isinstance(entry, dict) or "queryText" not in entry:
            raise InputError(str(path), i, "queryText", "missing")
        texts.append(entry["queryText"])
    return Source(
        str(path), pa.table({"query": pa.array(texts, pa.string())}), origin={"query": "queryText"}
    )


def read_esci_judgments(path: Path) -> Source:
    """The judgments, one row per rating (rows numbered across all queries' ratings, from 1)."""
    data = _load_json(path)
    entries = data.get("judgmentRatings") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise InputError(str(path), None, "judgmentRatings", "missing or not a list")
    queries, items, ratings = [], [], []
    for i, entry in enumerate(entries, start=1):
        if not isinstance(entry, dict) or not isinstance(entry.get("ratings"), list):
            raise InputError(str(path), len(items) + 1, "ratings", f"judgmentRatings[{i - 1}] has no ratings list")
        for rating in entry["ratings"]:
            if not isinstance(rating, dict):
                raise InputError(str(path), len(items) + 1, "ratings", "a rating is not an object")
            queries.append(entry.get("query"))
            items.append(rating.get("docId"))
            ratings.append(rating.get("rating"))
    return Source(str(path), pa.table({
        "query": pa.array(queries, pa.string()),
        "item_id": pa.array(items, pa.string()),
        "grade": pa.array(ratings, pa.string()),
    }), origin={"item_id": "docId", "grade": "rating"})


def read_esci_products(path: Path) -> Source:
    """The products from the zipped bulk ndjson (rows are line numbers in the ndjson)."""
    try:
        with zipfile.ZipFile(path) as zf:
            members = [n for n in zf.namelist() if n.endswith(".ndjson")]
            if not members:
                raise InputError(str(path), None, None, "holds no .ndjson file")
            raw = zf.read(members[0])
    except zipfile.BadZipFile as exc:
        raise InputError(str(path), None, None, f"not a valid zip file: {exc}") from None
    label = f"{path}!{members[0]}"
    try:
        lines = raw.decode("utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise InputError(label, raw[: exc.start].count(b"\n") + 1, None, "not valid UTF-8") from None
    columns: dict[str, list] = {c: [] for c in PRODUCT_FIELDS.values()}
    rows = []
    for n in range(0, len(lines) - 1, 2):
        try:
            action, product = json.loads(lines[n]), json.loads(lines[n + 1])
        except json.JSONDecodeError as exc:
            raise InputError(label, n + 1, None, f"not valid JSON: {exc.msg}") from None
        doc_id = (action.get("index") or {}).get("_id") if isinstance(action, dict) else None
        if not isinstance(product, dict) or doc_id != product.get("asin"):
            raise InputError(label, n + 2, "asin", f"does not match the bulk action's _id {doc_id!r}")
        for field, column in PRODUCT_FIELDS.items():
            columns[column].append(product.get(field))
        rows.append(n + 2)
    table = pa.table({
        name: pa.array(values, pa.list_(pa.string()) if name == "category" else pa.string())
        for name, values in columns.items()
    })
    return Source(label, table, rows, origin={"item_id": "asin"})


def load_esci(folder: Path, config: RelforgeConfig) -> IngestedTables:
    """Read and validate the ESCI-150 files into the three tables (nothing is written)."""
    return build_tables(
        read_esci_products(folder / PRODUCTS),
        read_esci_queries(folder / QUERYSET),
        read_esci_judgments(folder / JUDGMENTS),
        GradeMapper(ESCI, value_map=RATINGS),
        config.ingest,
        config.split,
    )


def ingest_esci(
    bus: DataBus, config: RelforgeConfig, data_dir: str | Path | None = None, *, replace: bool | None = None
) -> dict[str, Manifest]:
    """Ingest ESCI-150: write ``catalog``, ``queries`` and ``judgments`` to ``bus``.

    Grades are Irrelevant < Complement < Substitute < Exact = 0..3; the scale
    (:data:`relforge.grades.ESCI`, with its gains) is each table's ``grade_scale`` metadata.
    A rerun with the same files and ``ingest`` / ``split`` configuration is a no-op.

    Args:
        bus: where to write.
        config: the run's configuration (sections ``ingest`` and ``split``).
        data_dir: the ESCI-150 folder; default: see :func:`find_esci_dir`.
        replace: replace tables at ``bus`` that came from other inputs (default:
            ``config.ingest.replace``); without it they are refused.

    Returns:
        The three manifests, by table name.

    Example:
        >>> ms = ingest_esci(DataBus("runs/esci"), load_config())      # doctest: +SKIP
        >>> ms["judgments"].rows                                        # doctest: +SKIP
        6678
    """
    folder = find_esci_dir(data_dir)
    inputs = {name: sha256_file(folder / name) for name in FILES}
    _check_sums(folder, inputs)
    config_hash = config.section_hash("ingest", "split")
    done = already_ingested(bus, inputs, config_hash)
    if done is not None:
        return done
    tables = load_esci(folder, config)
    return write_tables(
        bus, tables, ESCI, inputs=inputs, config_hash=config_hash,
        metadata={"source": "esci-us-150", "origin": "esci-us-150"},
        replace=config.ingest.replace if replace is None else replace,
    )
