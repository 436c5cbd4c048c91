"""Step teacher-label: the teacher grades every synthetic pair on the run's scale; a pair it failed is
never labelled, its shard stays open and a rerun scores only what is missing; the teacher's
calibrator is used where ``calibrate`` fitted one; a cascade that failed its gate teaches nothing."""

from __future__ import annotations

import numpy as np
import pytest

from relforge.calibrate import TierModel, calibrator_factory, resolve_tier, save_tier_calibrator
from relforge.coldstart import coldstart_bus, run_coldstart_candidates, run_teacher_label
from relforge.errors import AnnotationIncompleteError, CalibrationGateError, ConfigError
from relforge.grades import ESCI
from relforge.tiers import Scores


@pytest.fixture
def with_candidates(synthesized):
    bus, config = synthesized
    run_coldstart_candidates(bus, config)
    return bus, config


def test_the_top_tier_labels_every_pair_and_its_grades_become_the_subrun_judgments(with_candidates):
    bus, config = with_candidates
    summary = run_teacher_label(bus, config)
    sub = coldstart_bus(bus)
    candidates = sub.read_table("candidates")
    labels = sub.read_table("labels")
    assert labels.num_rows == candidates.num_rows == summary["labels"]
    assert set(zip(labels.column("query_id").to_pylist(), labels.column("item_id").to_pylist())) == set(
        zip(candidates.column("query_id").to_pylist(), candidates.column("item_id").to_pylist()))
    probs = np.array(labels.column("probs").to_pylist())
    assert probs.shape[1] == ESCI.n and np.allclose(probs.sum(axis=1), 1, atol=1e-5)
    assert (labels.column("grade").to_numpy() == probs.argmax(axis=1)).all()
    assert set(labels.column("tier_name").to_pylist()) == {"tier3"}  # `top`: the last of tiers.names
    meta = sub.manifest("labels").metadata["teacher"]
    assert meta["tier"] == "tier3" and meta["calibration"].startswith("none")
    judgments = sub.read_table("judgments")
    assert judgments.column("grade").to_pylist() == labels.column("grade").to_pylist()
    assert set(judgments.column("source").to_pylist()) == {"teacher:tier3"}


class _Flaky:
    """Wraps a scorer; fails the pairs whose query matches, and counts what it was asked to score."""

    def __init__(self, inner, fails):
        self.inner, self.fails, self.scored = inner, fails, []

    def score(self, pairs):
        self.scored += list(pairs)
        out = self.inner.score(pairs)
        bad = np.array([self.fails(p.query) for p in pairs])
        out.probs[bad] = np.nan
        return Scores(out.probs, out.failed | bad, out.cost,
                      [("HTTP 503: down" if b else e) for b, e in zip(bad, out.errors)], out.tokens)

    prepare_seconds = 0.0

    def prepare_items(self, texts, encode=None):
        pass

    def close(self):
        self.inner.close()


def test_failed_pairs_are_never_labelled_and_a_rerun_scores_only_them(with_candidates, monkeypatch):
    bus, config = with_candidates
    original = TierModel.scorer
    made: list[_Flaky] = []

    def flaky(fails):
        def scorer(self, scale, cfg):
            made.append(_Flaky(original(self, scale, cfg), fails))
            return made[-1]
        return scorer

    sub = coldstart_bus(bus)
    candidates = sub.read_table("candidates")
    first_query = sub.read_table("queries").column("query").to_pylist()[0]
    monkeypatch.setattr(TierModel, "scorer", flaky(lambda q: q == first_query))
    with pytest.raises(AnnotationIncompleteError, match=r"pair\(s\) the teacher could not score .*HTTP 503"):
        run_teacher_label(bus, config)
    assert not sub.is_committed("labels")
    failed_pairs = sum(1 for p in made[0].scored if p.query == first_query)
    assert failed_pairs == 6  # the query's source, 3 hard negatives and 2 random items
    monkeypatch.setattr(TierModel, "scorer", flaky(lambda q: False))
    run_teacher_label(bus, config)
    assert len(made[1].scored) == failed_pairs  # only the failed pairs were scored again
    labels = sub.read_table("labels")
    assert labels.num_rows == candidates.num_rows
    keys = list(zip(labels.column("query_id").to_pylist(), labels.column("item_id").to_pylist()))
    assert len(set(keys)) == len(keys)


def test_the_teachers_calibrator_is_used_where_calibrate_fitted_one(with_candidates):
    bus, config = with_candidates
    tier = resolve_tier(bus, config, "tier3")
    rng = np.random.default_rng(0)
    raw = rng.dirichlet(np.ones(4), size=200)
    grades = rng.integers(0, 4, 200)
    calibrator = calibrator_factory("temperature")().fit(raw, grades)
    save_tier_calibrator(bus, tier, calibrator, {"split": "calib"})
    run_teacher_label(bus, config)
    sub = coldstart_bus(bus)
    assert sub.manifest("labels").metadata["teacher"]["calibration"].startswith("temperature")
    labels = sub.read_table("labels").slice(0, 5)
    queries = {r["query_id"]: r["query"] for r in sub.read_table("queries").to_pylist()}
    texts = dict(zip(sub.read_table("catalog").column("item_id").to_pylist(),
                     sub.read_table("catalog").column("text").to_pylist()))
    from relforge.tiers import Pair

    with tier.scorer(ESCI, config) as scorer:
        scores = scorer.score([Pair(queries[q], texts[i]) for q, i in zip(labels.column("query_id").to_pylist(),
                                                                          labels.column("item_id").to_pylist())])
    expected = calibrator.transform(scores.probs.astype(np.float64))
    assert np.allclose(np.array(labels.column("probs").to_pylist()), expected, atol=1e-5)


def test_a_cascade_that_failed_its_gate_teaches_nothing_and_an_unknown_tier_is_an_error(with_candidates):
    bus, config = with_candidates
    bus.write_json("calibrators/cascade.json", {"version": 1, "gate": {"enabled": True, "passed": False,
                                                                       "reasons": ["QWK's CI includes 0"]}})
    cascade = config.model_copy(update={"coldstart": config.coldstart.model_copy(update={"teacher": "cascade"})})
    with pytest.raises(CalibrationGateError, match="QWK's CI includes 0"):
        run_teacher_label(bus, cascade)
    unknown = config.model_copy(update={"coldstart": config.coldstart.model_copy(update={"teacher": "tier9"})})
    with pytest.raises(ConfigError, match="tier9"):
        run_teacher_label(bus, unknown)
    assert not coldstart_bus(bus).is_committed("labels")
