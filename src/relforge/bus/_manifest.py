"""The manifest that commits a table: written last, read first, trusted alone."""

from __future__ import annotations

import hashlib
import json
import subprocess
from datetime import datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

import relforge

MANIFEST = "manifest.json"


class FileEntry(BaseModel):
    path: str = Field(description="relative to the table's folder")
    rows: int
    bytes: int


class Manifest(BaseModel):
    """What a committed table holds and what made it.

    ``fingerprint`` hashes the inputs, the configuration and the code version: a rerun with
    the same fingerprint finds the table committed and skips the work.
    """

    table: str
    contract: str | None
    rows: int
    files: list[FileEntry]
    columns: dict[str, str]
    metadata: dict[str, Any] = Field(default_factory=dict)
    inputs: dict[str, str] = Field(default_factory=dict)
    config_hash: str = ""
    code_version: str = ""
    fingerprint: str = ""
    created_at: str = ""

    def digest(self) -> str:
        """A hash of this manifest, recorded by the tables made from it."""
        return hashlib.sha256(self.model_dump_json().encode()).hexdigest()[:16]


@lru_cache(maxsize=1)
def code_version() -> str:
    """The package version, plus the git commit when running from a checkout."""
    version = relforge.__version__
    try:
        root = Path(relforge.__file__).resolve().parents[2]
        sha = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
            capture_output=True, text=True, timeout=5, check=False,
        ).stdout.strip()
        if sha:
            version = f"{version}+g{sha}"
    except (OSError, subprocess.SubprocessError):
        pass
    return version


def fingerprint(inputs: dict[str, str], config_hash: str, extra: str = "") -> str:
    """The identity of a table's making: its inputs' digests and the configuration hash.

    The code version is recorded in the manifest but left out of the fingerprint, so that a
    new commit of relforge does not redo finished work.
    """
    payload = json.dumps({"inputs": inputs, "config": config_hash, "extra": extra}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")
