"""Publishing (with the recall gate) and loading (checked against the manifest)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from relforge.errors import ModelError, RecallGateError
from relforge.index import (
    IndexParams,
    ItemIndex,
    build_for_serving,
    load_index,
    publish,
    read_manifest,
)


@pytest.fixture(scope="module")
def served(vectors, queries):
    ids = [f"item-{i}" for i in range(len(vectors))]
    return build_for_serving(vectors, ids, params=IndexParams(served_exact_max_items=100, hnsw_m=16), queries=queries)


def test_publish_and_load_round_trip(served, queries, tmp_path):
    manifest = publish(served, tmp_path / "idx", model_version="two-tower@3")
    assert sorted(p.name for p in (tmp_path / "idx").iterdir()) == ["index.faiss", "item_ids.json", "manifest.json"]
    assert manifest["kind"] == "hnsw" and manifest["metric"] == "inner_product"
    assert manifest["dimension"] == served.dim and manifest["item_count"] == len(served)
    assert manifest["recall_at_10"] == served.recall.recall and manifest["recall_sample"] == len(queries)
    assert manifest["model_version"] == "two-tower@3" and manifest["parameters"]["m"] == 16
    assert read_manifest(tmp_path / "idx") == manifest
    loaded = load_index(tmp_path / "idx")
    a, sa = served.search(queries[:20], 10)
    b, sb = loaded.search(queries[:20], 10)
    assert np.array_equal(a, b) and np.allclose(sa, sb)
    assert loaded.ids(b)[0][0] == served.ids(a)[0][0] and loaded.ids(b)[0][0].startswith("item-")
    assert loaded.recall == served.recall and loaded.params == served.params


def test_exact_index_publishes_with_integer_ids(vectors, tmp_path):
    index = ItemIndex.build(vectors[:50], np.arange(100, 150), kind="exact")
    manifest = publish(index, tmp_path / "e", model_version="v1", min_recall=1.0)
    assert manifest["item_id_type"] == "int" and manifest["recall"]["source"] == "exact"
    assert load_index(tmp_path / "e").ids(np.array([[0, 49]]))[0] == [100, 149]


def test_gate_refuses_low_or_unmeasured_recall(vectors, queries, tmp_path):
    poor = ItemIndex.build(vectors, kind="ivfpq", params=IndexParams(ivf_nprobe=1, refine="none", pq_nbits=6))
    with pytest.raises(RecallGateError, match="not measured"):
        publish(poor, tmp_path / "p", model_version="v1")
    poor.measure_recall(vectors, queries)
    with pytest.raises(RecallGateError, match=r"recall@10 0\.\d+ .* under the minimum 0\.9500"):
        publish(poor, tmp_path / "p", model_version="v1")
    assert not (tmp_path / "p").exists() or not any((tmp_path / "p").iterdir())
    publish(poor, tmp_path / "p", model_version="v1", min_recall=0.0)  # a caller may lower the bar


def test_load_checks_files_against_the_manifest(served, tmp_path):
    folder = tmp_path / "idx"
    publish(served, folder, model_version="v1")
    ids = folder / "item_ids.json"
    original = ids.read_text()
    ids.write_text(original.replace("item-0", "item-X"))
    with pytest.raises(ModelError, match=r"item_ids.json: size or SHA-256"):
        load_index(folder)
    ids.write_text(original)
    manifest = json.loads((folder / "manifest.json").read_text())
    (folder / "manifest.json").write_text(json.dumps({**manifest, "dimension": 7}))
    with pytest.raises(ModelError, match=r'field "dimension" says 7'):
        load_index(folder)
    (folder / "manifest.json").write_text(json.dumps({**manifest, "kind": "exact"}))
    with pytest.raises(ModelError, match=r'field "kind" says \'exact\''):
        load_index(folder)
    (folder / "manifest.json").unlink()
    with pytest.raises(ModelError, match="no index manifest"):
        load_index(folder)
    publish(served, tmp_path / "again", model_version="v1")
    (tmp_path / "again" / "index.faiss").unlink()
    with pytest.raises(ModelError, match="index.faiss: missing or unreadable"):
        load_index(tmp_path / "again")
