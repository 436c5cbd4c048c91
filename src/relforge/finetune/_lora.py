"""Fine-tune a causal-lm tier with LoRA (peft) on the grade token, through ``transformers.Trainer``.

Each training example is the tier's own prompt for the pair (as
:class:`~relforge.tiers._causal_lm.CausalLMScorer` renders it) followed by the human grade's
token; only that token is labelled, and the loss is the cross-entropy among the grade tokens
(:class:`~relforge.finetune.losses.GradeTokenLoss`), which is what the tier reads at scoring
time. The calib split's loss picks the best checkpoint and stops training early.

The output folder is the merged model (a plain transformers folder that the ``causal-lm``
backend, TGI and vLLM load), with ``relforge_tier.json`` (backend ``causal-lm``, head
``grade-tokens``) and the LoRA adapter alone in ``adapter/`` (for servers that load
adapters on a shared base, e.g. TGI's or vLLM's LoRA support).
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

from relforge.config import FinetuneConfig
from relforge.errors import RelforgeError
from relforge.finetune._data import GradedPairs, balanced_class_weights, sample_per_query
from relforge.grades import GradeScale
from relforge.logs import get_logger, log_event
from relforge.tiers import (
    PromptBuilder,
    TierDescriptor,
    grade_token_ids,
    load_tokenizer,
    prompt_for,
)

log = get_logger("finetune.lora")

ADAPTER_DIR = "adapter"


def grade_examples(tokenizer, scale: GradeScale, prompt, pairs: GradedPairs, grade_ids: list[int], max_length: int):
    """Token ids and labels: the prompt (labels -100) followed by the grade token (labelled).

    The prompt is exactly the one the tier reads when scoring (:class:`relforge.tiers.PromptBuilder`
    at the same ``max_length``). Pairs whose prompt cannot fit are left out.

    Returns:
        A ``datasets.Dataset`` with ``input_ids``, ``attention_mask``, ``labels``, and the
        number of pairs left out.
    """
    from datasets import Dataset

    rows = {"input_ids": [], "attention_mask": [], "labels": []}
    skipped = 0
    builder = PromptBuilder(tokenizer, scale, prompt, max_length=max_length)
    for query, text, grade in zip(pairs.query, pairs.text, pairs.grade):
        try:
            ids = builder.ids(str(query), str(text))
        except RelforgeError:
            skipped += 1
            continue
        answer = grade_ids[int(grade)]
        rows["input_ids"].append(ids + [answer])
        rows["attention_mask"].append([1] * (len(ids) + 1))
        rows["labels"].append([-100] * len(ids) + [answer])
    return Dataset.from_dict(rows), skipped


def finetune_lora(
    base: str | Path,
    train: GradedPairs,
    calib: GradedPairs,
    out: str | Path,
    scale: GradeScale,
    cfg: FinetuneConfig,
    base_ref: str = "",
    progress: bool = False,
) -> dict:
    """LoRA fine-tuning of a causal LM on the grade token; saves the merged model and the adapter.

    Args:
        base: a causal LM folder (with its tokenizer and chat template).
        train: training pairs.
        calib: pairs for early stopping (sampled down to ``cfg.calib_max_pairs``).
        out: the output folder (merged model; the adapter in ``out/adapter``).
        scale: the grade scale.
        cfg: the ``finetune`` configuration (``lora_*``, ``llm_max_length``, ``balance``).
        base_ref: the base model's reference, recorded in the descriptor.
        progress: show the trainer's progress bar.

    Returns:
        A report: pairs, steps, best calib loss, seconds, trainable parameters.

    Example:
        >>> finetune_lora(smollm2, train, calib, "out/tier2", ESCI, FinetuneConfig())   # doctest: +SKIP
    """
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import (
        AutoModelForCausalLM,
        DataCollatorForSeq2Seq,
        PrinterCallback,
        Trainer,
        TrainingArguments,
    )

    from relforge import compute
    from relforge.finetune._evaluator import early_stopping, evaluation_cadence
    from relforge.finetune.losses import GradeTokenLoss

    settings = compute.current()
    started = time.perf_counter()
    base = Path(base)
    out = Path(out)
    tokenizer = load_tokenizer(base)
    prompt = prompt_for(base, scale)
    grade_ids = grade_token_ids(tokenizer, scale, prompt)
    calib = sample_per_query(calib, cfg.calib_max_pairs, cfg.seed)
    train_ds, skipped_train = grade_examples(tokenizer, scale, prompt, train, grade_ids, cfg.llm_max_length)
    calib_ds, _ = grade_examples(tokenizer, scale, prompt, calib, grade_ids, cfg.llm_max_length)
    if len(train_ds) == 0:
        raise RelforgeError(f"no training pair fits llm_max_length={cfg.llm_max_length}")
    tokenizer.padding_side = "right"  # training: real tokens keep positions 0..n-1
    torch.manual_seed(cfg.seed)
    model = AutoModelForCausalLM.from_pretrained(str(base), local_files_only=True, dtype=torch.float32)
    model.to(settings.device)
    lora = LoraConfig(
        r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
        target_modules=list(cfg.lora_target_modules), task_type="CAUSAL_LM",
    )
    model = get_peft_model(model, lora)
    trainable, total = model.get_nb_trainable_parameters()
    weights = balanced_class_weights(train.grade, scale.n) if cfg.balance != "none" else None
    eval_steps, total_steps = evaluation_cadence(len(train_ds), cfg.lora_batch_size, cfg.lora_epochs,
                                                 cfg.lora_eval_steps, 4, cfg.lora_grad_accum)
    work = Path(tempfile.mkdtemp(prefix="relforge-lora-"))
    try:
        args = TrainingArguments(
            output_dir=str(work),
            num_train_epochs=cfg.lora_epochs,
            per_device_train_batch_size=cfg.lora_batch_size,
            per_device_eval_batch_size=cfg.lora_batch_size,
            gradient_accumulation_steps=cfg.lora_grad_accum,
            learning_rate=cfg.lora_learning_rate,
            warmup_steps=0.1,
            eval_strategy="steps" if cfg.early_stopping else "no",
            eval_steps=eval_steps,
            save_strategy="steps" if cfg.early_stopping else "no",
            save_steps=eval_steps,
            save_total_limit=1,
            save_only_model=True,
            load_best_model_at_end=cfg.early_stopping,
            metric_for_best_model="eval_loss",
            greater_is_better=False,
            label_names=["labels"],
            logging_steps=max(1, eval_steps // 2),
            seed=cfg.seed,
            data_seed=cfg.seed,
            use_cpu=not settings.on_gpu,
            bf16=settings.dtype == "bfloat16",
            report_to="none",
            disable_tqdm=not progress,
        )
        trainer = Trainer(
            model=model,
            args=args,
            train_dataset=train_ds,
            eval_dataset=calib_ds,
            data_collator=DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=-100),
            compute_loss_func=GradeTokenLoss(grade_ids, weights),
            callbacks=[early_stopping(cfg.lora_patience, min(total_steps, 4 * eval_steps))] if cfg.early_stopping else [],
        )
        trainer.remove_callback(PrinterCallback)
        before = trainer.evaluate()["eval_loss"]
        result = trainer.train()
        best = trainer.evaluate()["eval_loss"]
        steps, best_step = int(result.global_step), trainer.state.best_global_step
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if out.exists():
        shutil.rmtree(out)
    model.save_pretrained(str(out / ADAPTER_DIR))
    merged = model.merge_and_unload()
    merged.save_pretrained(str(out))
    load_tokenizer(base).save_pretrained(str(out))
    TierDescriptor(
        backend="causal-lm", head="grade-tokens", grade_scale=scale, base_model=base_ref or str(base),
        prompt=None, max_length=cfg.llm_max_length,
    ).save(out)
    report = {
        "mode": "lora",
        "train_pairs": len(train_ds),
        "train_pairs_skipped": skipped_train,
        "calib_pairs": len(calib_ds),
        "trainable_parameters": int(trainable),
        "parameters": int(total),
        "steps": steps,
        "best_step": best_step,
        "calib_loss_before": round(float(before), 4),
        "calib_loss_best": round(float(best), 4),
        "seconds": round(time.perf_counter() - started, 1),
    }
    log_event(log, "lora fine-tuned", steps=steps, calib_loss=report["calib_loss_best"], seconds=report["seconds"])
    return report
