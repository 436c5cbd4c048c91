"""Step ``evaluate``: systems scored on the test split's human judgments with CIs and paired
tests, both unjudged conventions, the prediction-powered estimate (circular where it is), the
report, its plots and the ablation table."""

import pyarrow as pa
import pytest

from relforge.bus import DataBus
from relforge.evaluate._step import run_evaluate
from tests.twotower.synthetic import QUERIES, tables, test_query_ids


def _retrieval(bus: DataBus, good: bool) -> None:
    """A run of the test queries: their judged items by grade (``good``) or in reverse, then the rest."""
    t = tables()
    judged = t["judgments"].to_pylist()
    items = t["catalog"].column("item_id").to_pylist()
    q_col, i_col, r_col = [], [], []
    for q in sorted(test_query_ids()):
        mine = sorted((r for r in judged if r["query_id"] == q), key=lambda r: -r["grade"] if good else r["grade"])
        labelled = [r["item_id"] for r in t["labels"].to_pylist() if r["query_id"] == q]
        first = [r["item_id"] for r in mine] + [i for i in labelled if i not in {r["item_id"] for r in mine}]
        ranked = first + [i for i in items if i not in first]  # the top 10 all have a cascade label
        q_col += [q] * len(ranked)
        i_col += ranked
        r_col += list(range(1, len(ranked) + 1))
    bus.write_table("retrieval", pa.table({"query_id": q_col, "item_id": i_col,
                                           "rank": pa.array(r_col, pa.int32()),
                                           "score": pa.array([1.0 / r for r in r_col], pa.float32())}))


def test_systems_are_scored_on_human_judgments_with_intervals_and_paired_tests(run_bus, config):
    _retrieval(run_bus, good=True)
    result = run_evaluate(run_bus, config)
    report = run_bus.read_json("reports/evaluate.json")
    names = [s["name"] for s in report["systems"]]
    assert names == ["two-tower", "bm25"] and report["queries"] == len(test_query_ids())
    ref, bm25 = report["systems"]
    assert ref["summary"]["ndcg@10"]["mean"] == pytest.approx(1.0)  # judged items in grade order
    assert bm25["summary"]["ndcg@10"]["mean"] < 1.0
    assert bm25["paired"]["ndcg@10"]["diff"] < 0 and "p_value" in bm25["paired"]["ndcg@10"]
    for metric in ("ndcg@10", "rating0@10", "recall@100", "ndcg@10_judged", "rating0@10_judged"):
        s = ref["summary"][metric]
        assert s["low"] <= s["mean"] <= s["high"]
    assert result["reference"]["ndcg@10"] == pytest.approx(1.0)
    per_query = run_bus.read_table("evaluation")
    assert set(per_query.column("system").to_pylist()) == {"two-tower", "bm25"}


def test_a_bad_ranking_scores_lower_and_the_paired_test_says_so(run_bus, config):
    _retrieval(run_bus, good=False)
    report = run_evaluate(run_bus, config) and run_bus.read_json("reports/evaluate.json")
    assert report["systems"][0]["summary"]["ndcg@10"]["mean"] < 0.9


def test_headline_numbers_use_human_labels_only_the_estimate_uses_the_cascades(run_bus, config, tmp_path):
    _retrieval(run_bus, good=True)
    run_evaluate(run_bus, config)
    before = run_bus.read_json("reports/evaluate.json")["systems"][0]
    labels = run_bus.read_table("labels")
    flipped = labels.set_column(2, "grade", pa.array([0] * labels.num_rows, pa.int8())).set_column(
        3, "probs", pa.array([[1.0, 0.0, 0.0, 0.0]] * labels.num_rows, pa.list_(pa.float32())))
    run_bus.write_table("labels", flipped, metadata=run_bus.manifest("labels").metadata)
    run_evaluate(run_bus, config)
    after = run_bus.read_json("reports/evaluate.json")["systems"][0]
    assert after["summary"]["ndcg@10"] == before["summary"]["ndcg@10"]  # human labels only
    assert after["ppi"]["naive"] != pytest.approx(before["ppi"]["naive"])  # the cascade's labels moved it


def test_a_system_trained_on_cascade_labels_is_marked_circular(run_bus, config):
    from relforge.curriculum import run_curriculum

    _retrieval(run_bus, good=True)
    run_curriculum(run_bus, config)
    run_bus.write_json("models/two-tower/relforge_two_tower.json", {"stages": [{"stage": 1}]})
    run_evaluate(run_bus, config)
    systems = {s["name"]: s for s in run_bus.read_json("reports/evaluate.json")["systems"]}
    assert systems["two-tower"]["circular"] and not systems["bm25"]["circular"]
    md = run_bus.read_text("reports/evaluate.md")
    assert "**yes**" in md and "Headline (human labels" in md


def test_the_report_has_its_plot_html_metrics_and_the_ablation_table(run_bus, config):
    _retrieval(run_bus, good=True)
    run_evaluate(run_bus, config)
    assert run_bus.exists("reports/evaluate-figures/systems.png")
    html = run_bus.read_text("reports/evaluate.html")
    assert "data:image/png;base64," in html
    metrics = run_bus.read_json("reports/evaluate-metrics.json")
    assert metrics["two-tower.ndcg_at_10"] == pytest.approx(1.0)
    table = run_bus.read_text("reports/ablation.md")
    assert "| BM25 | - |" in table and "NDCG@10 [95% CI]" in table


def test_only_test_split_queries_are_evaluated(run_bus, config):
    _retrieval(run_bus, good=True)
    report = run_evaluate(run_bus, config) and run_bus.read_json("reports/evaluate.json")
    per_query = run_bus.read_table("evaluation")
    assert set(per_query.column("query_id").to_pylist()) == test_query_ids()
    assert report["queries"] == len([q for q in QUERIES if q[3] == "test"])
