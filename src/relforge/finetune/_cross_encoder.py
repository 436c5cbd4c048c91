"""Fine-tune the cross-encoder tier with sentence-transformers' ``CrossEncoderTrainer``.

The base model (e.g. MiniLM-L6's BERT weights) gets a new classification head: ``K`` outputs
(softmax, trained with the library's ``CrossEntropyLoss``) or ``K - 1`` cumulative outputs
(ordinal, trained with :class:`~relforge.finetune.losses.CoralLoss`). Class balance is a
weighted loss or balanced batches; the calib split picks the best checkpoint and stops
training when it no longer improves. With ``targets`` (a teacher's grade probabilities, for
distillation) the heads are trained on them instead of the grades:
:class:`~relforge.finetune.losses.SoftTargetLoss` (softmax) or
:class:`~relforge.finetune.losses.SoftCoralLoss` (ordinal).
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

from relforge.config import FinetuneConfig
from relforge.finetune._data import GradedPairs, balanced_class_weights, sample_per_query
from relforge.finetune._evaluator import GradeEvaluator, early_stopping, evaluation_cadence
from relforge.grades import GradeScale
from relforge.logs import get_logger, log_event
from relforge.tiers import TierDescriptor, cross_encoder_inputs

log = get_logger("finetune.cross_encoder")


def _dataset(pairs: GradedPairs, tokenizer, max_length: int, targets=None):
    """The training pairs as the tier will read them when scoring (item cut by field); the label
    is the grade, or the row of ``targets`` (soft targets)."""
    from datasets import Dataset

    fitted = cross_encoder_inputs(tokenizer, pairs.pairs(), max_length)
    label = pairs.grade.astype(int).tolist() if targets is None else [[float(v) for v in row] for row in targets]
    return Dataset.from_dict({"query": [q for q, _ in fitted], "text": [t for _, t in fitted], "label": label})


def finetune_cross_encoder(
    base: str | Path,
    train: GradedPairs,
    calib: GradedPairs,
    out: str | Path,
    scale: GradeScale,
    cfg: FinetuneConfig,
    head: str | None = None,
    base_ref: str = "",
    progress: bool = False,
    targets=None,
) -> dict:
    """Fine-tune a cross-encoder on graded pairs and save it, with ``relforge_tier.json``, to ``out``.

    Args:
        base: a model folder ``CrossEncoder`` loads (a BERT-style encoder; its head is replaced).
        train: training pairs.
        calib: pairs for early stopping (sampled down to ``cfg.calib_max_pairs``).
        out: the output model folder.
        scale: the grade scale.
        cfg: the ``finetune`` configuration.
        head: ``softmax`` or ``ordinal`` (default ``cfg.head``).
        base_ref: the base model's reference, recorded in the descriptor.
        progress: show the trainer's progress bar.
        targets: ``(len(train), K)`` grade probabilities to train on instead of ``train.grade``
            (distillation from a teacher; ``train.grade`` is then the teacher's grade, used for
            the class weights). Balanced batches need hard labels: with targets, ``sampler``
            balance weights the loss instead.

    Returns:
        A report: head, pairs, steps, best calib metric, seconds, and the trainer's log.

    Example:
        >>> finetune_cross_encoder(minilm, train, calib, "out/tier1", ESCI, FinetuneConfig())  # doctest: +SKIP
    """
    import torch
    from sentence_transformers.cross_encoder import (
        CrossEncoder,
        CrossEncoderTrainer,
        CrossEncoderTrainingArguments,
    )
    from sentence_transformers.cross_encoder.losses import CrossEntropyLoss
    from transformers import PrinterCallback

    from relforge import compute
    from relforge.finetune._sampler import BalancedBatchSampler
    from relforge.finetune.losses import CoralLoss, SoftCoralLoss, SoftTargetLoss

    settings = compute.current()
    head = head or cfg.head
    k = scale.n
    out = Path(out)
    started = time.perf_counter()
    torch.manual_seed(cfg.seed)
    model = CrossEncoder(
        str(base),
        num_labels=k if head == "softmax" else k - 1,
        max_length=cfg.ce_max_length,
        device=settings.device,
        local_files_only=True,
        model_kwargs={"ignore_mismatched_sizes": True},
    )
    soft = targets is not None
    if soft:
        import numpy as np

        targets = np.asarray(targets, dtype=np.float64)
        if targets.shape != (len(train), k):
            raise ValueError(f"targets must be ({len(train)}, {k}) grade probabilities, got {targets.shape}")
    sampler = cfg.balance == "sampler" and not soft
    weighted = cfg.balance == "class-weights" or (soft and cfg.balance == "sampler")
    weights = balanced_class_weights(train.grade, k) if weighted else None
    if soft:
        loss = SoftTargetLoss(model, class_weights=weights) if head == "softmax" else SoftCoralLoss(model, weights)
    elif head == "softmax":
        loss = CrossEntropyLoss(model, weight=None if weights is None else torch.tensor(weights, dtype=torch.float32))
    else:
        loss = CoralLoss(model, class_weights=weights)
    calib = sample_per_query(calib, cfg.calib_max_pairs, cfg.seed)
    evaluator = GradeEvaluator(
        cross_encoder_inputs(model.tokenizer, calib.pairs(), cfg.ce_max_length), calib.grade, head, k,
        name="calib", primary=cfg.select_metric,
    )
    eval_steps, total_steps = evaluation_cadence(len(train), cfg.ce_batch_size, cfg.ce_epochs, cfg.ce_eval_steps,
                                                 cfg.ce_evals_per_epoch)
    min_steps = round(total_steps * min(1.0, cfg.ce_min_epochs / cfg.ce_epochs))
    work = Path(tempfile.mkdtemp(prefix="relforge-ce-"))
    try:
        args = CrossEncoderTrainingArguments(
            output_dir=str(work),
            num_train_epochs=cfg.ce_epochs,
            per_device_train_batch_size=cfg.ce_batch_size,
            per_device_eval_batch_size=32,
            learning_rate=cfg.ce_learning_rate,
            warmup_steps=cfg.ce_warmup_ratio,
            weight_decay=cfg.ce_weight_decay,
            eval_strategy="steps" if cfg.early_stopping else "no",
            eval_steps=eval_steps,
            save_strategy="steps" if cfg.early_stopping else "no",
            save_steps=eval_steps,
            save_total_limit=1,
            save_only_model=True,
            load_best_model_at_end=cfg.early_stopping,
            metric_for_best_model=f"eval_calib_{cfg.select_metric}",
            greater_is_better=True,
            logging_steps=max(1, eval_steps // 2),
            seed=cfg.seed,
            data_seed=cfg.seed,
            use_cpu=not settings.on_gpu,
            bf16=settings.dtype == "bfloat16",
            report_to="none",
            disable_tqdm=not progress,
            batch_sampler=BalancedBatchSampler if sampler else "batch_sampler",
        )
        trainer = CrossEncoderTrainer(
            model=model,
            args=args,
            train_dataset=_dataset(train, model.tokenizer, cfg.ce_max_length, targets),
            loss=loss,
            evaluator=evaluator if cfg.early_stopping else None,
            callbacks=[early_stopping(cfg.ce_patience, min_steps)] if cfg.early_stopping else [],
        )
        trainer.remove_callback(PrinterCallback)
        before = evaluator(model)
        result = trainer.train()
        after = evaluator(model)  # the calib-best checkpoint (reloaded at the end), or the last
        history = [
            {k2: v for k2, v in entry.items() if k2 in ("step", "epoch", "loss", f"eval_calib_{cfg.select_metric}")}
            for entry in trainer.state.log_history
        ]
        steps = int(result.global_step)
        best_step = trainer.state.best_global_step
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if out.exists():
        shutil.rmtree(out)
    model.save_pretrained(str(out))
    TierDescriptor(backend="cross-encoder", head=head, grade_scale=scale, base_model=base_ref or str(base),
                   max_length=cfg.ce_max_length).save(out)
    report = {
        "mode": "cross-encoder",
        "head": head,
        "balance": cfg.balance if not (soft and cfg.balance == "sampler") else "class-weights (soft targets)",
        "targets": "soft" if soft else "hard",
        "early_stopping": cfg.early_stopping,
        "train_pairs": len(train),
        "calib_pairs": len(calib),
        "steps": steps,
        "planned_steps": total_steps,
        "eval_steps": eval_steps,
        "best_step": best_step,
        "calib_before": {k2.removeprefix("calib_"): v for k2, v in before.items()},
        "calib_best": {k2.removeprefix("calib_"): v for k2, v in after.items()},
        "seconds": round(time.perf_counter() - started, 1),
        "history": history,
    }
    log_event(log, "cross-encoder fine-tuned", head=head, steps=steps, best_step=best_step,
              calib=round(after[f"calib_{cfg.select_metric}"], 4), seconds=report["seconds"])
    return report
