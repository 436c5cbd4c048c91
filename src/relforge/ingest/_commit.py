"""Writing the three ingested tables, and skipping the work when they are already committed."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from relforge.bus import DataBus, Manifest, fingerprint
from relforge.errors import ReplaceRefusedError
from relforge.grades import GRADE_SCALE_KEY, GradeScale
from relforge.ingest._tables import IngestedTables
from relforge.logs import get_logger, log_event

TABLES = ("catalog", "queries", "judgments")
log = get_logger("ingest")


def sha256_file(path: str | Path) -> str:
    """The SHA-256 of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def already_ingested(bus: DataBus, inputs: dict[str, str], config_hash: str) -> dict[str, Manifest] | None:
    """The manifests of the three tables when all are committed from these inputs, else ``None``."""
    fp = fingerprint(inputs, config_hash)
    manifests = {}
    for name in TABLES:
        manifest = bus.committed_with(name, fp)
        if manifest is None:
            return None
        manifests[name] = manifest
    log_event(log, "already ingested", root=bus.root, fingerprint=fp)
    return manifests


def check_origin(bus: DataBus, origin: str, replace: bool) -> None:
    """Refuse to replace ingested tables that came from other inputs, unless ``replace``.

    ``origin`` names where tables come from (``esci-us-150``, or ``files:`` and the files'
    names); new contents of the same files, or other split or ingest settings, are a rerun
    of the same origin and replace the tables.

    Raises:
        ReplaceRefusedError: naming both origins and how to replace.
    """
    for name in TABLES:
        if not bus.is_committed(name):
            continue
        existing = bus.manifest(name).metadata.get("origin")
        if existing is not None and existing != origin and not replace:
            raise ReplaceRefusedError(
                f"{bus.uri(name)}: holds tables ingested from {existing}, not from {origin}; refusing to "
                "replace them (use another run URI, or pass --replace / --set ingest.replace=true)"
            )


def write_tables(
    bus: DataBus,
    tables: IngestedTables,
    scale: GradeScale,
    *,
    inputs: dict[str, str],
    config_hash: str,
    metadata: dict[str, Any] | None = None,
    replace: bool = False,
) -> dict[str, Manifest]:
    """Commit catalog, queries and judgments, each with the grade scale in its metadata.

    Call only with validated tables: a table is committed whole or not at all, and an earlier
    committed table at the same URI stays readable until its replacement is committed. Tables
    from another origin (``metadata["origin"]``) are replaced only with ``replace``.
    """
    if metadata and "origin" in metadata:
        check_origin(bus, metadata["origin"], replace)
    log_event(
        log, "validated", catalog=tables.catalog.num_rows, queries=tables.queries.num_rows,
        judgments=tables.judgments.num_rows,
    )
    meta = {GRADE_SCALE_KEY: scale.model_dump(), **(metadata or {})}
    return {
        name: bus.write_table(name, table, metadata=meta, inputs=inputs, config_hash=config_hash)
        for name, table in tables.as_dict().items()
    }
