"""The ordinal (CORAL) loss and the grade-token loss."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from relforge.finetune.losses import CoralLoss, GradeTokenLoss, coral_pair_loss
from relforge.tiers import ordinal_to_probs


def test_coral_pair_loss_matches_coral_pytorch_reference():
    # coral_pytorch's own doctest: these logits and levels give 0.6920
    logits = torch.tensor([[2.1, 1.8, -2.1, -1.8], [1.9, -1.0, -1.5, -1.3], [1.9, 1.8, 1.7, 1.6]])
    labels = torch.tensor([2, 1, 4])
    assert coral_pair_loss(logits, labels).item() == pytest.approx(0.6920, abs=1e-4)


def test_coral_loss_orders_errors_by_distance():
    # a head that says "grade 3" costs more for a grade-0 pair than for a grade-2 pair
    logits = torch.tensor([[6.0, 6.0, 6.0]])
    far = coral_pair_loss(logits, torch.tensor([0])).item()
    near = coral_pair_loss(logits, torch.tensor([2])).item()
    assert far > 2 * near > 0


def test_coral_class_weights_reweight_pairs():
    logits = torch.tensor([[3.0, -3.0, -3.0], [3.0, -3.0, -3.0]])
    labels = torch.tensor([1, 3])
    plain = coral_pair_loss(logits, labels).item()
    heavy_3 = coral_pair_loss(logits, labels, torch.tensor([1.0, 1.0, 1.0, 9.0])).item()
    assert heavy_3 > plain  # the badly predicted grade-3 pair counts more


def test_coral_training_gives_order_consistent_probs():
    """A small ordinal head trained with the loss on a 1-d ordered signal."""
    torch.manual_seed(0)
    x = torch.linspace(-2, 2, 400).unsqueeze(1)
    y = torch.bucketize(x.squeeze(1), torch.tensor([-1.0, 0.0, 1.0]))
    head = torch.nn.Linear(1, 3)
    opt = torch.optim.Adam(head.parameters(), lr=0.2)
    for _ in range(120):
        opt.zero_grad()
        coral_pair_loss(head(x), y).backward()
        opt.step()
    logits = head(x).detach().numpy()
    probs = ordinal_to_probs(logits)
    assert np.allclose(probs.sum(1), 1, atol=1e-5) and (probs >= 0).all()
    exceed = 1 / (1 + np.exp(-logits))
    assert (np.diff(exceed, axis=1) <= 1e-6).mean() > 0.95  # thresholds learned in order
    assert (probs.argmax(1) == y.numpy()).mean() > 0.9


def test_coral_loss_on_a_cross_encoder(bert_base):
    from sentence_transformers.cross_encoder import CrossEncoder

    model = CrossEncoder(str(bert_base), num_labels=3, model_kwargs={"ignore_mismatched_sizes": True})
    loss = CoralLoss(model, class_weights=[1.0, 2.0, 1.0, 1.0])
    value = loss([["red shoes", "blue mug"], ["red shoes for men", "a blue mug"]], torch.tensor([3, 0]))
    assert value.ndim == 0 and value.item() > 0 and value.requires_grad
    with pytest.raises(ValueError, match="4 values"):
        CoralLoss(model, class_weights=[1.0, 2.0])
    with pytest.raises(TypeError):
        CoralLoss(torch.nn.Linear(2, 2))


class _Out:
    def __init__(self, logits):
        self.logits = logits


def test_grade_token_loss_is_cross_entropy_among_grade_tokens():
    grade_ids = [5, 6, 7, 8]
    logits = torch.randn(2, 4, 12)
    labels = torch.full((2, 4), -100)
    labels[0, 3] = 7  # grade 2, predicted at position 2
    labels[1, 2] = 5  # grade 0, predicted at position 1
    loss = GradeTokenLoss(grade_ids)(_Out(logits), labels)
    ref = F.cross_entropy(torch.stack([logits[0, 2, grade_ids], logits[1, 1, grade_ids]]), torch.tensor([2, 0]))
    assert loss.item() == pytest.approx(ref.item(), rel=1e-5)
    # other tokens' logits do not matter
    logits2 = logits.clone()
    logits2[:, :, 0] += 50
    assert GradeTokenLoss(grade_ids)(_Out(logits2), labels).item() == pytest.approx(loss.item(), rel=1e-5)
    # gradient accumulation: the sum over the accumulated batch's items
    summed = GradeTokenLoss(grade_ids)(_Out(logits), labels, num_items_in_batch=4)
    assert summed.item() == pytest.approx(ref.item() * 2 / 4, rel=1e-5)


def test_grade_token_loss_rejects_bad_labels():
    loss = GradeTokenLoss([5, 6])
    logits = torch.randn(1, 3, 10)
    with pytest.raises(ValueError, match="one labelled"):
        loss(_Out(logits), torch.full((1, 3), -100))
    with pytest.raises(ValueError, match="not a grade token"):
        loss(_Out(logits), torch.tensor([[-100, -100, 9]]))
