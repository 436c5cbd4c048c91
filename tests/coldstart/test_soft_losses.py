"""The distillation losses (relforge.finetune.losses.SoftTargetLoss, SoftCoralLoss): hard labels are a
special case of them, they pull a head towards the teacher's distribution, and through
CrossEncoderTrainer (finetune_cross_encoder with targets) a student learns a teacher's probabilities."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from relforge.finetune.losses import (
    SoftCoralLoss,
    SoftTargetLoss,
    coral_pair_loss,
    exceedance,
    soft_coral_loss,
    soft_cross_entropy,
)
from relforge.tiers import ordinal_to_probs


def test_one_hot_targets_give_the_hard_label_losses():
    logits = torch.tensor([[2.0, -1.0, 0.5, 0.1], [0.0, 0.3, -0.2, 1.5]])
    labels = torch.tensor([2, 3])
    one_hot = F.one_hot(labels, 4).float()
    assert soft_cross_entropy(logits, one_hot).item() == pytest.approx(F.cross_entropy(logits, labels).item(), abs=1e-6)
    cum = torch.tensor([[1.0, -0.5, -2.0], [2.0, 1.0, 0.5]])
    assert soft_coral_loss(cum, one_hot).item() == pytest.approx(coral_pair_loss(cum, labels).item(), abs=1e-6)
    weights = torch.tensor([1.0, 1.0, 3.0, 1.0])
    assert soft_cross_entropy(logits, one_hot, weights).item() == pytest.approx(
        F.cross_entropy(logits, labels, weight=weights).item(), abs=1e-6)


def test_minimising_the_soft_losses_recovers_the_teachers_distribution():
    teacher = torch.tensor([[0.1, 0.2, 0.3, 0.4], [0.7, 0.2, 0.05, 0.05]])
    logits = torch.zeros(2, 4, requires_grad=True)
    cum = torch.zeros(2, 3, requires_grad=True)
    opt = torch.optim.Adam([logits, cum], lr=0.1)
    for _ in range(500):
        opt.zero_grad()
        (soft_cross_entropy(logits, teacher) + soft_coral_loss(cum, teacher)).backward()
        opt.step()
    assert torch.allclose(torch.softmax(logits, 1), teacher, atol=1e-3)
    assert np.allclose(ordinal_to_probs(cum.detach().numpy()), teacher.numpy(), atol=1e-3)
    assert torch.allclose(exceedance(teacher[:1]), torch.tensor([[0.9, 0.7, 0.4]]))


def test_soft_losses_check_the_targets(bert_ce):
    from sentence_transformers.cross_encoder import CrossEncoder

    model = CrossEncoder(str(bert_ce), num_labels=4, model_kwargs={"ignore_mismatched_sizes": True})
    loss = SoftTargetLoss(model)
    inputs = [["red shoes", "mug"], ["red shoes cotton", "blue mug"]]
    value = loss(inputs, [torch.tensor([0.1, 0.2, 0.3, 0.4]), torch.tensor([1.0, 0.0, 0.0, 0.0])])
    assert value.item() > 0 and value.requires_grad
    with pytest.raises(ValueError, match="sum to 1"):
        loss(inputs, torch.tensor([[0.5, 0.5, 0.5, 0.5], [1.0, 0.0, 0.0, 0.0]]))
    with pytest.raises(ValueError, match="4 probabilities"):
        loss(inputs, torch.tensor([[0.5, 0.5], [1.0, 0.0]]))
    ordinal = CrossEncoder(str(bert_ce), num_labels=3, model_kwargs={"ignore_mismatched_sizes": True})
    assert SoftCoralLoss(ordinal, class_weights=[1, 2, 1, 1])(inputs, torch.eye(4)[[1, 3]]).item() > 0


@pytest.fixture(scope="module")
def bert_ce(tmp_path_factory):
    from tests.tiny_models import tiny_bert_cross_encoder

    return tiny_bert_cross_encoder(tmp_path_factory.mktemp("soft") / "bert", head=None)


def test_a_student_trained_on_soft_targets_moves_towards_the_teachers_probabilities(bert_ce, tmp_path):
    from relforge.config import FinetuneConfig
    from relforge.finetune import finetune_cross_encoder
    from relforge.grades import ESCI
    from relforge.tiers import CrossEncoderScorer, Pair
    from tests.finetune.conftest import synthetic_pairs

    torch.set_num_threads(1)
    train, calib = synthetic_pairs(96, seed=1), synthetic_pairs(24, seed=2)
    teacher = np.tile([0.05, 0.15, 0.3, 0.5], (len(train), 1))  # a teacher leaning to the top grade
    cfg = FinetuneConfig(ce_epochs=3, ce_max_length=32, ce_batch_size=16, ce_learning_rate=5e-4, early_stopping=False,
                         balance="none")
    report = finetune_cross_encoder(bert_ce, train, calib, tmp_path / "student", ESCI, cfg, targets=teacher)
    assert report["targets"] == "soft"
    with CrossEncoderScorer(tmp_path / "student", ESCI) as scorer:
        probs = scorer.score([Pair(str(q), str(t)) for q, t in zip(calib.query, calib.text)]).probs.mean(axis=0)
    assert np.abs(probs - teacher[0]).sum() < 0.25  # near the teacher's distribution, not one-hot
    with pytest.raises(ValueError, match="targets must be"):
        finetune_cross_encoder(bert_ce, train, calib, tmp_path / "bad", ESCI, cfg, targets=teacher[:3])
