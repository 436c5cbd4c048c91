"""Step annotate: the cascade routes pairs up only when a tier does not accept them; labels,
ledger, failed pairs retried and never labelled, the budget stop, and the calibrator versions."""

from __future__ import annotations

import json

import numpy as np
import pytest

from relforge.annotate import estimate_cost, run_annotate
from relforge.bus import DataBus
from relforge.calibrate import TierModel, read_cascade
from relforge.errors import AnnotationIncompleteError, CalibrationGateError, ModelError
from relforge.tiers import Scores


class _Recording:
    """Wraps a scorer: records every pair it is asked to score; fails the pairs ``fail(pair)`` picks."""

    def __init__(self, inner, log, fail=None):
        self.inner, self.log, self.fail = inner, log, fail
        self.name, self.scale, self.backend = inner.name, inner.scale, inner.backend

    def prepare_items(self, texts, encode=None):
        self.inner.prepare_items(texts, encode=encode)
        self.prepare_seconds = self.inner.prepare_seconds

    def score(self, pairs):
        self.log.extend((self.name, p) for p in pairs)
        scores = self.inner.score(pairs)
        if self.fail is not None:
            bad = np.array([self.fail(p) for p in pairs], dtype=bool)
            probs = scores.probs.copy()
            probs[bad] = np.nan
            scores = Scores(probs, scores.failed | bad, scores.cost,
                            [("HTTP 503: server overloaded" if b else e) for b, e in zip(bad, scores.errors)])
        return scores

    def close(self):
        self.inner.close()


class _Log(list):
    """``(tier, pair)`` per pair scored; ``fail[tier] = predicate`` makes that tier fail the pairs it picks."""

    def __init__(self):
        super().__init__()
        self.fail: dict = {}


@pytest.fixture
def recorded(monkeypatch):
    """Every pair each tier scores, as ``(tier, pair)``; ``recorded.fail[tier] = predicate`` makes it fail pairs."""
    log = _Log()
    fail = log.fail
    original = TierModel.scorer

    def scorer(self, scale, config):
        return _Recording(original(self, scale, config), log, fail.get(self.name))

    monkeypatch.setattr(TierModel, "scorer", scorer)
    return log


def _labels(bus: DataBus) -> dict:
    t = bus.read_table("labels")
    return {(q, i): row for q, i, row in zip(t.column("query_id").to_pylist(), t.column("item_id").to_pylist(),
                                             t.to_pylist())}


def test_tier_k_scores_only_the_pairs_the_tiers_below_did_not_accept(run_copy, config_for, recorded):
    bus = DataBus(run_copy / "run")
    cascade = read_cascade(bus)
    thresholds = cascade["thresholds"]
    summary = run_annotate(bus, config_for(run_copy, "annotate.shard_rows=40"))
    labels = _labels(bus)
    assert len(labels) == bus.manifest("candidates").rows == summary["labels"]
    by_tier = {}
    for tier, pair in recorded:
        by_tier.setdefault(tier, []).append(pair)
    assert len(by_tier["tier0"]) == len(labels)  # the cheapest tier sees every pair, once
    rows = list(labels.values())
    decided = np.array([r["tier"] for r in rows])
    conf = np.array([r["confidence"] for r in rows])
    # tier 1 scored exactly the pairs tier 0 did not accept, tier 2 those neither accepted
    assert len(by_tier.get("tier1", [])) == int((decided >= 1).sum())
    assert len(by_tier.get("tier2", [])) == int((decided == 2).sum())
    for t, thr in enumerate(thresholds):
        if thr is not None:
            assert (conf[decided == t] >= thr - 1e-6).all()
    # each label: calibrated probabilities of the deciding tier, its version, and the routing's bookkeeping
    tiers = {t["name"]: t for t in cascade["tiers"]}
    for r in rows:
        assert abs(sum(r["probs"]) - 1) < 1e-4 and r["grade"] == int(np.argmax(r["probs"]))
        assert r["confidence"] == pytest.approx(max(r["probs"]), abs=1e-6)
        assert r["model_fingerprint"] == tiers[r["tier_name"]]["model_fingerprint"]
        assert r["accepted"] and r["cost"] > 0
    assert {r["bucket"] for r in rows} == {"consensus", "single", "partial", "lexical_only", "random"}


