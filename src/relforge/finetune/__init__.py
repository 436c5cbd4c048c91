"""Step ``finetune-tiers``: fine-tune the tiers on the human train split.

- cross-encoder tiers: sentence-transformers' ``CrossEncoderTrainer`` (softmax or ordinal head);
- causal-lm tiers: a ``probe`` (frozen model, a head on a hidden state, the CPU default) or
  ``lora`` (peft, on the grade token; saved merged and as an adapter);
- losses, one per file, in :mod:`relforge.finetune.losses`.
"""

from relforge.finetune._base import base_reference
from relforge.finetune._cross_encoder import finetune_cross_encoder
from relforge.finetune._data import (
    GradedPairs,
    balanced_class_weights,
    load_graded_pairs,
    sample_per_query,
    split_within_queries,
)
from relforge.finetune._evaluator import GradeEvaluator, head_probs
from relforge.finetune._features import (
    FeatureCache,
    PromptEncoder,
    count_layers,
    feature_key,
    layer_index,
)
from relforge.finetune._lora import finetune_lora, grade_examples
from relforge.finetune._metrics import (
    METRICS,
    bootstrap_by_query,
    grade_metrics,
    metrics_from_confusion,
)
from relforge.finetune._probe import (
    ProbeHead,
    ProbeScorer,
    fit_probe_head,
    save_probe,
    select_probe_head,
    train_probe,
)
from relforge.finetune._run import mode_for, report_markdown, run_finetune_tiers
from relforge.finetune._sampler import BalancedBatchSampler

__all__ = [
    "METRICS",
    "BalancedBatchSampler",
    "FeatureCache",
    "GradeEvaluator",
    "GradedPairs",
    "ProbeHead",
    "ProbeScorer",
    "PromptEncoder",
    "balanced_class_weights",
    "base_reference",
    "bootstrap_by_query",
    "count_layers",
    "feature_key",
    "finetune_cross_encoder",
    "finetune_lora",
    "fit_probe_head",
    "grade_examples",
    "grade_metrics",
    "head_probs",
    "layer_index",
    "load_graded_pairs",
    "metrics_from_confusion",
    "mode_for",
    "report_markdown",
    "run_finetune_tiers",
    "sample_per_query",
    "save_probe",
    "select_probe_head",
    "split_within_queries",
    "train_probe",
]
