"""Two-tower training: the stages in order, each from the previous one's model, with
sentence-transformers' ``SentenceTransformerTrainer`` and loss classes (never a hand-written loop).

Each stage builds its examples once (hard negatives filtered with the stage's starting model)
and keeps them on the bus; its checkpoints are copied to the bus as they are saved, and its
final model when it ends. A rerun after a kill fetches the finished stages' models and the
unfinished stage's latest checkpoint, and resumes the trainer there
(``trainer.train(resume_from_checkpoint=...)``: optimizer, scheduler, RNG and data order
included). With ``twotower.curriculum: false`` every stage's examples and loss go into one
trainer at once (a dataset per stage, batches drawn in proportion to their sizes).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from relforge.config import RelforgeConfig, TrainingStage
from relforge.grades import GradeScale
from relforge.logs import get_logger, log_event
from relforge.twotower._checkpoints import (
    StageStore,
    mirror_callback,
    no_final_checkpoint_callback,
    progress_callback,
)
from relforge.twotower._data import TrainingRows
from relforge.twotower._examples import stage_examples
from relforge.twotower._losses import build_loss, stage_batch_sampler
from relforge.twotower._model import encoder_of, load_sentence_transformer

log = get_logger("twotower.train")


def stages_to_train(config: RelforgeConfig) -> list[TrainingStage]:
    """The configured stages, less those ``only_stages`` leaves out."""
    cfg = config.twotower
    return [s for s in cfg.stages if cfg.only_stages is None or s.stage in cfg.only_stages]


def _examples(store: StageStore, key: str, build) -> tuple[Any, dict]:
    """The stage's examples from the bus, or built now and kept there."""
    table = store.examples(key)
    if table is not None:
        return table, store.example_stats(key)
    table, stats = build()
    store.save_examples(key, table, stats)
    return table, stats


def _fit(model, datasets: dict[str, Any], specs: dict[str, TrainingStage], key: str, config: RelforgeConfig,
         store: StageStore, callbacks: Sequence[Any]) -> dict[str, Any]:
    """Train ``model`` on ``datasets`` (one per stage spec) in one trainer; resume from the bus."""
    from datasets import Dataset, DatasetDict
    from sentence_transformers import (
        SentenceTransformerTrainer,
        SentenceTransformerTrainingArguments,
    )
    from transformers import PrinterCallback

    from relforge import compute

    cfg = config.twotower
    settings = compute.current()
    output_dir = store.local / key / "trainer"
    data = {name: Dataset(table) for name, table in datasets.items()}
    losses = {name: build_loss(specs[name].loss, model, cfg) for name in data}
    single = len(data) == 1
    spec = next(iter(specs.values()))
    args = SentenceTransformerTrainingArguments(
        output_dir=str(output_dir),
        num_train_epochs=max(s.epochs for s in specs.values()),
        per_device_train_batch_size=cfg.batch_size,
        learning_rate=(spec.learning_rate or cfg.learning_rate) if single else cfg.learning_rate,
        warmup_steps=cfg.warmup_ratio,
        weight_decay=cfg.weight_decay,
        save_strategy="steps",
        save_steps=cfg.save_steps,
        save_total_limit=1,
        logging_steps=cfg.logging_steps,
        seed=cfg.seed,
        data_seed=cfg.seed,
        use_cpu=not settings.on_gpu,
        bf16=settings.dtype == "bfloat16",
        report_to="none",
        disable_tqdm=True,
        batch_sampler=stage_batch_sampler,
    )
    trainer = SentenceTransformerTrainer(
        model=model, args=args,
        train_dataset=next(iter(data.values())) if single else DatasetDict(data),
        loss=next(iter(losses.values())) if single else losses,
        callbacks=[no_final_checkpoint_callback(), mirror_callback(store, key), progress_callback(key), *callbacks],
    )
    trainer.remove_callback(PrinterCallback)
    resume = store.fetch_checkpoint(key, output_dir)
    resumed_step = int(resume.name.split("-")[-1]) if resume else None
    result = trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    curve = [{"step": int(e["step"]), "epoch": round(float(e.get("epoch", 0.0)), 4), "loss": float(e["loss"]),
              "learning_rate": float(e.get("learning_rate", 0.0))}
             for e in trainer.state.log_history if "loss" in e and "step" in e]
    return {"steps": int(result.global_step), "max_steps": int(trainer.state.max_steps),
            "resumed_from_step": resumed_step, "train_loss": float(result.training_loss), "curve": curve}