def test_ledger_estimates_before_and_counts_during_the_run(run_copy, config_for):
    bus = DataBus(run_copy / "run")
    run_annotate(bus, config_for(run_copy, "annotate.shard_rows=60"))
    ledger = bus.read_json("reports/annotate-ledger.json")
    n = bus.manifest("candidates").rows
    assert ledger["estimate"]["candidates"] == n and ledger["estimate"]["cost"] > 0
    assert ledger["estimate"]["tiers"]["tier0"]["pairs"] == n
    actual = ledger["actual"]["tiers"]
    assert actual["tier0"]["pairs"] == n
    assert actual["tier0"]["pairs"] >= actual["tier1"]["pairs"] >= actual["tier2"]["pairs"]
    assert ledger["actual"]["labelled"] == n and ledger["shards"]["committed_now"] == ledger["shards"]["total"]
    assert all(a["seconds"] > 0 for a in actual.values() if a["pairs"])
    assert "| tier0 (bi-encoder) |" in bus.read_text("reports/annotate.md")


def test_freed_memory_goes_back_to_the_os_after_every_shard(run_copy, config_for, monkeypatch):
    import platform

    import relforge.annotate._step as step
    from relforge.compute import release_freed_memory

    assert release_freed_memory() == (platform.libc_ver()[0] == "glibc")  # glibc trims; elsewhere a no-op
    calls = []
    monkeypatch.setattr(step, "release_freed_memory", lambda: calls.append(1) or True)
    bus = DataBus(run_copy / "run")
    run_annotate(bus, config_for(run_copy, "annotate.shard_rows=60"))
    assert len(calls) == bus.read_json("reports/annotate-ledger.json")["shards"]["total"] > 1


def test_estimate_uses_the_calibrated_shares():
    e = estimate_cost(100, [{"name": "a", "mean_cost": 1.0}, {"name": "b", "mean_cost": 10.0}], [0.7, 0.3])
    assert e["tiers"]["b"]["pairs"] == pytest.approx(30.0) and e["cost"] == pytest.approx(100 + 300)


def _set_thresholds(bus: DataBus, thresholds: list) -> None:
    """Fix the routing (the calibrated one depends on measured costs, which vary from run to run)."""
    doc = read_cascade(bus)
    doc["thresholds"] = thresholds
    bus.write_json("calibrators/cascade.json", doc)


def test_failed_pairs_are_never_labelled_and_are_retried_on_the_next_run(run_copy, config_for, recorded):
    bus = DataBus(run_copy / "run")
    _set_thresholds(bus, [None, 0.0])  # tier 0 accepts nothing, tier 1 everything: every pair reaches tier 1
    config = config_for(run_copy, "annotate.shard_rows=50")
    # tier 1 (the "remote" one here) fails every pair of query q03
    recorded.fail["tier1"] = lambda pair: pair.query == "lamp"
    with pytest.raises(AnnotationIncompleteError, match=r"could not be scored.*tier1.*503") as err:
        run_annotate(bus, config)
    assert "rerun" in str(err.value)
    assert not bus.is_committed("labels")
    first = len(recorded)
    reached_tier1 = [p for t, p in recorded if t == "tier1" and p.query == "lamp"]
    assert reached_tier1, "the test needs some lamp pairs to reach tier1"
    ledger = bus.read_json("reports/annotate-ledger.json")
    assert ledger["actual"]["failed"] == len(reached_tier1) and ledger["stopped"]
    # the next run: the server is back; only the failed pairs are scored again
    recorded.fail.clear()
    recorded.clear()
    run_annotate(bus, config)
    labels = _labels(bus)
    assert len(labels) == bus.manifest("candidates").rows
    rescored = {(p.query, p.text) for t, p in recorded if t == "tier0"}
    assert rescored == {(p.query, p.text) for p in reached_tier1}
    assert len(recorded) < first
    assert {labels[k]["tier_name"] for k in labels} == {"tier1"}


def test_budget_stops_the_run_cleanly_and_the_next_run_resumes(run_copy, config_for):
    bus = DataBus(run_copy / "run")
    with pytest.raises(AnnotationIncompleteError, match="budget"):
        run_annotate(bus, config_for(run_copy, "annotate.shard_rows=50", "annotate.max_budget=1e-9"))
    ledger = bus.read_json("reports/annotate-ledger.json")
    assert ledger["shards"]["committed_now"] == 1 and ledger["stopped"].startswith("budget")
    assert not bus.is_committed("labels")
    summary = run_annotate(bus, config_for(run_copy, "annotate.shard_rows=50"))
    assert summary["ledger"]["shards"]["committed_before"] == 1
    assert summary["labels"] == bus.manifest("candidates").rows


