"""Step ``finetune-tiers``: fine-tune every tier on the human train split and put it on the bus.

For each tier of ``tiers.names`` (cheapest first), by its backend:

- ``bi-encoder``: the ordered-logit map from the embedding model's cosine to grades
  (:func:`~relforge.finetune.train_bi_encoder`; the embedding model itself is not trained);
- ``cross-encoder``: :func:`~relforge.finetune.finetune_cross_encoder` (``CrossEncoderTrainer``);
- ``causal-lm``: ``finetune.llm_mode``: ``probe`` (:func:`~relforge.finetune.train_probe`, the
  CPU default) or ``lora`` (:func:`~relforge.finetune.finetune_lora`);
- ``tgi`` / ``openai``: ``lora`` (the server then serves the merged folder).

Each tier's folder (with ``relforge_tier.json`` and ``finetune.json``, the tier's report) is
copied to ``models/<tier>`` on the bus; a ``tgi`` / ``openai`` tier's also to the immutable
``models/<tier>/versions/<fingerprint>`` its server pool loads (:mod:`~relforge.finetune._publish`).
A tier whose folder on the bus was made from the same tables and settings is not trained again.
The step writes ``reports/finetune.json`` and ``reports/finetune.md``.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from relforge.bus import DataBus, fingerprint
from relforge.config import RelforgeConfig
from relforge.errors import ConfigError
from relforge.finetune._base import base_reference
from relforge.finetune._data import load_graded_pairs, sample_per_query
from relforge.finetune._publish import SERVED_BACKENDS, ensure_published, publish_version
from relforge.logs import get_logger, log_event
from relforge.tiers import resolve_model_ref

log = get_logger("finetune")

REPORT_JSON = "reports/finetune.json"
REPORT_MD = "reports/finetune.md"
TIER_REPORT = "finetune.json"


def mode_for(backend: str, llm_mode: str) -> str:
    """How a tier with ``backend`` is fine-tuned: ``bi-encoder``, ``cross-encoder``, ``probe`` or ``lora``."""
    if backend in ("bi-encoder", "cross-encoder"):
        return backend
    if backend == "causal-lm":
        return llm_mode
    return "lora"  # tgi, openai: a server serves the merged model


def _tier_fingerprint(inputs: dict[str, str], config: RelforgeConfig, tier: str, mode: str, ref: str) -> str:
    settings = {
        "finetune": config.finetune.model_dump(mode="json", exclude={"tiers"}),
        "mode": mode,
        "base": ref,
        "spec": config.tiers.spec(tier).model_dump(mode="json", include={"backend", "prompt"}),
    }
    return fingerprint(inputs, json.dumps(settings, sort_keys=True), extra=tier)


def run_finetune_tiers(
    bus: DataBus, config: RelforgeConfig, tiers: list[str] | None = None, progress: bool = False
) -> dict:
    """Fine-tune the tiers on the train split (early stopping on calib) and put them on the bus.

    Args:
        bus: the run's bus, with ``catalog``, ``queries`` and ``judgments`` committed.
        config: the run's configuration (sections ``finetune``, ``tiers``, ``models``).
        tiers: the tiers to fine-tune (default: ``tiers.names``).
        progress: show trainers' progress bars.

    Returns:
        A summary: per tier, its bus URI and its report.

    Example:
        >>> run_finetune_tiers(DataBus("runs/esci"), load_config())        # doctest: +SKIP
    """
    from relforge.grades import read_grade_scale

    cfg = config.finetune
    scale = read_grade_scale(bus)
    train = load_graded_pairs(bus, "train", cfg.item_field, scale.n)
    train = sample_per_query(train, cfg.max_train_pairs, cfg.seed)
    calib = load_graded_pairs(bus, "calib", cfg.item_field, scale.n)
    inputs = bus.input_digests("catalog", "queries", "judgments")
    names = tiers or cfg.tiers or config.tiers.names
    unknown = [t for t in names if t not in config.tiers.names]
    if unknown:
        raise ConfigError(f"finetune.tiers: {unknown} are not in tiers.names {config.tiers.names}")
    reports = _finetune_each(bus, config, names, scale, train, calib, inputs, progress)
    summary = {
        "grade_scale": scale.names,
        "train_pairs": len(train),
        "calib_pairs": len(calib),
        "train_grades": train.class_counts(scale.n).tolist(),
        "tiers": reports,
    }
    bus.write_json(REPORT_JSON, summary)
    bus.write_text(REPORT_MD, report_markdown(summary))
    summary["decided"] = "; ".join(_decision(name, r, cfg.select_metric) for name, r in reports.items())
    return summary


def _decision(name: str, report: dict, metric: str) -> str:
    """One tier's outcome in a few words, e.g. ``tier1 cross-encoder calib qwk 0.21``."""
    best = report.get("calib_best") or {}
    text = f"{name} {report.get('mode', '')}"
    if metric in best:
        text += f" calib {metric} {best[metric]:.2f}"
    if report.get("warning"):
        text += " (WARNING: " + report["warning"] + ")"
    return text + (" (reused)" if report.get("reused") else "")