def train_two_tower(
    base_dir: str | Path,
    rows: TrainingRows | None,
    levels: dict[int, list[int]],
    config: RelforgeConfig,
    scale: GradeScale,
    catalog_texts: np.ndarray,
    store: StageStore,
    out: str | Path,
    callbacks: Sequence[Any] = (),
) -> dict[str, Any]:
    """Train the stages and save the model to ``out`` (a sentence-transformers folder).

    Args:
        base_dir: the model the towers start from (a sentence-transformers folder).
        rows: the curriculum's training rows (``None`` when no stage is trained).
        levels: curriculum stage -> its levels.
        config: the run's configuration (``twotower``, ``compute``).
        scale: the grade scale.
        catalog_texts: item texts (random fill-in negatives).
        store: where the stages' examples, checkpoints and models are kept on the bus.
        out: the output folder.
        callbacks: extra ``TrainerCallback`` objects for every stage's trainer.

    Returns:
        The training report: per stage its loss, examples, negatives filtered, steps,
        whether it resumed, seconds and loss curve.

    Example:
        >>> report = train_two_tower(minilm, rows, {1: [1, 2]}, config, ESCI, texts, store, "out")  # doctest: +SKIP
    """
    cfg = config.twotower
    out = Path(out)
    model = load_sentence_transformer(base_dir, cfg.max_seq_length)
    specs = stages_to_train(config)
    report: dict[str, Any] = {"curriculum": cfg.curriculum, "stages": []}
    if not specs or rows is None:
        model.save(str(out))
        return report
    if cfg.curriculum:
        for spec in specs:
            key = f"stage-{spec.stage}"
            start = time.perf_counter()
            if store.has_final(key):
                model = load_sentence_transformer(store.fetch_final(key), cfg.max_seq_length)
                done = store.bus.read_json(f"{store.prefix(key)}/report.json")
                report["stages"].append({**done, "reused": True})
                log_event(log, "stage already trained", stage=key)
                continue
            encode = encoder_of(model)
            table, stats = _examples(store, key, lambda s=spec, e=encode: stage_examples(
                rows, levels[s.stage], s, cfg, scale, e, catalog_texts))
            entry = {"stage": key, "loss": spec.loss, "epochs": spec.epochs, "examples": table.num_rows, **stats}
            if table.num_rows:
                entry.update(_fit(model, {key: table}, {key: spec}, key, config, store, callbacks))
            else:
                log_event(log, "stage has no examples; skipped", level=30, stage=key)
            entry["seconds"] = round(time.perf_counter() - start, 1)
            final = store.local / key / "final"
            model.save(str(final), create_model_card=False)
            store.bus.write_json(f"{store.prefix(key)}/report.json", entry)
            store.save_final(key, final)
            report["stages"].append(entry)
    else:
        key, start = "all-levels", time.perf_counter()
        encode = encoder_of(model)
        tables, specs_by_name, entry = {}, {}, {"stage": key, "parts": []}
        for spec in specs:
            name = f"stage-{spec.stage}"
            table, stats = _examples(store, name, lambda s=spec: stage_examples(
                rows, levels[s.stage], s, cfg, scale, encode, catalog_texts))
            if table.num_rows:
                tables[name], specs_by_name[name] = table, spec
            entry["parts"].append({"stage": name, "loss": spec.loss, "examples": table.num_rows, **stats})
        entry["loss"] = "+".join(s.loss for s in specs_by_name.values())
        entry["examples"] = sum(t.num_rows for t in tables.values())
        if tables:
            entry.update(_fit(model, tables, specs_by_name, key, config, store, callbacks))
        entry["seconds"] = round(time.perf_counter() - start, 1)
        report["stages"].append(entry)
    model.save(str(out))
    return report
