"""Fine-tuning the cross-encoder tier with CrossEncoderTrainer (tiny BERT, synthetic task)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from relforge.config import FinetuneConfig
from relforge.finetune import BalancedBatchSampler, finetune_cross_encoder
from relforge.grades import ESCI
from relforge.tiers import CrossEncoderScorer, TierDescriptor
from tests.finetune.conftest import synthetic_pairs

FAST = {"ce_epochs": 4, "ce_learning_rate": 2e-3, "ce_eval_steps": 8, "ce_batch_size": 16, "ce_max_length": 24, "ce_patience": 3}


@pytest.mark.parametrize("head", ["softmax", "ordinal"])
def test_cross_encoder_learns_the_synthetic_task(bert_base, tmp_path, head):
    train, calib = synthetic_pairs(160, seed=1), synthetic_pairs(48, seed=2)
    out = tmp_path / head
    report = finetune_cross_encoder(bert_base, train, calib, out, ESCI, FinetuneConfig(**FAST), head=head, base_ref="tiny")
    assert report["calib_best"]["accuracy"] >= 0.6 > report["calib_before"]["accuracy"]
    assert report["calib_best"]["qwk"] > report["calib_before"]["qwk"] + 0.3
    assert report["best_step"] is not None and report["best_step"] <= report["steps"]
    descriptor = TierDescriptor.load(out)
    assert descriptor.backend == "cross-encoder" and descriptor.head == head and descriptor.base_model == "tiny"
    # the saved folder is a tier the cross-encoder backend reads, with the same predictions
    test = synthetic_pairs(40, seed=3)
    scores = CrossEncoderScorer(out, ESCI, max_length=24).score(test.pairs())
    assert np.allclose(scores.probs.sum(1), 1, atol=1e-5)
    assert (scores.grades == test.grade).mean() >= 0.6


def test_balanced_sampler_draws_grades_evenly():
    from datasets import Dataset

    labels = [0] * 90 + [1] * 6 + [2] * 4
    ds = Dataset.from_dict({"query": ["q"] * 100, "text": ["t"] * 100, "label": labels})
    sampler = BalancedBatchSampler(ds, batch_size=10, drop_last=False, valid_label_columns=["label"], seed=1)
    drawn = np.concatenate([[labels[i] for i in batch] for _ in range(20) for batch in sampler])
    share = np.bincount(drawn, minlength=3) / len(drawn)
    assert np.all(np.abs(share - 1 / 3) < 0.06)
    assert len(sampler) == 10


def test_sampler_balance_without_early_stopping_trains_to_the_end(bert_base, tmp_path):
    train, calib = synthetic_pairs(96, seed=4), synthetic_pairs(32, seed=5)
    cfg = FinetuneConfig(**{**FAST, "ce_epochs": 1}, balance="sampler", early_stopping=False)
    report = finetune_cross_encoder(bert_base, train, calib, tmp_path / "s", ESCI, cfg)
    assert report["balance"] == "sampler" and report["steps"] == 6 and report["best_step"] is None
    assert json.loads((tmp_path / "s" / "relforge_tier.json").read_text())["head"] == "softmax"
