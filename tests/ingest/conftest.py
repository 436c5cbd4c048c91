"""Tiny catalog / queries / judgments files in every supported format."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from relforge.config import RelforgeConfig

GRADES = ["irrelevant", "partial", "exact"]

CATALOG = [
    {"sku": "A1", "name": "Red running shoes", "brand": "Acme", "description": "Light shoes for road running"},
    {"sku": "A2", "name": "Blue rain jacket", "brand": "Brolly", "description": ""},
    {"sku": "A3", "name": "Trail shoes", "brand": "", "description": "Grippy soles"},
    {"sku": "A4", "name": "Wool socks", "brand": "Acme", "description": "Warm"},
]
QUERIES = [
    {"query": "running shoes"},
    {"query": "rain jacket"},
    {"query": "socks"},
    {"query": "umbrella"},  # no judgments: unlabeled
]
JUDGMENTS = [
    {"query": "running shoes", "sku": "A1", "label": "exact"},
    {"query": "running shoes", "sku": "A3", "label": "partial"},
    {"query": "running shoes", "sku": "A4", "label": "irrelevant"},
    {"query": "rain jacket", "sku": "A2", "label": "Exact"},
    {"query": "socks", "sku": "A4", "label": "2"},
]


def write_csv(path: Path, rows: list[dict], encoding: str = "utf-8", delimiter: str = ",") -> Path:
    with path.open("w", newline="", encoding=encoding) as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]), delimiter=delimiter)
        writer.writeheader()
        writer.writerows(rows)
    return path


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def write_parquet(path: Path, rows: list[dict]) -> Path:
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


@pytest.fixture
def tiny_files(tmp_path) -> dict[str, Path]:
    """catalog.csv (columns sku, name, ...), queries.jsonl (query only), judgments.parquet (query, sku, label)."""
    return {
        "catalog": write_csv(tmp_path / "catalog.csv", CATALOG),
        "queries": write_jsonl(tmp_path / "queries.jsonl", QUERIES),
        "judgments": write_parquet(tmp_path / "judgments.parquet", JUDGMENTS),
    }


TINY_MAPPING = {"item_id": "sku", "title": "name", "grade": "label"}


@pytest.fixture
def config() -> RelforgeConfig:
    return RelforgeConfig()
