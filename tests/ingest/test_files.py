"""`ingest_files`: Parquet, JSON Lines and CSV, column mapping, grade names / integers / score bins."""

from __future__ import annotations

import gzip
import json
from collections import Counter

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from relforge.bus import DataBus
from relforge.config import load_config
from relforge.errors import ConfigError, InputError
from relforge.grades import GradeScale, read_grade_scale
from relforge.ingest import (
    GradeMapper,
    ingest_files,
    parse_mapping,
    parse_score_bins,
    query_id_for,
)
from tests.ingest.conftest import (
    CATALOG,
    GRADES,
    TINY_MAPPING,
    write_csv,
    write_jsonl,
    write_parquet,
)


def test_mixed_formats_with_mapping(tmp_path, tiny_files, config):
    bus = DataBus(tmp_path / "run")
    manifests = ingest_files(bus, config, **tiny_files, grades=GRADES, mapping=TINY_MAPPING)
    assert {k: m.rows for k, m in manifests.items()} == {"catalog": 4, "queries": 4, "judgments": 5}

    catalog = {r["item_id"]: r for r in bus.read_table("catalog").to_pylist()}
    assert catalog["A1"]["title"] == "Red running shoes"
    assert catalog["A1"]["text"] == "Red running shoes | Acme | Light shoes for road running"
    assert catalog["A2"]["text"] == "Blue rain jacket | Brolly"  # empty description left out
    assert catalog["A3"]["brand"] is None
    assert "sku" not in catalog["A1"] and "name" not in catalog["A1"]

    queries = {r["query"]: r for r in bus.read_table("queries").to_pylist()}
    assert queries["umbrella"]["split"] == "unlabeled"
    assert {q["split"] for q in queries.values()} - {"unlabeled"} <= {"train", "calib", "test"}
    assert queries["socks"]["query_id"] == query_id_for("socks")

    judgments = bus.read_table("judgments").to_pylist()
    grades = {(j["query_id"], j["item_id"]): j["grade"] for j in judgments}
    shoes = query_id_for("running shoes")
    assert grades[(shoes, "A1")] == 2 and grades[(shoes, "A3")] == 1 and grades[(shoes, "A4")] == 0
    assert grades[(query_id_for("rain jacket"), "A2")] == 2  # "Exact": names are case-insensitive
    assert grades[(query_id_for("socks"), "A4")] == 2  # "2": an integer grade
    scale = read_grade_scale(bus)
    assert scale.names == GRADES and scale.gains == [0.0, 1.0, 3.0]


def test_own_ids_segments_and_score_bins(tmp_path, config):
    catalog = write_parquet(tmp_path / "items.parquet", [
        {"item_id": 1, "title": "Lamp", "category": ["Home", "Lighting"]},
        {"item_id": 2, "title": "Desk", "category": ["Home", "Furniture"]},
    ])
    queries = write_csv(tmp_path / "q.csv", [
        {"qid": "Q1", "query": "lamp", "segment": "head"},
        {"qid": "Q2", "query": "desk", "segment": "tail"},
        {"qid": "Q3", "query": "desk lamp", "segment": ""},
    ])
    judgments = write_jsonl(tmp_path / "j.jsonl", [
        {"qid": "Q1", "item_id": 1, "mean_rating": 2.9},
        {"qid": "Q1", "item_id": 2, "mean_rating": 1.0},
        {"qid": "Q2", "item_id": 2, "mean_rating": 2.5},
        {"qid": "Q2", "item_id": 1, "mean_rating": 1.5},
        {"qid": "Q3", "item_id": 1, "mean_rating": 1.49},
    ])
    bus = DataBus(tmp_path / "run")
    ingest_files(
        bus, config, catalog=catalog, queries=queries, judgments=judgments,
        grades=["bad", "ok", "good"], gains=[0, 0.5, 1],
        mapping={"query_id": "qid", "judgments.grade": "mean_rating"}, score_bins=[1.5, 2.5],
    )
    catalog_rows = bus.read_table("catalog").to_pylist()
    assert [r["item_id"] for r in catalog_rows] == ["1", "2"]  # ids become strings
    assert catalog_rows[0]["category"] == "Home > Lighting"
    assert catalog_rows[0]["text"] == "Lamp | Home > Lighting"
    queries_rows = bus.read_table("queries").to_pylist()
    assert [q["query_id"] for q in queries_rows] == ["Q1", "Q2", "Q3"]
    assert [q["segment"] for q in queries_rows] == ["head", "tail", None]
    got = [(j["query_id"], j["item_id"], j["grade"]) for j in bus.read_table("judgments").to_pylist()]
    assert got == [("Q1", "1", 2), ("Q1", "2", 0), ("Q2", "2", 2), ("Q2", "1", 1), ("Q3", "1", 0)]
    assert read_grade_scale(bus).gains == [0, 0.5, 1]


