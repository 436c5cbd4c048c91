"""The prediction-powered nDCG: exact when all is judged, and covering the truth at about the
nominal rate where the model's labels are biased (which the naive estimate does not)."""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa
import pytest

from relforge.errors import InputError
from relforge.evaluate import per_query_metrics, ppi_ndcg
from relforge.grades import ESCI

K = 10
GAINS = np.asarray(ESCI.gains)
DISCOUNT = 1 / np.log2(np.arange(2, K + 2))
# P(true grade) at each rank: Exact less likely further down (Irrelevant, Complement, Substitute, Exact)
P_TRUE = np.array([[0.15 + 0.03 * r, 0.05, 0.25, 0.55 - 0.03 * r] for r in range(K)])


def _tables(rows_run, rows_judged, rows_model):
    run = pa.table(dict(zip(("query_id", "item_id", "rank"), map(list, zip(*rows_run)))))
    judged = pa.table(dict(zip(("query_id", "item_id", "grade"), map(list, zip(*rows_judged)))))
    model = pa.table(dict(zip(("query_id", "item_id", "grade"), map(list, zip(*rows_model)))))
    return run, judged, model


def simulate(rng, n_queries=200, p_judged=0.3, optimism=0.5):
    """Queries with 10 retrieved items each; a human judges each retrieved item with
    probability ``p_judged`` (at random); the model says one grade better than the truth
    with probability ``optimism`` (biased upwards). Every query's pool also holds ten
    judged Exact items that were not retrieved, so its ideal DCG is fixed."""
    rows_run, rows_judged, rows_model = [], [], []
    for q in range(n_queries):
        qid = f"q{q}"
        for j in range(10):
            rows_judged.append((qid, f"{qid}-pool{j}", 3))
        for r in range(K):
            item = f"{qid}-r{r}"
            grade = int(rng.choice(4, p=P_TRUE[r]))
            rows_run.append((qid, item, r + 1))
            if rng.random() < p_judged:
                rows_judged.append((qid, item, grade))
            rows_model.append((qid, item, min(3, grade + int(rng.random() < optimism))))
    return _tables(rows_run, rows_judged, rows_model)


def true_ndcg():
    return float((P_TRUE @ GAINS) @ DISCOUNT / DISCOUNT.sum())


def test_everything_judged_gives_the_libraries_ndcg():
    rng = np.random.default_rng(3)
    run, judged, model = simulate(rng, n_queries=30, p_judged=1.0)
    est = ppi_ndcg(run, judged, model, ESCI, n_resamples=200)
    library = float(np.nanmean(per_query_metrics(run, judged, ESCI).column("ndcg@10").to_numpy()))
    assert est.estimate == pytest.approx(library, abs=1e-9) and est.human_only == pytest.approx(library, abs=1e-9)
    assert est.n_judged_slots == est.n_slots == est.n_rectifier_slots == 300
    assert est.rectifier < 0  # the model is optimistic: human gain - model gain < 0


def test_human_only_equals_the_library_with_unjudged_as_irrelevant():
    run, judged, model = simulate(np.random.default_rng(4), n_queries=40)
    est = ppi_ndcg(run, judged, model, ESCI, n_resamples=200)
    library = float(np.nanmean(per_query_metrics(run, judged, ESCI).column("ndcg@10").to_numpy()))
    assert est.human_only == pytest.approx(library, abs=1e-9)
    assert est.human_only < est.estimate < est.naive  # unjudged as 0 too low, model labels too high


def test_interval_covers_the_truth_at_about_the_nominal_rate_with_a_biased_model():
    rng = np.random.default_rng(2024)
    truth, reps = true_ndcg(), 120
    ppi_hits = naive_hits = 0
    widths = []
    for rep in range(reps):
        run, judged, model = simulate(rng)
        est = ppi_ndcg(run, judged, model, ESCI, confidence=0.9, n_resamples=400, seed=rep)
        ppi_hits += est.low <= truth <= est.high
        naive_hits += est.naive_low <= truth <= est.naive_high
        widths.append(est.high - est.low)
    assert 0.80 <= ppi_hits / reps <= 0.97, ppi_hits / reps
    assert naive_hits / reps <= 0.05, naive_hits / reps
    assert 0 < np.mean(widths) < 0.1


def test_unjudged_items_need_model_labels_and_some_items_need_both():
    run, judged, model = simulate(np.random.default_rng(5), n_queries=5)
    unlabeled = model.filter(pa.compute.not_equal(model.column("item_id"), "q0-r1"))
    judged_items = set(judged.column("item_id").to_pylist())
    if "q0-r1" not in judged_items:
        with pytest.raises(InputError, match="have no model label, e.g. 'q0-r1'"):
            ppi_ndcg(run, judged, unlabeled, ESCI)
    only_unjudged = model.filter(pa.compute.invert(pa.compute.is_in(model.column("item_id"), pa.array(list(judged_items)))))
    with pytest.raises(InputError, match="both a human and a model label"):
        ppi_ndcg(run, judged, only_unjudged, ESCI)


def test_expected_gain_from_probabilities():
    run = pa.table({"query_id": ["q", "q"], "item_id": ["a", "b"], "rank": [1, 2]})
    judged = pa.table({"query_id": ["q", "q"], "item_id": ["a", "p"], "grade": [3, 3]})
    model = pa.table({"query_id": ["q", "q"], "item_id": ["a", "b"], "grade": [3, 3],
                      "probs": [[0, 0, 0, 1.0], [0.5, 0, 0, 0.5]]})
    est = ppi_ndcg(run, judged, model, ESCI, n_resamples=50)
    z = 1 + 1 / math.log2(3)
    assert est.naive == pytest.approx((1 + 0.5 / math.log2(3)) / z)  # b's expected gain is 0.5, not 1.0
    assert est.rectifier == 0.0 and math.isnan(est.low)  # one query: no interval