def check_against_start(report: dict, metric: str) -> str | None:
    """Why a fine-tuned tier is no better on calib than where it started, or ``None``.

    The start is the untrained head (cross-encoder) or the zero-shot grade tokens (probe); a
    ``metric`` of zero or less (QWK: no better than a constant) counts as no signal.
    """
    start = report.get("calib_before") or report.get("calib_zero_shot")
    best = report.get("calib_best")
    if not best or metric not in best:
        return None
    if start and metric in start and best[metric] < start[metric]:
        return f"calib {metric} {best[metric]:.3f} is below the tier's starting point {start[metric]:.3f}"
    if metric == "qwk" and best[metric] <= 0:
        return f"calib qwk {best[metric]:.3f}: no better than a constant answer"
    return None


def _finetune_each(bus, config, names, scale, train, calib, inputs, progress) -> dict[str, dict]:
    cfg = config.finetune
    reports: dict[str, dict] = {}
    for name in names:
        spec = config.tiers.spec(name)
        target = f"models/{name}"
        previous = bus.read_json(f"{target}/{TIER_REPORT}") if bus.exists(f"{target}/{TIER_REPORT}") else None
        if previous and previous.get("distilled_from"):
            log_event(log, "tier distilled by the cold-start steps: not fine-tuned here", tier=name)
            reports[name] = {**previous, "reused": True}
            continue
        ref = base_reference(config, name)
        mode = mode_for(spec.backend, cfg.llm_mode)
        fp = _tier_fingerprint(inputs, config, name, mode, ref)
        if previous is not None and previous.get("fingerprint") == fp and bus.exists(f"{target}/manifest.json"):
            log_event(log, "tier already fine-tuned", tier=name, uri=bus.uri(target))
            reports[name] = {**previous, "reused": True}
            if spec.backend in SERVED_BACKENDS:  # published now if an earlier run stopped before it
                reports[name]["served_uri"] = ensure_published(bus, name, fp)
            continue
        base = resolve_model_ref(ref, config.models, config.bus)
        log_event(log, "fine-tuning", tier=name, mode=mode, base=ref, train_pairs=len(train))
        with tempfile.TemporaryDirectory(prefix=f"relforge-{name}-") as tmp:
            out = Path(tmp) / name
            if mode == "bi-encoder":
                from relforge.finetune._bi_encoder import train_bi_encoder

                catalog = bus.read_table("catalog", columns=[cfg.item_field]).column(cfg.item_field).to_pylist()
                report = train_bi_encoder(
                    base, train, sample_per_query(calib, cfg.calib_max_pairs, cfg.seed), out, scale, cfg,
                    cache_dir=config.models.cache_dir / "embeddings", base_ref=ref, max_length=spec.max_length,
                    batch_size=spec.batch_size, catalog_texts=["" if t is None else str(t) for t in catalog],
                )
            elif mode == "cross-encoder":
                from relforge.finetune._cross_encoder import finetune_cross_encoder

                report = finetune_cross_encoder(base, train, calib, out, scale, cfg, base_ref=ref, progress=progress)
            elif mode == "probe":
                from relforge.finetune._probe import train_probe

                calib_used = sample_per_query(calib, cfg.calib_max_pairs, cfg.seed)
                probe_train = sample_per_query(train, cfg.probe_max_train_pairs, cfg.seed)
                report = train_probe(
                    base, probe_train.pairs(), probe_train.grade, calib_used.pairs(), calib_used.grade, out, scale,
                    cfg, cache_dir=config.models.cache_dir / "features", base_ref=ref,
                )
            else:
                from relforge.finetune._lora import finetune_lora

                report = finetune_lora(base, train, calib, out, scale, cfg, base_ref=ref, progress=progress)
            report = {"tier": name, "backend": spec.backend, "base_model": ref, "fingerprint": fp, **report}
            warning = check_against_start(report, cfg.select_metric)
            if warning:
                report["warning"] = warning
                log_event(log, f"tier {name}: fine-tuning did not beat its start: {warning}", level=30, tier=name)
            (out / TIER_REPORT).write_text(json.dumps(report, indent=2, default=str), encoding="utf-8")
            report["uri"] = bus.put_dir(out, target)
            if spec.backend in SERVED_BACKENDS:  # the pool's immutable copy: models/<tier>/versions/<fp>
                report["served_uri"] = publish_version(bus, name, out, fp)
        reports[name] = report
    return reports