def test_a_subset_of_queries(run_copy, config_for):
    bus = DataBus(run_copy / "run")
    run_annotate(bus, config_for(run_copy, "annotate.splits=[calib]", "annotate.max_queries=2"))
    queries = {q for q, _ in _labels(bus)}
    splits = dict(zip(*bus.read_table("queries", columns=["query_id", "split"]).to_pydict().values()))
    assert len(queries) == 2 and {splits[q] for q in queries} == {"calib"}


def test_a_calibrator_never_applies_to_another_model_version(run_copy, config_for, tiny_tiers):
    bus = DataBus(run_copy / "run")
    # the tier-1 model changes after calibration (fine-tuned again, say): its files change
    config = json.loads((tiny_tiers["tier1"] / "config.json").read_text())
    moved = run_copy / "tier1-v2"
    import shutil

    shutil.copytree(tiny_tiers["tier1"], moved)
    (moved / "config.json").write_text(json.dumps({**config, "note": "v2"}))
    with pytest.raises(ModelError, match="another model version"):
        run_annotate(bus, config_for(run_copy, f"tiers.specs.tier1.model={moved}"))


def test_a_cascade_that_failed_its_gate_labels_nothing(run_copy, config_for):
    bus = DataBus(run_copy / "run")
    doc = read_cascade(bus)
    doc["gate"] = {"enabled": True, "passed": False, "reasons": ["cross-fitted QWK 0.01 does not beat 0"], "checks": []}
    bus.write_json("calibrators/cascade.json", doc)
    with pytest.raises(CalibrationGateError, match="QWK"):
        run_annotate(bus, config_for(run_copy))
    assert not bus.is_committed("labels")


def test_guaranteed_mode_labels_every_pair_but_marks_the_uncertified_ones(run_copy, config_for):
    bus = DataBus(run_copy / "run")
    config = config_for(run_copy, "calibrate.guarantee=true", "calibrate.guarantee_agreement=0.9")
    from relforge.calibrate import run_calibrate

    summary = run_calibrate(bus, config)
    cascade = read_cascade(bus)
    assert cascade["mode"] == "guaranteed" and len(cascade["guaranteed_thresholds"]) == 3
    assert summary["guaranteed"]["target_agreement"] == 0.9
    # random tiny tiers certify (almost) nothing at 90% agreement: those pairs are labelled by the
    # last tier, marked not accepted, and queued for review first
    run_annotate(bus, config)
    labels = list(_labels(bus).values())
    assert len(labels) == bus.manifest("candidates").rows
    not_accepted = [r for r in labels if not r["accepted"]]
    assert not_accepted and all(r["tier_name"] == "tier2" for r in not_accepted)
    for r in labels:
        t = r["tier"]
        thr = cascade["guaranteed_thresholds"][t]
        assert r["accepted"] == (thr is not None and r["confidence"] >= thr - 1e-6)
    queue = bus.read_table("review_queue").to_pylist()
    accepted = [q["accepted"] for q in queue]
    assert not all(accepted) and accepted == sorted(accepted)  # the uncertified pairs come first
    assert all(q["priority"] >= 1 for q in queue if not q["accepted"])


def test_labels_follow_the_decision_rule_calibrate_chose(run_copy, config_for):
    from relforge.calibrate import decide, run_calibrate

    bus = DataBus(run_copy / "run")
    config = config_for(run_copy, "calibrate.decision=expected-grade")
    summary = run_calibrate(bus, config)
    assert read_cascade(bus)["decision"] == "expected-grade" == summary["estimate"]["decision"]
    run_annotate(bus, config)
    rows = list(_labels(bus).values())
    probs = np.array([r["probs"] for r in rows], dtype=np.float64)
    grade, conf = decide(probs, "expected-grade")
    assert [r["grade"] for r in rows] == grade.tolist()
    assert np.allclose([r["confidence"] for r in rows], conf, atol=1e-6)
    assert (grade != probs.argmax(axis=1)).any()  # the rule changed some labels of these random tiers
