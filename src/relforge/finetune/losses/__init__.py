"""Training losses of the fine-tuned tiers, one per file.

- :class:`CoralLoss` (``coral.py``): the ordinal head of a cross-encoder (``CrossEncoderTrainer``);
  :func:`coral_pair_loss` is the same loss for the probe's ordinal head.
- :class:`GradeTokenLoss` (``grade_token.py``): LoRA on a causal LM, cross-entropy among the
  grade tokens at the answer position (``transformers.Trainer(compute_loss_func=...)``).
- :class:`SoftTargetLoss` (``soft_target.py``): distillation of a softmax head on a teacher's
  grade probabilities (soft cross-entropy, optional temperature).
- :class:`SoftCoralLoss` (``soft_coral.py``): distillation of an ordinal head: CORAL with the
  teacher's exceedance probabilities as soft levels.

The softmax head of the cross-encoder uses sentence-transformers' own ``CrossEntropyLoss``.
"""

from relforge.finetune.losses.coral import CoralLoss, coral_pair_loss
from relforge.finetune.losses.grade_token import GradeTokenLoss
from relforge.finetune.losses.soft_coral import SoftCoralLoss, exceedance, soft_coral_loss
from relforge.finetune.losses.soft_target import SoftTargetLoss, soft_cross_entropy

__all__ = ["CoralLoss", "GradeTokenLoss", "SoftCoralLoss", "SoftTargetLoss", "coral_pair_loss", "exceedance",
           "soft_coral_loss", "soft_cross_entropy"]
