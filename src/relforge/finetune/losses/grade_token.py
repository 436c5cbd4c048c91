"""Cross-entropy on the grade token, among the grade tokens only: the LoRA tiers' training loss.

A causal-lm tier reads its grade probabilities as the next-token probabilities of the grade
tokens, renormalised among themselves (:class:`relforge.tiers._causal_lm.CausalLMScorer`).
This loss trains exactly that quantity: at the one position whose label is a grade token,
a softmax over the grade tokens' logits and the cross-entropy with the human grade. The rest
of the vocabulary is left alone, so the model is not pushed to spend probability mass on
making "3" beat every other token of the vocabulary, only the other grades.

Used as ``transformers.Trainer(compute_loss_func=GradeTokenLoss(...))``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor


class GradeTokenLoss:
    """Loss over the grade tokens at each sequence's answer position.

    Args:
        grade_ids: the token id of each grade, worst first.
        class_weights: optional weight per grade.

    Inputs:
        ``outputs.logits`` ``(B, T, V)`` and ``labels`` ``(B, T)`` where exactly one position
        per row holds a grade token id and every other position is ``-100``.

    Returns:
        The weighted sum of the per-pair losses divided by ``num_items_in_batch`` when the
        Trainer gives it (gradient accumulation), else by the batch's total weight.

    Example:
        >>> loss = GradeTokenLoss([15, 16, 17, 18])
        >>> logits = torch.zeros(1, 3, 20); logits[0, 1, 18] = 9.0
        >>> labels = torch.tensor([[-100, -100, 18]])
        >>> float(loss(type("O", (), {"logits": logits})(), labels)) < 1e-3
        True
    """

    def __init__(self, grade_ids: Sequence[int], class_weights: Sequence[float] | None = None):
        self.grade_ids = torch.as_tensor(list(grade_ids), dtype=torch.long)
        self.class_weights = None if class_weights is None else torch.as_tensor(list(class_weights), dtype=torch.float32)
        if self.class_weights is not None and len(self.class_weights) != len(self.grade_ids):
            raise ValueError("one class weight per grade is needed")

    def __call__(self, outputs, labels: Tensor, num_items_in_batch: int | Tensor | None = None) -> Tensor:
        logits = outputs["logits"] if isinstance(outputs, dict) else outputs.logits
        # logits at t predict the token at t + 1
        target = labels[:, 1:]
        rows, cols = torch.nonzero(target != -100, as_tuple=True)
        if len(rows) != labels.shape[0]:
            raise ValueError(f"expected one labelled (grade) position per row, found {len(rows)} in {labels.shape[0]} rows")
        grade_ids = self.grade_ids.to(logits.device)
        step_logits = logits[:, :-1, :][rows, cols][:, grade_ids].float()
        tokens = target[rows, cols]
        match = tokens[:, None] == grade_ids[None, :]
        if not bool(match.any(dim=1).all()):
            raise ValueError("a labelled position holds a token that is not a grade token")
        grades = match.float().argmax(dim=1)
        per_pair = F.cross_entropy(step_logits, grades, reduction="none")
        if self.class_weights is not None:
            w = self.class_weights.to(logits.device)[grades]
        else:
            w = torch.ones_like(per_pair)
        total = (per_pair * w).sum()
        if num_items_in_batch is not None:
            # the Trainer counts labelled tokens over the accumulated batch: one per pair
            return total / (num_items_in_batch if not isinstance(num_items_in_batch, Tensor) else num_items_in_batch.to(total.device))
        return total / w.sum().clamp_min(1e-12)
