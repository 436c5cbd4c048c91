"""Ingest of any catalog, queries and judgments in Parquet, JSON Lines or CSV.

Column mapping: the tables' fields (``item_id``, ``title``, ``query_id``, ``query``,
``grade``, ``brand``, ...) are taken from the file's columns of the same name, or from the
column a mapping names: ``{"item_id": "asin"}`` applies to every file that has an ``asin``
column, ``{"judgments.item_id": "product"}`` to the judgments file only (and wins).

Judgments name their query by ``query_id`` or, without that column, by the query text.
Their ``grade`` is a grade name, an integer grade, or with score bins any number.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from pathlib import Path

from relforge.bus import DataBus, Manifest
from relforge.config import RelforgeConfig
from relforge.errors import ConfigError, InputError
from relforge.grades import GradeScale
from relforge.ingest._commit import already_ingested, sha256_file, write_tables
from relforge.ingest._grades import GradeMapper
from relforge.ingest._readers import read_file
from relforge.ingest._source import Source
from relforge.ingest._tables import IngestedTables, build_tables

ROLES = ("catalog", "queries", "judgments")


def parse_mapping(items: Sequence[str]) -> dict[str, str]:
    """``["item_id=asin", "judgments.grade=label"]`` to ``{"item_id": "asin", ...}``.

    Raises:
        ConfigError: for an item without ``=``, an empty side or an unknown file prefix.
    """
    mapping: dict[str, str] = {}
    for item in items:
        target, sep, source = item.partition("=")
        target, source = target.strip(), source.strip()
        if not sep or not target or not source:
            raise ConfigError(f"--map {item!r}: expected FIELD=COLUMN, e.g. item_id=asin")
        if "." in target and target.split(".", 1)[0] not in ROLES:
            raise ConfigError(
                f"--map {item!r}: a qualified field starts with one of {', '.join(ROLES)}"
            )
        mapping[target] = source
    return mapping


def parse_score_bins(text: str | None) -> list[float] | None:
    """``"1.5,2.5"`` to ``[1.5, 2.5]`` (``None`` for no bins)."""
    if text is None or not text.strip():
        return None
    try:
        bins = [float(x) for x in text.split(",")]
    except ValueError:
        raise ConfigError(f"--score-bins {text!r}: expected comma-separated numbers, e.g. 1.5,2.5") from None
    if any(not math.isfinite(b) for b in bins):
        raise ConfigError(f"--score-bins {text!r}: thresholds must be finite numbers")
    return bins


def mapping_for(role: str, mapping: dict[str, str]) -> dict[str, str]:
    """The mapping that applies to one file: the plain entries, then its qualified ones."""
    out = {k: v for k, v in mapping.items() if "." not in k}
    out.update({k.split(".", 1)[1]: v for k, v in mapping.items() if k.startswith(f"{role}.")})
    return out


def _role_fields(role: str, config: RelforgeConfig) -> set[str]:
    """The fields ingest reads from a file of this role."""
    if role == "catalog":
        return {"item_id", "title", "text", *config.ingest.text_fields}
    if role == "queries":
        return {"query_id", "query", "segment"}
    return {"query_id", "query", "item_id", "grade"}


def _check_mapping_used(mapping: dict[str, str], sources: dict[str, Source], config: RelforgeConfig) -> None:
    """Every mapped column must exist in a file it applies to.

    A missing column is an :class:`InputError` on the file that needs the field (e.g.
    ``--map title=name`` and a catalog without ``name``); a mapping no file can use is a
    :class:`ConfigError`.
    """
    for target, column in mapping.items():
        role, _, field = target.rpartition(".")
        roles = [role] if role else [r for r in sources if field in _role_fields(r, config)]
        files = [sources[r] for r in roles if r in sources] or list(sources.values())
        if any(column in s.columns for s in files):
            continue
        if roles and files:
            src = files[0]
            present = ", ".join(src.columns) or "none"
            raise InputError(
                src.file, None, column,
                f"missing column (mapped to {field} by --map {target}={column}; columns present: {present})",
            )
        names = ", ".join(s.file for s in files)
        raise ConfigError(f"--map {target}={column}: no column {column!r} in {names}")


def make_scale(grades: Sequence[str], gains: Sequence[float] | None = None) -> GradeScale:
    """A grade scale from names (worst first) and optional gains (default ``2**g - 1``)."""
    try:
        return GradeScale.from_names(
            [g.strip() for g in grades], list(gains) if gains is not None else None
        )
    except ValueError as exc:
        raise ConfigError(f"--grades {','.join(grades)}: {exc}") from None


def load_files(
    config: RelforgeConfig,
    *,
    catalog: str | Path,
    queries: str | Path,
    judgments: str | Path | None,
    mapper: GradeMapper,
    mapping: dict[str, str] | None = None,
    encoding: str | None = None,
) -> IngestedTables:
    """Read, map and validate the files into the three tables (nothing is written)."""
    encoding = encoding or config.ingest.encoding
    mapping = mapping or {}
    paths = {"catalog": catalog, "queries": queries, "judgments": judgments}
    sources = {
        role: read_file(path, encoding) for role, path in paths.items() if path is not None
    }
    _check_mapping_used(mapping, sources, config)
    mapped = {role: src.renamed(mapping_for(role, mapping)) for role, src in sources.items()}
    return build_tables(
        mapped["catalog"], mapped["queries"], mapped.get("judgments"), mapper,
        config.ingest, config.split,
    )


def origin_of(paths: dict[str, str | Path | None]) -> str:
    """Where ingested tables come from: ``files:`` and each role's file name."""
    return "files:" + ",".join(f"{role}={Path(str(p)).name}" for role, p in paths.items() if p is not None)


