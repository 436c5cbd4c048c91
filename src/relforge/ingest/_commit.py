"""Writing the three ingested tables, and skipping the work when they are already committed."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from relforge.bus import DataBus, Manifest, fingerprint
from relforge.grades import GradeScale
from relforge.ingest._grades import GRADE_SCALE_KEY
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


def write_tables(
    bus: DataBus,
    tables: IngestedTables,
    scale: GradeScale,
    *,
    inputs: dict[str, str],
    config_hash: str,
    metadata: dict[str, Any] | None = None,
) -> dict[str, Manifest]:
    """Commit catalog, queries and judgments, each with the grade scale in its metadata.

    Call only with validated tables: a table is committed whole or not at all, and an earlier
    committed table at the same URI stays readable until its replacement is committed.
    """
    log_event(
        log, "validated", catalog=tables.catalog.num_rows, queries=tables.queries.num_rows,
        judgments=tables.judgments.num_rows,
    )
    meta = {GRADE_SCALE_KEY: scale.model_dump(), **(metadata or {})}
    return {
        name: bus.write_table(name, table, metadata=meta, inputs=inputs, config_hash=config_hash)
        for name, table in tables.as_dict().items()
    }
