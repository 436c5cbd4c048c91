"""Soft-target loss for a softmax grade head: distillation on a teacher's grade probabilities.

The student's ``K`` logits are trained towards the teacher's probabilities ``p`` with the
cross-entropy ``-sum_k p_k log softmax(z / T)_k`` (the KL divergence from the teacher to the
student up to a constant that does not depend on the student; Hinton et al. 2015). With
one-hot targets it is the ordinary cross-entropy, so hard labels are a special case. A
``temperature`` ``T`` above 1 softens the student's distribution as in Hinton et al. (the
loss is then scaled by ``T**2`` so that its gradients keep their size); the head is read
at ``T = 1`` when scoring.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn


def stack_targets(labels: Tensor | Sequence[Tensor], n_grades: int, device, dtype) -> Tensor:
    """The batch's targets as an ``(n, K)`` tensor (the cross-encoder collator gives a list of rows).

    Raises:
        ValueError: a target row without ``n_grades`` values, or one that does not sum to 1.
    """
    target = torch.stack([torch.as_tensor(t) for t in labels]) if isinstance(labels, (list, tuple)) else labels
    target = target.to(device=device, dtype=dtype)
    if target.dim() != 2 or target.shape[1] != n_grades:
        raise ValueError(f"soft targets need {n_grades} probabilities per pair, got shape {tuple(target.shape)}")
    if not torch.allclose(target.sum(dim=1), torch.ones(len(target), device=device, dtype=dtype), atol=1e-3):
        raise ValueError("every soft-target row must sum to 1 (the teacher's grade probabilities)")
    return target


def pair_weights(target: Tensor, class_weights: Tensor | None) -> Tensor | None:
    """Each pair's weight: the expected class weight under its target, ``sum_k p_k w_k``."""
    if class_weights is None:
        return None
    return target @ class_weights.to(target.device, target.dtype)


def soft_cross_entropy(logits: Tensor, target: Tensor, class_weights: Tensor | None = None,
                       temperature: float = 1.0) -> Tensor:
    """The weighted mean of ``-sum_k p_k log softmax(logits / T)_k`` over the batch, times ``T**2``.

    Example:
        >>> p = torch.tensor([[0.7, 0.2, 0.1]])
        >>> round(soft_cross_entropy(p.log(), p).item(), 4)   # the teacher's own entropy
        0.8018
    """
    per_pair = -(target * torch.log_softmax(logits / temperature, dim=1)).sum(dim=1) * temperature**2
    w = pair_weights(target, class_weights)
    if w is None:
        return per_pair.mean()
    return (per_pair * w).sum() / w.sum().clamp_min(1e-12)


class SoftTargetLoss(nn.Module):
    """Distillation loss for a ``CrossEncoder`` with ``K`` outputs (a softmax grade head).

    Args:
        model: a ``CrossEncoder`` with ``num_labels = K``.
        class_weights: optional weight per grade (``K`` values); a pair weighs the expected
            weight under its target.
        temperature: the distillation temperature ``T`` (1: plain soft cross-entropy).

    Inputs:
        (query, item text) pairs, with the teacher's ``K`` grade probabilities as the label.

    Example:
        ::

            from datasets import Dataset
            from sentence_transformers.cross_encoder import CrossEncoder, CrossEncoderTrainer
            model = CrossEncoder("minilm-folder", num_labels=4)
            data = Dataset.from_dict({"query": qs, "text": ts, "label": teacher_probs.tolist()})
            CrossEncoderTrainer(model=model, train_dataset=data, loss=SoftTargetLoss(model)).train()
    """

    def __init__(self, model, class_weights: Sequence[float] | Tensor | None = None, temperature: float = 1.0) -> None:
        super().__init__()
        from sentence_transformers.cross_encoder import CrossEncoder

        if not isinstance(model, CrossEncoder):
            raise TypeError(f"SoftTargetLoss expects a CrossEncoder, got {type(model).__name__}")
        if model.num_labels < 2:
            raise ValueError("SoftTargetLoss needs a cross-encoder with one output per grade (K >= 2)")
        if temperature <= 0:
            raise ValueError("temperature must be positive")
        self.model, self.n_grades, self.temperature = model, model.num_labels, temperature
        if class_weights is not None:
            class_weights = torch.as_tensor(class_weights, dtype=torch.float32)
            if class_weights.shape != (self.n_grades,):
                raise ValueError(f"class_weights needs {self.n_grades} values, got {tuple(class_weights.shape)}")
        self.class_weights = class_weights

    def forward(self, inputs: list[list[str]], labels, prompt: str | None = None, task: str | None = None) -> Tensor:
        from sentence_transformers.util import batch_to_device

        if len(inputs) != 2:
            raise ValueError(f"SoftTargetLoss expects two text columns (query, item), got {len(inputs)}")
        tokens = self.model.preprocess(list(zip(inputs[0], inputs[1])), prompt=prompt, task=task)
        logits = self.model(batch_to_device(tokens, self.model.device))["scores"]
        target = stack_targets(labels, self.n_grades, logits.device, logits.dtype)
        return soft_cross_entropy(logits, target, self.class_weights, self.temperature)

    @property
    def citation(self) -> str:
        return (
            "@article{hinton2015distilling, title={Distilling the Knowledge in a Neural Network}, author={Hinton, "
            "Geoffrey and Vinyals, Oriol and Dean, Jeff}, journal={arXiv preprint arXiv:1503.02531}, year={2015}}"
        )
