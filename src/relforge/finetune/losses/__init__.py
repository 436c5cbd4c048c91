"""Training losses of the fine-tuned tiers, one per file.

- :class:`CoralLoss` (``coral.py``): the ordinal head of a cross-encoder (``CrossEncoderTrainer``);
  :func:`coral_pair_loss` is the same loss for the probe's ordinal head.
- :class:`GradeTokenLoss` (``grade_token.py``): LoRA on a causal LM, cross-entropy among the
  grade tokens at the answer position (``transformers.Trainer(compute_loss_func=...)``).

The softmax head of the cross-encoder uses sentence-transformers' own ``CrossEntropyLoss``.
"""

from relforge.finetune.losses.coral import CoralLoss, coral_pair_loss
from relforge.finetune.losses.grade_token import GradeTokenLoss

__all__ = ["CoralLoss", "GradeTokenLoss", "coral_pair_loss"]