def ingest_files(
    bus: DataBus,
    config: RelforgeConfig,
    *,
    catalog: str | Path,
    queries: str | Path,
    judgments: str | Path | None = None,
    grades: Sequence[str],
    gains: Sequence[float] | None = None,
    mapping: dict[str, str] | None = None,
    score_bins: Sequence[float] | None = None,
    encoding: str | None = None,
    replace: bool | None = None,
) -> dict[str, Manifest]:
    """Ingest a catalog, queries and (optionally) judgments from Parquet, JSON Lines or CSV.

    Everything is validated before any table is written; without judgments every query is
    ``unlabeled`` and ``judgments`` is committed empty. A rerun with the same files and
    options is a no-op; other files or options replace the tables.

    Args:
        bus: where to write.
        config: the run's configuration (sections ``ingest`` and ``split``).
        catalog: items: ``item_id``, ``title`` and any of ``config.ingest.text_fields``
            (or a ready ``text`` column).
        queries: ``query`` and optionally ``query_id`` (else derived from the text) and ``segment``.
        judgments: ``query_id`` (or ``query``), ``item_id``, ``grade``.
        grades: the grade names, worst first, e.g. ``["irrelevant", "partial", "exact"]``.
        gains: NDCG gain per grade (default ``2**g - 1``).
        mapping: ``{field: column}``; a ``catalog.`` / ``queries.`` / ``judgments.`` prefix
            restricts an entry to one file.
        score_bins: ``len(grades) - 1`` ascending thresholds turning numeric scores into
            grades (``[1.5, 2.5]``: below 1.5 is grade 0, below 2.5 grade 1, else grade 2).
        encoding: text encoding of CSV / JSON files (default ``config.ingest.encoding``).
        replace: replace tables at ``bus`` that came from other inputs (default:
            ``config.ingest.replace``); without it they are refused.

    Returns:
        The three manifests, by table name.

    Raises:
        InputError: the first problem in the files, naming the file, the row and the field.
        ConfigError: a bad mapping, grade list or score bins.

    Example:
        >>> ingest_files(DataBus("runs/x"), load_config(), catalog="items.csv",
        ...              queries="queries.jsonl", judgments="qrels.parquet",
        ...              grades=["irrelevant", "partial", "exact"],
        ...              mapping={"item_id": "sku"})                # doctest: +SKIP
    """
    scale = make_scale(grades, gains)
    mapper = GradeMapper(scale, score_bins=score_bins)
    encoding = encoding or config.ingest.encoding
    paths = {"catalog": catalog, "queries": queries, "judgments": judgments}
    inputs = {
        f"{role}:{Path(path).name}": sha256_file(path)
        for role, path in paths.items()
        if path is not None and Path(path).is_file()
    }
    options = {
        "grades": scale.model_dump(), "mapping": mapping or {}, "encoding": encoding,
        "score_bins": list(score_bins) if score_bins is not None else None,
        "judgments": judgments is not None,
    }
    inputs["options"] = hashlib.sha256(json.dumps(options, sort_keys=True).encode()).hexdigest()[:16]
    config_hash = config.section_hash("ingest", "split")
    if len(inputs) == len([p for p in paths.values() if p is not None]) + 1:
        done = already_ingested(bus, inputs, config_hash)
        if done is not None:
            return done
    tables = load_files(
        config, catalog=catalog, queries=queries, judgments=judgments, mapper=mapper,
        mapping=mapping, encoding=encoding,
    )
    return write_tables(
        bus, tables, scale, inputs=inputs, config_hash=config_hash,
        metadata={"source": "files", "origin": origin_of(paths)},
        replace=config.ingest.replace if replace is None else replace,
    )
