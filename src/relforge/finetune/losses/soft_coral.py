"""Soft-target CORAL loss for an ordinal grade head: distillation on a teacher's grade probabilities.

An ordinal head's output ``k`` is the logit of P(grade > k). A teacher's probabilities ``p``
give each threshold a soft target, its exceedance probability ``e_k = sum_{j > k} p_j``, and
each output is trained with the binary cross-entropy against it: the CORAL loss (Cao et al.
2020) with soft instead of 0/1 levels. With one-hot targets it is
:func:`~relforge.finetune.losses.coral_pair_loss` exactly.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from relforge.finetune.losses.soft_target import pair_weights, stack_targets


def exceedance(target: Tensor) -> Tensor:
    """``(n, K - 1)`` P(grade > k) from ``(n, K)`` grade probabilities.

    Example:
        >>> exceedance(torch.tensor([[0.1, 0.2, 0.7]])).tolist()
        [[0.9000000357627869, 0.7000000476837158]]
    """
    return torch.flip(torch.cumsum(torch.flip(target, dims=[1]), dim=1), dims=[1])[:, 1:]


def soft_coral_loss(logits: Tensor, target: Tensor, class_weights: Tensor | None = None) -> Tensor:
    """The weighted mean over the batch of the summed binary cross-entropies of the thresholds."""
    levels = exceedance(target).clamp(0.0, 1.0)
    per_pair = nn.functional.binary_cross_entropy_with_logits(logits, levels, reduction="none").sum(dim=1)
    w = pair_weights(target, class_weights)
    if w is None:
        return per_pair.mean()
    return (per_pair * w).sum() / w.sum().clamp_min(1e-12)


class SoftCoralLoss(nn.Module):
    """Distillation loss for a ``CrossEncoder`` with ``K - 1`` outputs (an ordinal grade head).

    Args:
        model: a ``CrossEncoder`` with ``num_labels = K - 1``.
        class_weights: optional weight per grade (``K`` values); a pair weighs the expected
            weight under its target.

    Inputs:
        (query, item text) pairs, with the teacher's ``K`` grade probabilities as the label.

    Example:
        ::

            model = CrossEncoder("minilm-folder", num_labels=3)          # 4 grades
            CrossEncoderTrainer(model=model, train_dataset=data, loss=SoftCoralLoss(model)).train()
    """

    def __init__(self, model, class_weights: Sequence[float] | Tensor | None = None) -> None:
        super().__init__()
        from sentence_transformers.cross_encoder import CrossEncoder

        if not isinstance(model, CrossEncoder):
            raise TypeError(f"SoftCoralLoss expects a CrossEncoder, got {type(model).__name__}")
        if model.num_labels < 1:
            raise ValueError("SoftCoralLoss needs a cross-encoder with K - 1 >= 1 outputs")
        self.model, self.n_grades = model, model.num_labels + 1
        if class_weights is not None:
            class_weights = torch.as_tensor(class_weights, dtype=torch.float32)
            if class_weights.shape != (self.n_grades,):
                raise ValueError(f"class_weights needs {self.n_grades} values, got {tuple(class_weights.shape)}")
        self.class_weights = class_weights

    def forward(self, inputs: list[list[str]], labels, prompt: str | None = None, task: str | None = None) -> Tensor:
        from sentence_transformers.util import batch_to_device

        if len(inputs) != 2:
            raise ValueError(f"SoftCoralLoss expects two text columns (query, item), got {len(inputs)}")
        tokens = self.model.preprocess(list(zip(inputs[0], inputs[1])), prompt=prompt, task=task)
        logits = self.model(batch_to_device(tokens, self.model.device))["scores"]
        target = stack_targets(labels, self.n_grades, logits.device, logits.dtype)
        return soft_coral_loss(logits, target, self.class_weights)

    @property
    def citation(self) -> str:
        return (
            "@article{cao2020rank, title={Rank consistent ordinal regression for neural networks with "
            "application to age estimation}, author={Cao, Wenzhi and Mirjalili, Vahid and Raschka, "
            "Sebastian}, journal={Pattern Recognition Letters}, volume={140}, pages={325--331}, year={2020}}"
        )
