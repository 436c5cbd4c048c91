"""ESCI-150 ingest: the counts of its README, the grades, the split, reruns and the data's location."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import pytest

from relforge.bus import DataBus
from relforge.config import RelforgeConfig, load_config
from relforge.errors import InputError
from relforge.grades import ESCI, read_grade_scale
from relforge.ingest import (
    find_esci_dir,
    ingest_esci,
    load_esci,
    query_id_for,
)

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "src" / "relforge" / "data" / "esci-us-150"


@pytest.fixture(scope="module")
def esci_bus(tmp_path_factory) -> DataBus:
    bus = DataBus(tmp_path_factory.mktemp("esci") / "run")
    ingest_esci(bus, RelforgeConfig())
    return bus


def test_counts_match_the_data_readme(esci_bus):
    catalog = esci_bus.read_table("catalog")
    queries = esci_bus.read_table("queries")
    judgments = esci_bus.read_table("judgments")
    assert (catalog.num_rows, queries.num_rows, judgments.num_rows) == (6764, 150, 6678)
    assert Counter(judgments.column("grade").to_pylist()) == {3: 3389, 2: 1898, 1: 305, 0: 1086}
    judged_items = set(judgments.column("item_id").to_pylist())
    assert len(judged_items) == 6597
    assert judged_items <= set(catalog.column("item_id").to_pylist())
    assert set(judgments.column("source").to_pylist()) == {"human"}
    assert judgments.schema.field("grade").type.bit_width == 8


def test_split_is_60_20_20_of_judged_queries(esci_bus):
    queries = esci_bus.read_table("queries")
    assert Counter(queries.column("split").to_pylist()) == {"train": 90, "calib": 30, "test": 30}
    judged = set(esci_bus.read_table("judgments").column("query_id").to_pylist())
    assert judged == set(queries.column("query_id").to_pylist())  # every ESCI-150 query is judged


def test_query_ids_come_from_the_text(esci_bus):
    queries = esci_bus.read_table("queries").to_pylist()
    assert queries[0]["query"] == "t towels kitchen"
    assert all(q["query_id"] == query_id_for(q["query"]) for q in queries)
    assert len({q["query_id"] for q in queries}) == 150


def test_catalog_text_and_attributes(esci_bus):
    catalog = esci_bus.read_table("catalog")
    assert catalog.column_names[:3] == ["item_id", "title", "text"]
    assert {"brand", "color", "category", "bullet_points", "description"} <= set(catalog.column_names)
    rows = {r["item_id"]: r for r in catalog.to_pylist()}
    mattress = rows["B0777K9RGX"]
    assert mattress["category"].startswith("Home & Kitchen > Furniture > Bedroom Furniture")
    assert mattress["text"].startswith(mattress["title"] + " | Signature Design by Ashley | White | Home")
    assert all(r["text"].startswith(" ".join(r["title"].split())) for r in rows.values())
    assert max(len(r["text"]) for r in rows.values()) <= RelforgeConfig().ingest.max_text_chars


def test_grade_scale_is_recorded_on_every_table(esci_bus):
    assert read_grade_scale(esci_bus) == ESCI
    for name in ("catalog", "queries", "judgments"):
        assert esci_bus.manifest(name).metadata["grade_scale"] == ESCI.model_dump()
    inputs = esci_bus.manifest("judgments").inputs
    assert set(inputs) == {"esci_us_queryset.json", "esci_us_judgments.json", "esci_us_ecommerce_shrunk.ndjson.zip"}


def test_text_is_cut_to_max_text_chars():
    tables = load_esci(DATA, load_config(overrides=["ingest.max_text_chars=40"]))
    lengths = [len(t) for t in tables.catalog.column("text").to_pylist()]
    assert max(lengths) == 40


def test_rerun_is_a_no_op_and_new_config_replaces(tmp_path):
    bus = DataBus(tmp_path / "run")
    first = ingest_esci(bus, RelforgeConfig())
    again = ingest_esci(bus, RelforgeConfig())
    assert again == first  # same manifests: nothing was rewritten
    reseeded = ingest_esci(bus, load_config(overrides=["split.seed=99"]))
    assert reseeded["queries"].fingerprint != first["queries"].fingerprint
    before = dict(zip(*bus.read_table("queries", columns=["query_id", "split"]).to_pydict().values()))
    assert Counter(before.values()) == {"train": 90, "calib": 30, "test": 30}
    old = {q["query_id"]: q["split"] for q in _splits(first, tmp_path)}
    assert old != before  # another seed, another split of the same sizes


def _splits(manifests, tmp_path):
    from relforge.ingest import split_queries

    ids = [query_id_for(q["queryText"]) for q in json.loads((DATA / "esci_us_queryset.json").read_text())["querySetQueries"]]
    return [{"query_id": q, "split": s} for q, s in split_queries(ids, ids, RelforgeConfig().split).items()]


@pytest.mark.s3
def test_ingest_to_s3(s3_bus):
    manifests = ingest_esci(s3_bus, RelforgeConfig())
    assert {k: m.rows for k, m in manifests.items()} == {"catalog": 6764, "queries": 150, "judgments": 6678}
    assert s3_bus.read_table("judgments").num_rows == 6678
    assert read_grade_scale(s3_bus).names == ESCI.names


def test_find_data(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # package data: found wherever relforge runs from
    assert find_esci_dir() == DATA.resolve()
    copy = tmp_path / "somewhere" / "esci-us-150"
    shutil.copytree(DATA, copy)
    monkeypatch.setenv("RELFORGE_DATA", str(copy.parent))
    assert find_esci_dir() == copy
    monkeypatch.setenv("RELFORGE_DATA", str(copy))
    assert find_esci_dir() == copy
    with pytest.raises(InputError, match="missing"):
        find_esci_dir(tmp_path)


def test_data_not_found_is_a_clear_error(tmp_path, monkeypatch):
    import relforge.ingest._esci as esci

    monkeypatch.setenv("RELFORGE_DATA", str(tmp_path))
    monkeypatch.setattr(esci, "packaged_esci_dir", lambda: tmp_path / "site" / "relforge" / "data")
    with pytest.raises(InputError, match="ESCI-150 data not found.*RELFORGE_DATA"):
        find_esci_dir()


def _bad_copy(tmp_path: Path, with_sums: bool) -> Path:
    copy = tmp_path / "esci"
    shutil.copytree(DATA, copy)
    if not with_sums:
        (copy / "SHA256SUMS").unlink()
    path = copy / "esci_us_judgments.json"
    data = json.loads(path.read_text())
    data["judgmentRatings"][0]["ratings"][2]["rating"] = "50.000"
    path.write_text(json.dumps(data))
    return copy


def test_bad_rating_names_file_row_and_field(tmp_path):
    copy = _bad_copy(tmp_path, with_sums=False)
    bus = DataBus(tmp_path / "run")
    with pytest.raises(InputError) as info:
        ingest_esci(bus, RelforgeConfig(), copy)
    err = info.value
    assert (Path(err.file).name, err.row, err.field) == ("esci_us_judgments.json", 3, "rating")
    assert "'50.000' is not on the grade scale: expected one of 0.000 (Irrelevant)" in str(err)
    assert not bus.is_committed("catalog")  # nothing written


def test_modified_file_fails_its_checksum(tmp_path):
    copy = _bad_copy(tmp_path, with_sums=True)
    with pytest.raises(InputError, match="does not match its SHA-256"):
        ingest_esci(DataBus(tmp_path / "run"), RelforgeConfig(), copy)