def test_without_judgments_everything_is_unlabeled(tmp_path, tiny_files, config):
    bus = DataBus(tmp_path / "run")
    manifests = ingest_files(
        bus, config, catalog=tiny_files["catalog"], queries=tiny_files["queries"],
        grades=GRADES, mapping={"item_id": "sku", "title": "name"},
    )
    assert manifests["judgments"].rows == 0
    assert set(bus.read_table("queries").column("split").to_pylist()) == {"unlabeled"}
    assert read_grade_scale(bus).names == GRADES


def test_tsv_gzip_and_json_array(tmp_path, config):
    tsv = write_csv(tmp_path / "c.tsv", [{"item_id": "x", "title": "Tab\tfree? no, quoted"}], delimiter="\t")
    gz = tmp_path / "c.tsv.gz"
    gz.write_bytes(gzip.compress(tsv.read_bytes()))
    queries = tmp_path / "q.json"
    queries.write_text(json.dumps([{"query": "tab"}, {"query": "quoted"}]))
    judgments = write_csv(tmp_path / "j.csv", [{"query": "TAB", "item_id": "x", "grade": "1"}])
    bus = DataBus(tmp_path / "run")
    ingest_files(bus, config, catalog=gz, queries=queries, judgments=judgments, grades=["no", "yes"])
    assert bus.read_table("catalog").column("title").to_pylist() == ["Tab\tfree? no, quoted"]
    assert Counter(bus.read_table("queries").column("split").to_pylist())["unlabeled"] == 1


def test_latin1_with_encoding_option(tmp_path, config):
    catalog = write_csv(tmp_path / "c.csv", [{"item_id": "1", "title": "Café crème"}], encoding="latin-1")
    queries = write_csv(tmp_path / "q.csv", [{"query": "café"}])
    bus = DataBus(tmp_path / "run")
    with pytest.raises(InputError) as info:
        ingest_files(bus, config, catalog=catalog, queries=queries, grades=GRADES)
    assert (info.value.row, info.value.field) == (1, "title")
    assert "byte 0xe9 is not valid utf-8" in str(info.value) and "--encoding latin-1" in str(info.value)
    ingest_files(bus, config, catalog=catalog, queries=queries, grades=GRADES, encoding="latin-1")
    assert bus.read_table("catalog").column("title").to_pylist() == ["Café crème"]


def test_utf8_byte_order_mark_is_dropped(tmp_path, config):
    catalog = tmp_path / "c.csv"
    catalog.write_bytes("\ufeffitem_id,title\n1,Lamp\n".encode())
    queries = write_csv(tmp_path / "q.csv", [{"query": "lamp"}])
    bus = DataBus(tmp_path / "run")
    ingest_files(bus, config, catalog=catalog, queries=queries, grades=GRADES)
    assert bus.read_table("catalog").column("item_id").to_pylist() == ["1"]


def test_rerun_no_op_and_changed_input_replaces(tmp_path, tiny_files, config):
    bus = DataBus(tmp_path / "run")
    first = ingest_files(bus, config, **tiny_files, grades=GRADES, mapping=TINY_MAPPING)
    assert ingest_files(bus, config, **tiny_files, grades=GRADES, mapping=TINY_MAPPING) == first
    write_csv(tiny_files["catalog"], CATALOG + [{"sku": "A5", "name": "Cap", "brand": "", "description": ""}])
    second = ingest_files(bus, config, **tiny_files, grades=GRADES, mapping=TINY_MAPPING)
    assert second["catalog"].rows == 5 and second["catalog"].fingerprint != first["catalog"].fingerprint
    # other options (here the gains) also make new tables
    third = ingest_files(bus, config, **tiny_files, grades=GRADES, gains=[0, 1, 2], mapping=TINY_MAPPING)
    assert third["judgments"].fingerprint != second["judgments"].fingerprint
    assert read_grade_scale(bus).gains == [0, 1, 2]


