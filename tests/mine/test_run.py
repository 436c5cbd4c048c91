"""Step ``mine`` end to end on the bus: the table, the report, resuming, odd input, a fourth channel."""

from __future__ import annotations

import numpy as np
import pytest

import relforge.mine._run as run_module
from relforge.bus import DataBus
from relforge.errors import ConfigError, InputError
from relforge.mine import REPORT_JSON, REPORT_MD, run_mine
from relforge.mine.channels import register_channel, unregister_channel
from tests.mine.conftest import ITEMS, JUDGMENTS, QUERIES, write_inputs
from tests.mine.test_channels import _Echo

CHANNELS = ["bm25", "ngram", "dense"]


def _by_pair(table):
    return {(r["query_id"], r["item_id"]): r for r in table.to_pylist()}


def test_mine_on_any_bus(any_bus, mine_config):
    write_inputs(any_bus)
    manifest = run_mine(any_bus, mine_config)
    table = any_bus.read_table("candidates")
    assert manifest.rows == table.num_rows > 0
    assert len(manifest.files) == 4  # 10 queries, 3 per shard
    assert manifest.inputs == any_bus.input_digests("catalog", "queries")
    assert [c["name"] for c in manifest.metadata["channels"]] == CHANNELS
    assert [c["lexical"] for c in manifest.metadata["channels"]] == [True, True, False]
    for c in CHANNELS:
        assert f"rank_{c}" in table.column_names and f"score_{c}" in table.column_names
    rows = table.to_pylist()
    # every query (all splits) has rows: at least its random negatives
    assert {r["query_id"] for r in rows} == {q for q, _, _ in QUERIES}
    for r in rows:
        found = [r[f"rank_{c}"] is not None for c in CHANNELS]
        assert r["n_channels"] == sum(found)
        assert all((r[f"score_{c}"] is not None) == f for c, f in zip(CHANNELS, found))
        assert all(r[f"rank_{c}"] is None or 1 <= r[f"rank_{c}"] <= 5 for c in CHANNELS)
        assert (r["bucket"] == "random") == (r["n_channels"] == 0)
    pairs = _by_pair(table)
    assert len(pairs) == len(rows)  # no (query, item) twice
    assert pairs[("q01", "i01")]["rank_bm25"] is not None
    report = any_bus.read_json(REPORT_JSON)
    assert report["rows"] == table.num_rows
    assert sum(v["rows"] for v in report["buckets"].values()) == table.num_rows
    assert "## Human grades per bucket" in any_bus.read_text(REPORT_MD)


def test_odd_queries_and_items(local_bus, mine_config):
    write_inputs(local_bus)
    run_mine(local_bus, mine_config)
    rows = local_bus.read_table("candidates").to_pylist()

    def of(q, bucket=None):
        return [r for r in rows if r["query_id"] == q and (bucket is None or r["bucket"] == bucket)]

    # punctuation only: no channel retrieves anything, only the random negatives
    assert [r["bucket"] for r in of("q05")] == ["random", "random"]
    # stop words only: bm25 retrieves nothing, the other channels do
    assert all(r["rank_bm25"] is None for r in of("q04"))
    assert any(r["rank_dense"] is not None for r in of("q04"))
    # non-Latin: both lexical channels put the Cyrillic item first
    iron = next(r for r in of("q06") if r["item_id"] == "i13")
    assert iron["rank_bm25"] == 1 and iron["rank_ngram"] == 1
    # duplicate query text: the same retrieved items, ranks and scores
    strip = lambda r: {k: v for k, v in r.items() if k != "query_id"}
    assert [strip(r) for r in of("q01") if r["n_channels"]] == [strip(r) for r in of("q07") if r["n_channels"]]
    # the item without a letter or digit is never a candidate, not even a random one
    assert not [r for r in rows if r["item_id"] == "i16"]


def test_catalog_smaller_than_k(local_bus, mine_config):
    write_inputs(local_bus, items=ITEMS[:3], judgments=None)
    mine_config.mine.top_k = 50
    mine_config.mine.random_negatives = 5
    run_mine(local_bus, mine_config)
    rows = local_bus.read_table("candidates").to_pylist()
    for q, _, _ in QUERIES:
        mine_rows = [r for r in rows if r["query_id"] == q]
        assert len(mine_rows) <= 3 and len({r["item_id"] for r in mine_rows}) == len(mine_rows)
    dense_ranks = {r["rank_dense"] for r in rows if r["query_id"] == "q01"}
    assert dense_ranks == {1, 2, 3}  # all three items, then padding
    report = local_bus.read_json(REPORT_JSON)
    assert report["grades"] is None


