"""The `cross-encoder` backend on tiny BERT cross-encoders (softmax, ordinal and plain heads)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from relforge.errors import ModelError
from relforge.grades import ESCI, GradeScale
from relforge.tiers import CrossEncoderScorer, Pair, TierDescriptor, ordinal_to_probs, softmax


def _raw_logits(folder, pairs) -> np.ndarray:
    """The classifier's outputs computed directly with transformers, one pair at a time."""
    tok = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
    rows = []
    with torch.no_grad():
        for p in pairs:
            enc = tok(p.query, p.text, return_tensors="pt", truncation=True, max_length=512)
            rows.append(model(**enc).logits[0].numpy())
    return np.stack(rows).astype(np.float64)


def test_softmax_head_gives_the_softmax_of_the_model_logits(ce_softmax_dir, pairs):
    scores = CrossEncoderScorer(ce_softmax_dir, ESCI, batch_size=3).score(pairs)
    assert scores.probs.shape == (len(pairs), ESCI.n)
    np.testing.assert_allclose(scores.probs.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(scores.probs, softmax(_raw_logits(ce_softmax_dir, pairs)), atol=1e-4)
    assert not scores.failed.any() and scores.errors == [None] * len(pairs)
    # the tiny model is not constant: different pairs get different distributions
    assert np.ptp(scores.probs, axis=0).max() > 0.05


def test_ordinal_head_reads_cumulative_logits(ce_ordinal_dir, pairs):
    scorer = CrossEncoderScorer(ce_ordinal_dir, ESCI, batch_size=4)
    assert scorer.head == "ordinal"
    scores = scorer.score(pairs)
    raw = _raw_logits(ce_ordinal_dir, pairs)
    assert raw.shape[1] == ESCI.n - 1
    np.testing.assert_allclose(scores.probs, ordinal_to_probs(raw), atol=1e-4)
    np.testing.assert_allclose(scores.probs.sum(axis=1), 1.0, atol=1e-5)
    assert (scores.probs >= 0).all()


def test_length_bucketing_keeps_each_pair_in_its_row(ce_softmax_dir, pairs):
    """Batches are sorted by length inside the scorer; the rows must come back in input order."""
    whole = CrossEncoderScorer(ce_softmax_dir, ESCI, batch_size=3).score(pairs)
    one_by_one = CrossEncoderScorer(ce_softmax_dir, ESCI, batch_size=1).score(pairs)
    np.testing.assert_allclose(whole.probs, one_by_one.probs, atol=1e-5)
    reversed_scores = CrossEncoderScorer(ce_softmax_dir, ESCI, batch_size=3).score(pairs[::-1])
    np.testing.assert_allclose(reversed_scores.probs[::-1], whole.probs, atol=1e-5)


def test_cost_is_measured_wall_time_times_price(ce_softmax_dir, pairs):
    import time

    scorer = CrossEncoderScorer(ce_softmax_dir, ESCI, batch_size=2, cost_per_second=10.0)
    start = time.perf_counter()
    scores = scorer.score(pairs)
    elapsed = time.perf_counter() - start
    assert (scores.cost > 0).all()
    # the forward passes are part of the call: their cost is at most 10 x the call's wall time
    assert scores.cost.sum() <= 10.0 * elapsed + 1e-6
    long_pair = [Pair("red running shoes", "trail running shoes for men " * 20), Pair("usb", "cable")]
    cost = CrossEncoderScorer(ce_softmax_dir, ESCI, batch_size=2).score(long_pair).cost
    assert cost[0] > cost[1]  # a batch's time is shared by tokens


def test_a_plain_one_output_cross_encoder_is_refused(ce_plain_dir):
    with pytest.raises(ModelError, match="one output gives a relevance score"):
        CrossEncoderScorer(ce_plain_dir, ESCI)


def test_a_descriptor_for_another_scale_is_refused(tmp_path, ce_softmax_dir):
    import shutil

    folder = tmp_path / "ce"
    shutil.copytree(ce_softmax_dir, folder)
    other = GradeScale(name="other", names=["bad", "meh", "ok", "great"], gains=[0, 1, 2, 3])
    TierDescriptor(backend="cross-encoder", head="softmax", grade_scale=other).save(folder)
    with pytest.raises(ModelError, match="trained on grades"):
        CrossEncoderScorer(folder, ESCI)


def test_a_missing_folder_is_a_model_error(tmp_path):
    with pytest.raises(ModelError, match="no such model folder"):
        CrossEncoderScorer(tmp_path / "nope", ESCI)


def test_no_pairs_gives_empty_scores(ce_softmax_dir):
    scores = CrossEncoderScorer(ce_softmax_dir, ESCI).score([])
    assert scores.probs.shape == (0, ESCI.n) and len(scores.failed) == 0
