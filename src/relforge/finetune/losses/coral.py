"""CORAL loss (Cao, Mirjalili & Raschka 2020) for an ordinal head, as a sentence-transformers loss.

An ordinal head has ``K - 1`` outputs for ``K`` grades: output ``k`` is the logit of
P(grade > k). Each output is trained as a binary task ("is the grade above threshold k?")
with ``coral_pytorch.losses.coral_loss``; the class probabilities are read back with
:func:`relforge.tiers.ordinal_to_probs`. Unlike a softmax over grades, the loss knows the
grades' order: predicting Exact for an Irrelevant pair costs three thresholds, predicting
Complement costs one.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from coral_pytorch.dataset import levels_from_labelbatch
from coral_pytorch.losses import coral_loss
from torch import Tensor, nn


def coral_pair_loss(logits: Tensor, labels: Tensor, class_weights: Tensor | None = None) -> Tensor:
    """The mean CORAL loss of a batch, each pair weighted by its grade's weight.

    Args:
        logits: ``(n, K - 1)`` cumulative logits.
        labels: ``(n,)`` integer grades in ``0..K-1``.
        class_weights: ``(K,)`` weight per grade, or ``None`` for equal weights.

    Returns:
        A scalar: ``sum_i w_i * loss_i / sum_i w_i``.

    Example:
        >>> coral_pair_loss(torch.tensor([[9.0, -9.0]]), torch.tensor([1])).item() < 1e-3
        True
    """
    n_grades = logits.shape[1] + 1
    labels = labels.view(-1).long()
    levels = levels_from_labelbatch(labels.cpu(), num_classes=n_grades).to(logits.device, logits.dtype)
    per_pair = coral_loss(logits, levels, reduction=None)
    if class_weights is None:
        return per_pair.mean()
    w = class_weights.to(logits.device, logits.dtype)[labels]
    return (per_pair * w).sum() / w.sum().clamp_min(1e-12)


class CoralLoss(nn.Module):
    """CORAL loss for a ``CrossEncoder`` with ``K - 1`` outputs (an ordinal grade head).

    The cross-encoder's classifier gives each threshold its own weights (a cumulative-logit
    head in the style of Niu et al. 2016); CORAL's shared-weight layer is what the probe uses.
    Either way the class probabilities are read with :func:`~relforge.tiers.ordinal_to_probs`,
    which keeps them ordered even if two thresholds cross.

    Args:
        model: a ``CrossEncoder`` with ``num_labels = K - 1``.
        class_weights: optional weight per grade (``K`` values), e.g. balanced weights.

    Inputs:
        (query, item text) pairs with an integer grade label.

    Example:
        ::

            from sentence_transformers.cross_encoder import CrossEncoder, CrossEncoderTrainer
            model = CrossEncoder("minilm-folder", num_labels=3)       # 4 grades
            trainer = CrossEncoderTrainer(model=model, train_dataset=ds, loss=CoralLoss(model))
            trainer.train()
    """

    def __init__(self, model, class_weights: Sequence[float] | Tensor | None = None) -> None:
        super().__init__()
        from sentence_transformers.cross_encoder import CrossEncoder

        if not isinstance(model, CrossEncoder):
            raise TypeError(f"CoralLoss expects a CrossEncoder, got {type(model).__name__}")
        if model.num_labels < 1:
            raise ValueError("CoralLoss needs a cross-encoder with K - 1 >= 1 outputs")
        self.model = model
        self.n_grades = model.num_labels + 1
        if class_weights is not None:
            class_weights = torch.as_tensor(class_weights, dtype=torch.float32)
            if class_weights.shape != (self.n_grades,):
                raise ValueError(f"class_weights needs {self.n_grades} values, got {tuple(class_weights.shape)}")
        self.class_weights = class_weights

    def forward(
        self, inputs: list[list[str]], labels: Tensor, prompt: str | None = None, task: str | None = None
    ) -> Tensor:
        from sentence_transformers.util import batch_to_device

        if len(inputs) != 2:
            raise ValueError(f"CoralLoss expects two text columns (query, item), got {len(inputs)}")
        tokens = self.model.preprocess(list(zip(inputs[0], inputs[1])), prompt=prompt, task=task)
        tokens = batch_to_device(tokens, self.model.device)
        logits = self.model(tokens)["scores"]
        return coral_pair_loss(logits, labels, self.class_weights)

    @property
    def citation(self) -> str:
        return (
            "@article{cao2020rank, title={Rank consistent ordinal regression for neural networks with "
            "application to age estimation}, author={Cao, Wenzhi and Mirjalili, Vahid and Raschka, "
            "Sebastian}, journal={Pattern Recognition Letters}, volume={140}, pages={325--331}, year={2020}}"
        )
