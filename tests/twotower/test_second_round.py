"""The second mining round: the exported retriever as a fourth channel, the round's steps in a
sub-run, and the report of what it changed."""

import pytest

from relforge.bus import DataBus
from relforge.curriculum import run_curriculum
from relforge.errors import RelforgeError
from relforge.subruns import run_second_round
from relforge.twotower import run_export_index, run_train_two_tower
from tests.twotower.conftest import small_config


def test_the_second_round_mines_with_the_first_rounds_retriever(run_bus, bi_encoder, tmp_path):
    config = small_config(bi_encoder, tmp_path / "cache", "mine.channels=[bm25]", "mine.top_k=6",
                          "mine.random_negatives=2", "second_round.enabled=true",
                          "second_round.steps=[mine, curriculum, train-two-tower, export-index]")
    run_curriculum(run_bus, config)
    run_train_two_tower(run_bus, config)
    run_export_index(run_bus, config)
    result = run_second_round(run_bus, config)
    child = DataBus(result["uri"])
    columns = child.manifest("candidates").columns
    assert "rank_two_tower" in columns and "rank_bm25" in columns
    assert child.manifest("candidates").metadata["channels"][1]["name"] == "two_tower"
    assert child.read_json("subrun.json")["parent"] == run_bus.root
    report = run_bus.read_json("reports/second-round.json")
    total = next(r for r in report["buckets"] if r["bucket"] == "all")
    assert total["round2"] == child.manifest("candidates").rows and total["new_by_channel"] > 0
    assert report["metrics"]["paired"]["ndcg@10"]["n"] == 3  # round 2 against round 1 on the test queries
    assert "# Second mining round" in run_bus.read_text("reports/second-round.md")
    assert run_bus.read_json("second-round.json")["status"] == "done"


def test_the_second_round_is_off_unless_enabled_and_needs_an_export(run_bus, config):
    assert run_second_round(run_bus, config)["skipped"]
    enabled = config.model_copy(update={"second_round": config.second_round.model_copy(update={"enabled": True})})
    with pytest.raises(RelforgeError, match="no exported retriever"):
        run_second_round(run_bus, enabled)
