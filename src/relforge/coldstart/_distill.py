"""Step ``distill``: a small labeler trained on the teacher's labels, calibrated on human judgments, as a tier.

1. **Data**: the sub-run's teacher ``labels`` joined with its ``queries`` and ``catalog``: the
   ``train`` split's pairs train the student, the ``calib`` split's (teacher-labelled, synthetic)
   choose its checkpoint, so no human judgment is spent on training or model selection (with
   too few kept queries for a calib split, a fifth of each train query's pairs is held out).
2. **Student** (``coldstart.student``, a tier of ``tiers.specs`` whose base model it starts from):
   a ``cross-encoder`` is fine-tuned with sentence-transformers' ``CrossEncoderTrainer``
   (:func:`relforge.finetune.finetune_cross_encoder`, the ``finetune`` section's recipe), on the
   teacher's probabilities (``targets: soft``, :class:`~relforge.finetune.losses.SoftTargetLoss`
   or :class:`~relforge.finetune.losses.SoftCoralLoss` for the ordinal head) or its grades
   (``targets: hard``); a ``causal-lm`` student is a probe on the frozen model
   (:func:`relforge.finetune.train_probe`), trained on the teacher's grades (hard targets only).
3. **The tier**: the folder goes to ``models/<coldstart.name>`` on the run's bus with its
   ``relforge_tier.json`` and ``finetune.json`` (its version, ``distilled_from``), where
   :func:`relforge.calibrate.resolve_tier` finds it: put the name in ``tiers.names`` (first, as the
   cheapest tier) with ``tiers.specs.<name>.backend`` (``cross-encoder``, or ``causal-lm`` for a
   probe), and ``calibrate`` and ``annotate`` treat it like any other tier.
4. **Calibration on human judgments**, where the run has any in ``coldstart.calibration_splits``
   (never ``test``; at most ``calibrate.max_pairs`` of them, sampled per query): the tier scores them (through :func:`relforge.tiers.load_scorer`, as every
   tier is scored), a ``calibrate.method`` calibrator is fitted on them and saved as
   ``calibrators/<name>`` for that model version (what ``calibrate`` would save; it refits it when
   the tier joins a cascade), and the report gives the raw and the cross-fitted calibrated
   agreement with the humans. Without human judgments the tier stays uncalibrated, and says so.
5. A rerun with the same labels and settings reuses the folder (and the calibrator).
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from relforge.bus import DataBus, fingerprint
from relforge.coldstart._subrun import SUBRUN, coldstart_bus, settings_hash
from relforge.config import RelforgeConfig, TierSpec
from relforge.errors import ConfigError, InputError, ModelError, NotCommittedError
from relforge.finetune import (
    GradedPairs,
    base_reference,
    load_graded_pairs,
    sample_per_query,
    split_within_queries,
)
from relforge.grades import GradeScale, read_grade_scale
from relforge.logs import get_logger, log_event
from relforge.tiers import resolve_model_ref

log = get_logger("coldstart.distill")

TIER_REPORT = "finetune.json"
REPORT_JSON = "reports/coldstart-distill.json"
REPORT_MD = "reports/coldstart-distill.md"


def student_backend(config: RelforgeConfig) -> str:
    """The distilled tier's backend: ``cross-encoder``, or ``causal-lm`` (a probe folder).

    Raises:
        ConfigError: a student tier whose backend cannot be distilled into, or a probe student
            with soft targets.
    """
    spec = config.tiers.spec(config.coldstart.student)
    if spec.backend == "cross-encoder":
        return "cross-encoder"
    if spec.backend == "causal-lm":
        if config.coldstart.targets == "soft":
            raise ConfigError("coldstart.targets=soft: a causal-lm student is a probe, whose head trains on grades; "
                              "set coldstart.targets=hard, or use a cross-encoder student")
        return "causal-lm"
    raise ConfigError(f"coldstart.student: tier `{spec.name}` has backend `{spec.backend}`; a student is a "
                      "cross-encoder or a causal-lm (probe) tier")


def teacher_pairs(sub: DataBus, split: str, item_field: str, n_grades: int) -> tuple[GradedPairs, np.ndarray]:
    """The teacher-labelled pairs of the sub-run's ``split`` and the teacher's probabilities.

    Returns:
        The pairs (``grade``: the teacher's) and their ``(n, K)`` probabilities (each row
        renormalised to sum to 1), ordered by query then item id.
    """
    pairs = load_graded_pairs(sub, split, item_field, n_grades)
    labels = sub.read_table("labels", columns=["query_id", "item_id", "probs"])
    probs = dict(zip(zip(labels.column("query_id").to_pylist(), labels.column("item_id").to_pylist()),
                     labels.column("probs").to_pylist()))
    target = np.asarray([probs[(q, i)] for q, i in zip(pairs.query_id, pairs.item_id)], dtype=np.float64)
    target = np.clip(np.nan_to_num(target, nan=0.0), 0.0, None)
    total = target.sum(axis=1, keepdims=True)
    target = np.where(total > 0, target / np.where(total > 0, total, 1.0), 1.0 / n_grades)
    return pairs, target


def _subset_targets(pairs: GradedPairs, chosen: GradedPairs, target: np.ndarray) -> np.ndarray:
    index = {k: i for i, k in enumerate(zip(pairs.query_id, pairs.item_id))}
    return target[[index[k] for k in zip(chosen.query_id, chosen.item_id)]]


def distilled_tier_config(config: RelforgeConfig, backend: str) -> RelforgeConfig:
    """``config`` with the distilled tier alone in ``tiers.names`` (its spec added when the
    configuration has none): how :func:`relforge.calibrate.resolve_tier` sees it."""
    name = config.coldstart.name
    specs = dict(config.tiers.specs)
    if name not in specs:
        specs[name] = TierSpec(name=name, backend=backend)
    tiers = config.tiers.model_copy(update={"names": [name], "specs": specs})
    return config.model_copy(update={"tiers": tiers})


def run_distill(bus: DataBus, config: RelforgeConfig) -> dict[str, Any]:
    """Train the student on the teacher's labels and put it on the bus as a tier (see the module docstring).

    Args:
        bus: the run's bus; the sub-run holds the teacher's ``labels`` (``relforge teacher-label``).
        config: the run's configuration (sections ``coldstart``, ``finetune``, ``tiers``,
            ``models``, ``calibrate``).

    Returns:
        A summary (the student's agreement with the teacher on the synthetic calib split, with
        the humans where they judged, the tier's folder) with a ``decided`` line.

    Raises:
        ConfigError: a student that cannot be distilled into (see :func:`student_backend`).
        InputError: no teacher-labelled pair in the sub-run's train or calib split.
    """
    started = time.perf_counter()
    cs, ft = config.coldstart, config.finetune
    backend = student_backend(config)
    scale = read_grade_scale(bus)
    sub = coldstart_bus(bus)
    train, train_target = teacher_pairs(sub, "train", ft.item_field, scale.n)
    try:
        calib, _ = teacher_pairs(sub, "calib", ft.item_field, scale.n)
    except InputError:  # too few kept queries for a calib split: hold out a fifth of each train query's pairs
        log_event(log, "no calib-split synthetic query: early stopping on held-out pairs of the train queries", level=30)
        kept, calib = split_within_queries(train, 0.2, cs.seed)
        train_target = _subset_targets(train, kept, train_target)
        train = kept
    chosen = sample_per_query(train, cs.max_train_pairs, cs.seed)
    targets = _subset_targets(train, chosen, train_target)
    warning = _one_grade(chosen, scale, backend, sub.uri("labels"))
    ref = base_reference(config, cs.student)
    target_path = f"models/{cs.name}"
    inputs = sub.input_digests("labels", "queries", "catalog")
    settings = {"finetune": ft.model_dump(mode="json", exclude={"tiers"}), "student": cs.student, "base": ref,
                "backend": backend, "targets": cs.targets, "max_train_pairs": cs.max_train_pairs, "seed": cs.seed}
    fp = fingerprint(inputs, settings_hash(settings), extra=cs.name)
    report = _existing(bus, target_path, fp)
    if report is None:
        report = _train(bus, config, backend, ref, chosen, targets, calib, scale, fp, target_path)
    summary: dict[str, Any] = {"tier": cs.name, "uri": bus.uri(target_path), "backend": backend, "base_model": ref,
                               "targets": cs.targets, "train_pairs": len(chosen), "calib_pairs": len(calib),
                               "teacher": sub.manifest("labels").metadata.get("teacher"),
                               "agreement_with_teacher": report.get("calib_best"), "reused": report.get("reused", False)}
    if warning:
        summary["warning"] = warning
    summary["human"] = calibrate_distilled(bus, config, backend, scale)
    summary["seconds"] = round(time.perf_counter() - started, 1)
    _write_report(bus, summary, config)
    human = summary["human"]
    agreement = summary["agreement_with_teacher"] or {}
    text = (f"{cs.name}: {backend} distilled from the teacher's {cs.targets} labels ({len(chosen):,} synthetic pairs)"
            + (f", calib QWK with the teacher {agreement['qwk']:.2f}" if "qwk" in agreement else ""))
    if human.get("calibrated"):
        text += (f"; calibrated on {human['pairs']:,} human pairs (accuracy {human['raw']['accuracy']:.2f} raw, "
                 f"{human['crossfit']['accuracy']:.2f} calibrated, cross-fitted)")
    else:
        text += f"; not calibrated ({human.get('reason')})"
    summary["decided"] = text + (f" (WARNING: {warning})" if warning else "")
    return summary


def _one_grade(train: GradedPairs, scale: GradeScale, backend: str, where: str) -> str | None:
    """A warning when the teacher gave every train pair one grade (the hard-label student learns a
    constant; the soft one only what the probabilities vary by).

    Raises:
        InputError: a probe student, which cannot fit a head on one class.
    """
    grades = np.unique(train.grade)
    if len(grades) > 1:
        return None
    text = f"the teacher graded all {len(train):,} train pairs `{scale.names[int(grades[0])]}`"
    if backend == "causal-lm":
        raise InputError(where, None, "grade", f"{text}: a probe head cannot be fitted on one grade; use another teacher")
    log_event(log, f"{text}: a hard-label student learns a constant", level=30)
    return text


def _existing(bus: DataBus, target: str, fp: str) -> dict | None:
    if bus.exists(f"{target}/manifest.json") and bus.exists(f"{target}/{TIER_REPORT}"):
        previous = bus.read_json(f"{target}/{TIER_REPORT}")
        if previous.get("fingerprint") == fp:
            log_event(log, "distilled tier already trained", uri=bus.uri(target))
            return {**previous, "reused": True}
    return None


def _train(bus: DataBus, config: RelforgeConfig, backend: str, ref: str, train: GradedPairs, targets: np.ndarray,
           calib: GradedPairs, scale: GradeScale, fp: str, target_path: str) -> dict:
    cs, ft = config.coldstart, config.finetune
    base = resolve_model_ref(ref, config.models, config.bus)
    teacher = coldstart_bus(bus).manifest("labels").metadata.get("teacher")
    log_event(log, "distilling", student=cs.student, backend=backend, base=ref, targets=cs.targets, pairs=len(train))
    with tempfile.TemporaryDirectory(prefix=f"relforge-{cs.name}-") as tmp:
        out = Path(tmp) / cs.name
        if backend == "cross-encoder":
            from relforge.finetune import finetune_cross_encoder

            report = finetune_cross_encoder(base, train, calib, out, scale, ft, base_ref=ref,
                                            targets=targets if cs.targets == "soft" else None)
        else:
            from relforge.finetune import train_probe

            calib_used = sample_per_query(calib, ft.calib_max_pairs, ft.seed)
            report = train_probe(base, train.pairs(), train.grade, calib_used.pairs(), calib_used.grade, out, scale, ft,
                                 cache_dir=config.models.cache_dir / "features", base_ref=ref)
        report = {"tier": cs.name, "backend": backend, "base_model": ref, "fingerprint": fp,
                  "distilled_from": teacher, "targets": cs.targets, "student": cs.student, **report,
                  "selection": "calib_best is the agreement with the teacher on the synthetic calib split"}
        (out / TIER_REPORT).write_text(json.dumps(report, indent=2, default=str), encoding="utf-8")
        report["uri"] = bus.put_dir(out, target_path)
    return report


def calibrate_distilled(bus: DataBus, config: RelforgeConfig, backend: str, scale: GradeScale) -> dict[str, Any]:
    """Fit and save the distilled tier's calibrator on the run's human judgments, where there are any.

    Returns:
        ``{"calibrated": False, "reason"}``, or the pairs, the method, the raw and the
        cross-fitted calibrated metrics (accuracy, macro-F1, QWK, ECE) and the calibrator's URI.
    """
    from relforge.calibrate import (
        calibration_metrics,
        calibrator_factory,
        crossfit_calibrate,
        load_tier_calibrator,
        resolve_tier,
        save_tier_calibrator,
    )

    cs, cal = config.coldstart, config.calibrate
    splits = list(cs.calibration_splits)
    if not splits or not bus.is_committed("judgments") or bus.manifest("judgments").rows == 0:
        return {"calibrated": False, "reason": "the run has no human judgments"}
    try:
        human = sample_per_query(load_graded_pairs(bus, splits, config.finetune.item_field, scale.n), cal.max_pairs,
                                 cal.seed)
    except InputError:
        return {"calibrated": False, "reason": f"no human judgment in split(s) {splits}"}
    tier_config = distilled_tier_config(config, backend)
    tier = resolve_tier(bus, tier_config, cs.name)
    fitted_on = {"by": "distill", "splits": splits, "pairs": len(human),
                 "inputs": settings_hash({"judgments": bus.manifest("judgments").digest(), "method": cal.method,
                                          "min_positives": cal.min_positives, "floor": cal.floor,
                                          "max_pairs": cal.max_pairs, "seed": cal.seed})}
    try:
        _, doc = load_tier_calibrator(bus, cs.name, tier.fingerprint)
        if doc.get("fitted_on", {}).get("inputs") == fitted_on["inputs"] and "metrics" in doc.get("fitted_on", {}):
            return {**doc["fitted_on"]["metrics"], "reused": True}
    except (NotCommittedError, ModelError):  # none yet, or one for another model version: fit one
        pass
    with tier.scorer(scale, tier_config) as scorer:
        scores = scorer.score(human.pairs())
    ok = ~scores.failed
    if not ok.any():
        return {"calibrated": False, "reason": f"the tier failed to score every human pair ({scores.errors[0]})"}
    probs, grades, groups = scores.probs[ok].astype(np.float64), human.grade[ok], human.query_id[ok]
    probs = probs / probs.sum(axis=1, keepdims=True)  # float32 rows: exactly 1 again
    factory = calibrator_factory(cal.method, min_positives=cal.min_positives, floor=cal.floor)
    calibrator = factory().fit(probs, grades)
    metrics: dict[str, Any] = {"calibrated": True, "method": cal.method, "splits": splits, "pairs": int(ok.sum()),
                               "queries": len(np.unique(groups)), "failed": int((~ok).sum()),
                               "raw": _four(calibration_metrics(probs, grades, cal.ece_bins))}
    folds = min(cal.folds, len(np.unique(groups)))
    if folds >= 2:
        oof = crossfit_calibrate(probs, grades, groups, factory, folds=folds, seed=cal.seed)
        metrics["crossfit"] = _four(calibration_metrics(oof, grades, cal.ece_bins))
    else:
        metrics["crossfit"] = _four(calibration_metrics(calibrator.transform(probs), grades, cal.ece_bins))
        metrics["note"] = "one query: the calibrated metrics are measured on the pairs the calibrator was fitted on"
    metrics["uri"] = save_tier_calibrator(bus, tier, calibrator, {**fitted_on, "metrics": metrics})
    return metrics


def _four(m: dict[str, float]) -> dict[str, float]:
    return {k: round(float(m[k]), 4) for k in ("accuracy", "macro_f1", "qwk", "ece")}


def _write_report(bus: DataBus, summary: dict, config: RelforgeConfig) -> None:
    cs = config.coldstart
    bus.write_json(REPORT_JSON, summary)
    teacher = summary.get("teacher") or {}
    agreement = summary.get("agreement_with_teacher") or {}
    human = summary["human"]
    lines = [
        "# Distilled labeler (cold start)", "",
        (f"Tier `{cs.name}` ({summary['backend']}, from `{summary['base_model']}`) at `{summary['uri']}`, trained on "
         f"{summary['train_pairs']:,} pairs of synthetic queries with the teacher's **{summary['targets']}** labels "
         f"(teacher: {teacher.get('tier') or teacher.get('kind')}, {teacher.get('model', '')}; its probabilities "
         f"{teacher.get('calibration', 'from the calibrated cascade')})."), "",
        "| measured on | pairs | accuracy | macro-F1 | QWK | ECE |", "|---|---:|---:|---:|---:|---:|",
    ]
    if agreement:
        lines.append(f"| the teacher, synthetic calib split (chose the checkpoint) | {summary['calib_pairs']:,} | "
                     f"{agreement.get('accuracy', float('nan')):.3f} | {agreement.get('macro_f1', float('nan')):.3f} | "
                     f"{agreement.get('qwk', float('nan')):.3f} | |")
    if human.get("calibrated"):
        for key, what in (("raw", "humans, raw"), ("crossfit", f"humans, {human['method']} (cross-fitted)")):
            m = human[key]
            lines.append(f"| {what}, split(s) {', '.join(human['splits'])} | {human['pairs']:,} | {m['accuracy']:.3f} | "
                         f"{m['macro_f1']:.3f} | {m['qwk']:.3f} | {m['ece']:.3f} |")
    if summary.get("warning"):
        lines += ["", f"**WARNING**: {summary['warning']}: a hard-label student learns a constant."]
    lines += ["", ("Calibrator: " + (f"`{human['method']}` on the human judgments, saved as `calibrators/{cs.name}`."
                                    if human.get("calibrated") else f"none ({human.get('reason')}).")), "",
              "Use it as the cheapest tier of the cascade:", "", "```yaml", "tiers:",
              f"  names: [{cs.name}, tier0, tier1, tier3]",
              "  specs:", f"    {cs.name}: {{backend: {summary['backend']}}}", "```", "",
              ("then `relforge calibrate` (the human calib split) and `relforge annotate`; `finetune-tiers` must leave "
               f"it out (`finetune.tiers`). The synthetic queries: `{SUBRUN}/`.")]
    bus.write_text(REPORT_MD, "\n".join(lines) + "\n")