def test_ready_text_column_is_used(tmp_path, config):
    catalog = write_jsonl(tmp_path / "c.jsonl", [
        {"item_id": "a", "title": "T", "brand": "B", "text": "  own   text "},
        {"item_id": "b", "title": "U", "brand": "C", "text": ""},
    ])
    queries = write_jsonl(tmp_path / "q.jsonl", [{"query": "x"}])
    bus = DataBus(tmp_path / "run")
    ingest_files(bus, config, catalog=catalog, queries=queries, grades=GRADES)
    assert bus.read_table("catalog").column("text").to_pylist() == ["own text", "U | C"]


def test_text_fields_come_from_the_config(tmp_path):
    catalog = write_csv(tmp_path / "c.csv", [{"item_id": "a", "title": "T", "brand": "B", "color": "red"}])
    queries = write_csv(tmp_path / "q.csv", [{"query": "x"}])
    bus = DataBus(tmp_path / "run")
    config = load_config(overrides=["ingest.text_fields=[color, title]"])
    ingest_files(bus, config, catalog=catalog, queries=queries, grades=GRADES)
    table = bus.read_table("catalog")
    assert table.column("text").to_pylist() == ["red | T"]
    assert "brand" not in table.column_names


def test_parse_mapping_and_bins():
    assert parse_mapping(["item_id=asin", " judgments.grade = label "]) == {
        "item_id": "asin", "judgments.grade": "label"}
    for bad in (["item_id"], ["=x"], ["items.item_id=x"]):
        with pytest.raises(ConfigError):
            parse_mapping(bad)
    assert parse_score_bins("1.5, 2.5") == [1.5, 2.5]
    assert parse_score_bins(None) is None
    with pytest.raises(ConfigError):
        parse_score_bins("1.5,high")


def test_bad_options_are_config_errors(tmp_path, tiny_files, config):
    bus = DataBus(tmp_path / "run")
    with pytest.raises(ConfigError, match="3 grades need 2"):
        ingest_files(bus, config, **tiny_files, grades=GRADES, mapping=TINY_MAPPING, score_bins=[1.5])
    with pytest.raises(ConfigError, match="ascend"):
        ingest_files(bus, config, **tiny_files, grades=GRADES, mapping=TINY_MAPPING, score_bins=[2, 1])
    with pytest.raises(ConfigError, match="distinct"):
        ingest_files(bus, config, **tiny_files, grades=["a", "A"], mapping=TINY_MAPPING)
    with pytest.raises(InputError, match="catalog.csv, field \"nmae\": missing column"):
        ingest_files(bus, config, **tiny_files, grades=GRADES, mapping={**TINY_MAPPING, "title": "nmae"})
    with pytest.raises(ConfigError, match="no column 'maker'"):
        ingest_files(bus, config, **tiny_files, grades=GRADES, mapping={**TINY_MAPPING, "vendor": "maker"})
    assert not bus.is_committed("catalog")


def test_grade_mapper_values():
    scale = GradeScale.from_names(GRADES)
    mapper = GradeMapper(scale)
    assert [mapper.grade_of(v) for v in ("exact", " Partial ", 0, "1", 2.0, "2.0")] == [2, 1, 0, 1, 2, 2]
    for bad in ("perfect", 3, -1, 1.5, "", True, None):
        with pytest.raises(ValueError):
            mapper.grade_of(bad)
    binned = GradeMapper(scale, score_bins=[1.5, 2.5])
    assert [binned.grade_of(v) for v in (1, 1.5, 2.49, 2.5, "3", 100)] == [0, 1, 1, 2, 2, 2]
    with pytest.raises(ValueError, match="not a number"):
        binned.grade_of("exact")


def test_dictionary_encoded_grades(tmp_path, config):
    catalog = write_csv(tmp_path / "c.csv", [{"item_id": "a", "title": "T"}])
    queries = write_csv(tmp_path / "q.csv", [{"query": "x"}])
    j = pa.table({"query": ["x"], "item_id": ["a"], "grade": pa.array(["exact"]).dictionary_encode()})
    pq.write_table(j, tmp_path / "j.parquet")
    bus = DataBus(tmp_path / "run")
    ingest_files(bus, config, catalog=catalog, queries=queries, judgments=tmp_path / "j.parquet", grades=GRADES)
    assert bus.read_table("judgments").column("grade").to_pylist() == [2]