def test_killed_run_resumes_without_redoing_shards(local_bus, mine_config, monkeypatch):
    write_inputs(local_bus)
    calls = []
    real = run_module.build_candidates

    def dies_on_third(query_ids, *args, **kwargs):
        calls.append(query_ids.to_pylist())
        if len(calls) == 3:
            raise KeyboardInterrupt("killed")
        return real(query_ids, *args, **kwargs)

    monkeypatch.setattr(run_module, "build_candidates", dies_on_third)
    with pytest.raises(KeyboardInterrupt):
        run_mine(local_bus, mine_config)
    assert not local_bus.is_committed("candidates")
    calls.clear()
    monkeypatch.setattr(run_module, "build_candidates", lambda q, *a, **k: (calls.append(q.to_pylist()), real(q, *a, **k))[1])
    run_mine(local_bus, mine_config)
    assert calls == [["q07", "q08", "q09"], ["q10"]]  # shards 0 and 1 were kept
    resumed = local_bus.read_table("candidates")

    clean_bus = DataBus(local_bus.root + "-clean")
    write_inputs(clean_bus)
    run_mine(clean_bus, mine_config)
    clean = clean_bus.read_table("candidates")
    assert resumed.to_pylist() == clean.to_pylist()

    # a rerun of a committed table builds no channel at all
    monkeypatch.setattr(run_module, "build_channel", lambda *a: pytest.fail("rebuilt a channel"))
    assert run_mine(local_bus, mine_config).rows == resumed.num_rows


def test_duplicate_ids_are_input_errors(local_bus, mine_config):
    write_inputs(local_bus, queries=[*QUERIES, ("q03", "again", "train")])
    with pytest.raises(InputError, match=r'queries, row 11, field "query_id": "q03" repeats row 3'):
        run_mine(local_bus, mine_config)
    other = DataBus(local_bus.root + "-items")
    write_inputs(other, items=[*ITEMS, ("i02", "x", "x")])
    with pytest.raises(InputError, match=r'field "item_id": "i02" repeats row 2'):
        run_mine(other, mine_config)


def test_unknown_channel_is_a_config_error(local_bus, mine_config):
    write_inputs(local_bus)
    mine_config.mine.channels = ["bm25", "nope"]
    with pytest.raises(ConfigError, match='unknown channel "nope"'):
        run_mine(local_bus, mine_config)


def test_a_fourth_channel_plugs_in(local_bus, mine_config):
    register_channel("echo", lambda cfg: _Echo())
    try:
        queries = [*QUERIES, ("q11", "i03 i07", "train")]
        write_inputs(local_bus, queries=queries)
        mine_config.mine.channels = [*CHANNELS, "echo"]
        run_mine(local_bus, mine_config)
    finally:
        unregister_channel("echo")
    table = local_bus.read_table("candidates")
    assert "rank_echo" in table.column_names
    rows = _by_pair(table)
    assert rows[("q11", "i03")]["rank_echo"] == 1 and rows[("q11", "i07")]["rank_echo"] == 2
    assert max(r["n_channels"] for r in rows.values()) <= 4
    report = local_bus.read_json(REPORT_JSON)
    assert len(report["overlap"]) == 6  # every pair of four channels


def test_report_counts_grades_per_bucket(local_bus, mine_config):
    write_inputs(local_bus)
    run_mine(local_bus, mine_config)
    table = local_bus.read_table("candidates").to_pylist()
    report = local_bus.read_json(REPORT_JSON)
    grades = {(q, i): g for q, i, g in JUDGMENTS}
    expected: dict[str, np.ndarray] = {}
    for r in table:
        g = grades.get((r["query_id"], r["item_id"]))
        if g is not None:
            expected.setdefault(r["bucket"], np.zeros(4, int))[g] += 1
    for bucket, counts in expected.items():
        assert report["grades"]["by_bucket"][bucket]["counts"] == counts.tolist()
    mined = {(r["query_id"], r["item_id"]) for r in table if r["n_channels"] > 0}
    missed = sum(1 for pair in grades if pair not in mined)
    assert report["grades"]["not_retrieved"]["judged"] == missed
    # overlap: per-query Jaccard recomputed by hand for bm25 / ngram
    per_q = {}
    for r in table:
        a, b = r["rank_bm25"] is not None, r["rank_ngram"] is not None
        inter, union = per_q.get(r["query_id"], (0, 0))
        per_q[r["query_id"]] = (inter + (a and b), union + (a or b))
    js = [i / u for i, u in per_q.values() if u]
    pair = next(o for o in report["overlap"] if (o["a"], o["b"]) == ("bm25", "ngram"))
    assert pair["mean_jaccard"] == pytest.approx(np.mean(js), abs=1e-4) and pair["queries"] == len(js)
    md = local_bus.read_text(REPORT_MD)
    assert "| consensus |" in md and "lexical_only" in md


def test_cli_mine(tmp_path, bi_encoder_dir):
    from typer.testing import CliRunner

    from relforge.cli import _register, app

    _register()
    bus = DataBus(tmp_path / "run")
    write_inputs(bus)
    result = CliRunner().invoke(
        app,
        ["--set", f"mine.dense_model={bi_encoder_dir}", "--set", "mine.top_k=4", "mine", "--run", str(tmp_path / "run")],
    )
    assert result.exit_code == 0, result.output
    line = result.output.splitlines()[0]
    assert line.startswith("mine") and "candidates " in line and "queries (consensus" in line
    assert "reports/mining.md" in result.output
    assert bus.is_committed("candidates")
