"""Step ``export-index``: the published export (index, ids, encoder, manifest), the ``retrieval``
table, the recall gate, ``relforge search``, and the exported retriever as a mining channel."""

import subprocess
import sys

import numpy as np
import pytest

from relforge.bus import DataBus
from relforge.config import load_config
from relforge.curriculum import run_curriculum
from relforge.errors import RecallGateError
from relforge.twotower import (
    Retriever,
    read_descriptor,
    read_export,
    run_export_index,
    run_train_two_tower,
)
from tests.tiny_models import WORDS
from tests.twotower.conftest import small_config
from tests.twotower.synthetic import catalog, test_query_ids, write_run


@pytest.fixture
def trained(run_bus, config):
    run_curriculum(run_bus, config)
    run_train_two_tower(run_bus, config)
    return run_bus


def test_the_export_is_published_with_its_manifest_and_answers_queries(trained, config, tmp_path):
    result = run_export_index(trained, config)
    doc = read_export(trained)
    descriptor = read_descriptor(trained)
    assert doc["model_version"] == descriptor["version"] and doc["metric"] == "inner_product"
    assert doc["kind"] == "exact" and doc["recall_at_10"] == 1.0 and doc["items"] == catalog().num_rows
    assert doc["dimension"] == 32 and result["kind"] == "exact"
    for path in ("export/index/index.faiss", "export/index/item_ids.json", "export/query_encoder/modules.json"):
        assert trained.exists(path)
    retriever = Retriever.from_bus(trained, tmp_path / "fresh-cache")
    ids, scores = retriever.search(["running shoes", "!!!"], 5)
    assert len(ids[0]) == 5 and set(ids[0]) <= set(catalog().column("item_id").to_pylist())
    assert ids[1] == [] and np.all(np.diff(scores[0]) <= 1e-6)
    table = trained.read_table("retrieval")
    assert set(table.column("query_id").to_pylist()) == test_query_ids()  # export.retrieval_splits: [test]
    assert table.num_rows == len(test_query_ids()) * min(config.export.retrieval_depth, catalog().num_rows)
    assert trained.manifest("retrieval").metadata["export"] == doc["fingerprint"]


def test_an_index_under_the_minimum_recall_is_not_published(tmp_path, bi_encoder):
    bus = DataBus(tmp_path / "run")
    write_run(bus)
    rng = np.random.default_rng(0)
    names = [" ".join(rng.choice(WORDS, size=3)) for _ in range(1500)]
    import pyarrow as pa

    from relforge.grades import ESCI, GRADE_SCALE_KEY

    bus.write_table("catalog", pa.table({"item_id": [f"x{i}" for i in range(1500)], "title": names, "text": names}),
                    metadata={GRADE_SCALE_KEY: ESCI.model_dump()})
    config = small_config(bi_encoder, tmp_path / "cache", "twotower.stages=[]", "export.exact_max_items=10",
                          "export.min_recall=0.9999", "export.index={hnsw_m: 2, hnsw_ef_construction: 2}",
                          "export.retrieval_splits=[train, calib, test, unlabeled]")
    run_train_two_tower(bus, config)
    with pytest.raises(RecallGateError):
        run_export_index(bus, config)
    assert read_export(bus) is None
    report = bus.read_json("reports/index.json")
    assert report["published"] is False and report["kind"] == "hnsw" and report["recall"]["recall"] < 0.9999
    assert "not published" in bus.read_text("reports/index.md")


def test_relforge_search_answers_from_the_exported_index(trained, config, tmp_path):
    run_export_index(trained, config)
    proc = subprocess.run(
        [sys.executable, "-m", "relforge", "--set", f"models.cache_dir={tmp_path / 'cli-cache'}",
         "--set", "compute.device=cpu", "search", "--run", str(trained.root), "-k", "3", "water bottle"],
        capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 4 and lines[0].lstrip().startswith("1 ")
    assert "3 results in" in lines[-1] and " ms " in lines[-1] and "exact index of 40 items" in lines[-1]


def test_a_rerun_keeps_the_published_export(trained, config):
    first = run_export_index(trained, config)
    again = run_export_index(trained, config)
    assert again.get("reused") and again["fingerprint"] == first["fingerprint"]
    other = load_config(data=config.model_dump(mode="json"), overrides=["export.retrieval_depth=5"])
    assert run_export_index(trained, other)["fingerprint"] != first["fingerprint"]
    assert trained.read_table("retrieval").column("rank").to_numpy().max() == 5
