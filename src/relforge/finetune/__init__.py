"""Step ``finetune-tiers``: fine-tune the tiers on the human train split.

- bi-encoder tiers: an ordered-logit map from the embedding model's cosine to grades;
- cross-encoder tiers: sentence-transformers' ``CrossEncoderTrainer`` (softmax or ordinal head);
- causal-lm tiers: a ``probe`` (frozen model, a head on a hidden state, the CPU default) or
  ``lora`` (peft, on the grade token; saved merged and as an adapter);
- tiers served by a pool (``tgi`` / ``openai``): the merged folder published as an immutable
  version, ``models/<tier>/versions/<fingerprint>`` (:func:`served_model_uri`);
- losses, one per file, in :mod:`relforge.finetune.losses`.
"""

from relforge._lazy import lazy_exports

# name -> the private module that defines it, imported on first use (torch is heavy)
_EXPORTS = {
    "BalancedBatchSampler": "relforge.finetune._sampler",
    "FeatureCache": "relforge.finetune._feature_cache",
    "GradeEvaluator": "relforge.finetune._evaluator",
    "GradedPairs": "relforge.finetune._data",
    "METRICS": "relforge.finetune._metrics",
    "balanced_class_weights": "relforge.finetune._data",
    "base_reference": "relforge.finetune._base",
    "cut_points": "relforge.finetune._bi_encoder",
    "save_bi_encoder": "relforge.finetune._bi_encoder",
    "train_bi_encoder": "relforge.finetune._bi_encoder",
    "bootstrap_by_query": "relforge.finetune._metrics",
    "finetune_cross_encoder": "relforge.finetune._cross_encoder",
    "finetune_lora": "relforge.finetune._lora",
    "fit_probe_head": "relforge.finetune._probe",
    "grade_examples": "relforge.finetune._lora",
    "grade_metrics": "relforge.finetune._metrics",
    "load_graded_pairs": "relforge.finetune._data",
    "metrics_from_confusion": "relforge.finetune._metrics",
    "mode_for": "relforge.finetune._run",
    "SERVED_BACKENDS": "relforge.finetune._publish",
    "check_servable": "relforge.finetune._publish",
    "ensure_published": "relforge.finetune._publish",
    "publish_version": "relforge.finetune._publish",
    "served_model_uri": "relforge.finetune._publish",
    "version_path": "relforge.finetune._publish",
    "report_markdown": "relforge.finetune._run",
    "run_finetune_tiers": "relforge.finetune._run",
    "sample_per_query": "relforge.finetune._data",
    "save_probe": "relforge.finetune._probe",
    "select_probe_head": "relforge.finetune._probe",
    "split_within_queries": "relforge.finetune._data",
    "train_probe": "relforge.finetune._probe",
}
__all__ = list(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

from relforge.step_spec import Output, Param, Resources, StepSpec

#: The pipeline step of this package (see relforge.steps).
STEP = StepSpec(
    name="finetune-tiers",
    run="relforge.finetune._run:run_finetune_tiers",
    summary="Fine-tune every tier on the human train split (early stopping and model selection on calib) "
    "and write each tier's model folder to models/<tier>.",
    reads=("catalog", "queries", "judgments", "packaged-models"),
    writes=("models",),
    section="finetune",
    params=(
        Param("mode", "finetune.llm_mode", "causal-lm tiers: probe (frozen model + head, CPU default) or lora"),
        Param("head", "finetune.head", "cross-encoder and probe head: softmax or ordinal"),
        Param("balance", "finetune.balance", "class balance: class-weights, sampler or none"),
        Param("tier", "finetune.tiers", "only these tiers, as YAML, e.g. '[tier1]' (default: tiers.names)"),
        Param("max-train-pairs", "finetune.max_train_pairs", "cap on train pairs, sampled per query"),
    ),
    outputs=(Output("report", "Markdown", "reports/finetune.md"),),
    image="gpu",
    resources=Resources(cpu="8", memory="32Gi", gpu=1),
)