def _fmt(metrics: dict | None) -> str:
    if not metrics:
        return ""
    return f"{metrics['accuracy']:.3f} / {metrics['macro_f1']:.3f} / {metrics['qwk']:.3f}"


def report_markdown(summary: dict) -> str:
    """The step's report as Markdown: one row per tier."""
    lines = [
        "# finetune-tiers",
        "",
        (f"Train pairs: {summary['train_pairs']} (grades {summary['grade_scale']}: {summary['train_grades']}); "
        f"calib split: {summary['calib_pairs']} pairs (each tier reads at most finetune.calib_max_pairs of them)."),
        "",
        ("Calib metrics are accuracy / macro-F1 / QWK on the calib pairs used for early stopping or "
        "model selection (optimistic: they chose the checkpoint). `before` is the untrained head "
        "(cross-encoder) or the zero-shot grade tokens (probe)."),
        "",
        "| tier | mode | head | base | train pairs | calib before | calib best | detail | seconds |",
        "|---|---|---|---|---:|---|---|---|---:|",
    ]
    for name, r in summary["tiers"].items():
        mode = r.get("mode", "")
        if mode == "bi-encoder":
            before, best = None, r.get("calib_best")
            cuts = ", ".join(f"{c:.3f}" for c in r.get("cut_points") or [])
            detail = f"ordered-logit map on the cosine, cut points {cuts}, L2 {r.get('l2')}"
            seconds = round(r.get("cosine_seconds", 0) + r.get("fit_seconds", 0), 1)
        elif mode == "cross-encoder":
            before, best = r.get("calib_before"), r.get("calib_best")
            detail = f"steps {r.get('steps')}, best step {r.get('best_step')}, balance {r.get('balance')}"
            seconds = r.get("seconds")
        elif mode == "probe":
            before, best = r.get("calib_zero_shot"), r.get("calib_best")
            detail = f"layer {r.get('layer')}/{r.get('n_layers')} {r.get('pooling')}, L2 {r.get('l2')}"
            seconds = round(r.get("feature_seconds", 0) + r.get("fit_seconds", 0), 1)
        else:
            before, best = None, None
            detail = (f"calib loss {r.get('calib_loss_before')} -> {r.get('calib_loss_best')}, "
                      f"steps {r.get('steps')}, trainable {r.get('trainable_parameters')}")
            seconds = r.get("seconds")
        if r.get("warning"):
            detail += f"; **WARNING: {r['warning']}**"
        reused = " (reused)" if r.get("reused") else ""
        lines.append(
            f"| {name}{reused} | {mode} | {r.get('head', 'grade-tokens')} | {r.get('base_model')} | "
            f"{r.get('train_pairs')} | {_fmt(before)} | {_fmt(best)} | {detail} | {seconds} |"
        )
    return "\n".join(lines) + "\n"
