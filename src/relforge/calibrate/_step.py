"""Step ``calibrate``: per-tier calibrators, the cascade's routing, the gate, and the calibration report.

1. The calibration pairs (:mod:`~relforge.calibrate._data`: the calib split's judged pairs and
   the usable human reviews) are scored by every tier of ``tiers.names``
   (:mod:`~relforge.calibrate._tiers`); scores are cached on the bus by the tier's fingerprint
   (:mod:`~relforge.calibrate._scores`), so a rerun does not rescore, and each pair's cost is
   the cost the scorer measured.
2. For each tier, the configured method (``calibrate.method``) and the baselines are measured
   out of fold (cross-fitted over query folds: a calibrator is never scored on the pairs it
   was fitted on): accuracy, macro-F1, QWK (with bootstrap CIs over queries), ECE (top-label
   and class-wise, equal-mass bins), Brier, NLL; the method is compared with the best baseline
   (paired bootstrap over queries, exact McNemar).
3. The cascade (:func:`~relforge.calibrate.crossfit_cascade`): calibrators and thresholds
   fitted on **all** calibration pairs, the operating point estimated by cross-fitting, with
   CIs, the cost-accuracy frontier; in guaranteed mode also fixed-sequence thresholds.
4. The calibrators are saved beside the tier models as versioned artifacts
   (``calibrators/<tier>/``, with the model's fingerprint) and the cascade as
   ``calibrators/cascade.json`` (what ``annotate`` reads).
5. The gate (:mod:`~relforge.calibrate._gate`) decides; the report (Markdown, HTML, a KFP
   ``Metrics`` document and a confusion matrix) is written either way; a failed gate stops the
   run with :class:`~relforge.errors.CalibrationGateError`.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from relforge.bus import DataBus
from relforge.calibrate._artifacts import save_tier_calibrator, write_cascade
from relforge.calibrate._calibrators import calibrator_factory
from relforge.calibrate._crossfit import crossfit_calibrate, crossfit_cascade
from relforge.calibrate._data import calibration_pairs
from relforge.calibrate._decision import decided_confidence, decided_grade
from relforge.calibrate._gate import check_gate
from relforge.calibrate._guarantee import guaranteed_cascade
from relforge.calibrate._metrics import calibration_metrics, expected_calibration_error
from relforge.calibrate._report import write_calibration_report
from relforge.calibrate._scores import score_cached
from relforge.calibrate._stats import compare_to_best_baseline
from relforge.calibrate._tiers import TierModel, resolve_tiers
from relforge.config import RelforgeConfig
from relforge.errors import CalibrationGateError, InputError, RelforgeError
from relforge.finetune import bootstrap_by_query
from relforge.grades import read_grade_scale
from relforge.logs import get_logger, log_event

log = get_logger("calibrate")

REPORT_MD = "reports/calibration.md"
REPORT_HTML = "reports/calibration.html"
REPORT_JSON = "reports/calibration.json"
METRICS_JSON = "reports/calibration-metrics.json"
CONFUSION_JSON = "reports/calibration-confusion.json"


def _catalog_texts(bus: DataBus, config: RelforgeConfig, tiers: list[TierModel]) -> list[str] | None:
    """The catalog's item texts, for tiers that load cached item vectors (the bi-encoder)."""
    if not any(t.backend == "bi-encoder" for t in tiers):
        return None
    field = config.finetune.item_field
    return ["" if t is None else str(t) for t in bus.read_table("catalog", columns=[field]).column(field).to_pylist()]


def confidence_histogram(calibrated: np.ndarray, bins: int, decision: str) -> list[int]:
    """How many calibration pairs fall in each of ``bins`` equal-width bins of calibrated confidence."""
    counts, _ = np.histogram(decided_confidence(calibrated, decision), bins=bins, range=(0.0, 1.0))
    return counts.astype(int).tolist()


def run_calibrate(bus: DataBus, config: RelforgeConfig) -> dict[str, Any]:
    """Calibrate every tier, choose and cross-fit the routing, apply the gate, write the report.

    Args:
        bus: the run's bus (``catalog``, ``queries``, ``judgments``; the tiers' models).
        config: the run's configuration (sections ``calibrate``, ``tiers``, ``models``, ``review``).

    Returns:
        A summary (the gate, the estimate, the thresholds, per-tier shares) with a ``decided`` line.

    Raises:
        CalibrationGateError: the gate failed (the report and ``cascade.json`` say why; nothing
            downstream runs on this cascade).
        RelforgeError: a tier could not score some calibration pairs (those scored are cached;
            a rerun retries the rest).
    """
    started = time.perf_counter()
    cfg = config.calibrate
    scale = read_grade_scale(bus)
    data = calibration_pairs(bus, config, scale)
    pairs = data.pairs
    y = pairs.grade.astype(np.int64)
    groups = pairs.query_id.astype(str)
    n_queries = len(np.unique(groups))
    folds = min(cfg.folds, n_queries)
    if folds < 2:
        raise InputError(bus.uri("queries"), None, "split", f"calibration needs pairs of at least 2 queries, got {n_queries}")
    tiers = resolve_tiers(bus, config)
    catalog_texts = _catalog_texts(bus, config, tiers)

    scored = []
    lists = (pairs.query_id.tolist(), pairs.item_id.tolist(), pairs.query.tolist(), pairs.text.tolist())
    for tier in tiers:
        s = score_cached(bus, tier, lambda t=tier: t.scorer(scale, config), *lists, scale.n, catalog_texts)
        scored.append(s)
        if s.failed.any():
            first = next(e for e in s.errors if e)
            raise RelforgeError(
                f"tier `{tier.name}` could not score {int(s.failed.sum())} of {len(y)} calibration pairs "
                f"(first error: {first}); the pairs scored are cached: rerun `relforge calibrate` to retry the rest"
            )
        log_event(log, "tier scored", tier=tier.name, pairs=len(y), scored_now=s.scored_now,
                  mean_cost=round(float(s.cost.mean()), 5), prepare_seconds=round(s.prepare_seconds, 1))
    raw = [s.probs for s in scored]
    costs = [s.cost for s in scored]

    methods = [cfg.method, *cfg.baselines]
    factories = {m: calibrator_factory(m, min_positives=cfg.min_positives, floor=cfg.floor) for m in methods}
    per_tier: dict[str, dict[str, Any]] = {}
    oof_by_tier: dict[str, dict[str, np.ndarray]] = {}
    for tier, p in zip(tiers, raw):
        oof = {m: crossfit_calibrate(p, y, groups, factories[m], folds, cfg.seed) for m in methods}
        oof_by_tier[tier.name] = oof
        rows = {}
        for m, q in oof.items():
            metrics = calibration_metrics(q, y, cfg.ece_bins, cfg.decision)
            ci = bootstrap_by_query(groups, y, decided_grade(q, cfg.decision), scale.n, reps=cfg.bootstrap_reps, seed=cfg.seed,
                                    level=cfg.ci_level)
            rows[m] = {**metrics, "ci": {k: list(v) for k, v in ci.items()}}
        comparison = compare_to_best_baseline(groups, y, oof, candidate=cfg.method, reps=max(cfg.bootstrap_reps, 1000),
                                              seed=cfg.seed, level=cfg.ci_level, decision=cfg.decision)
        per_tier[tier.name] = {"methods": rows, "comparison": comparison.as_dict()}

    estimate = crossfit_cascade(
        raw, costs, y, groups, factories[cfg.method], mode=cfg.routing, target=cfg.target_accuracy,
        budget=cfg.budget, folds=folds, n_grid=cfg.grid, seed=cfg.seed, reps=cfg.bootstrap_reps, level=cfg.ci_level,
        decision=cfg.decision,
    )
    assert estimate.held_out is not None and estimate.held_out.probs is not None
    ece = expected_calibration_error(estimate.held_out.probs, y, cfg.ece_bins, cfg.decision)
    calibrated = [c.transform(p) for c, p in zip(estimate.calibrators, raw)]
    guaranteed = (
        guaranteed_cascade(calibrated, y, cfg.agreement_to_guarantee, cfg.delta, decision=cfg.decision)
        if cfg.guarantee else None
    )
    gate = check_gate(estimate, ece, cfg, guaranteed)

    fitted_on = {"pairs": len(y), "queries": n_queries, "origins": data.counts(),
                 "grades": np.bincount(y, minlength=scale.n).tolist()}
    tier_docs = []
    for tier, cal, s, cal_probs in zip(tiers, estimate.calibrators, scored, calibrated):
        uri = save_tier_calibrator(bus, tier, cal, fitted_on)
        tier_docs.append({
            "name": tier.name, "position": tier.position, "backend": tier.backend, "model": tier.ref,
            "source": tier.source, "model_fingerprint": tier.fingerprint, "calibrator": uri,
            "mean_cost": float(s.cost.mean()), "scored_now": s.scored_now, "prepare_seconds": s.prepare_seconds,
            "confidence_histogram": confidence_histogram(cal_probs, config.review.bins, cfg.decision),
            "identity_grades": getattr(cal, "identity_grades", []),
        })
    cascade = {
        "grade_scale": scale.names,
        "method": cfg.method,
        "decision": cfg.decision,
        "mode": "guaranteed" if cfg.guarantee else cfg.routing,
        "tiers": tier_docs,
        "thresholds": estimate.as_dict()["thresholds"],
        "guaranteed_thresholds": guaranteed.thresholds if guaranteed is not None else None,
        "crossfit": estimate.crossfit.as_dict(),
        "ci": {k: list(v) for k, v in estimate.ci.items()},
        "share_ci": [list(v) for v in estimate.share_ci],
        "ece": ece,
        "gate": gate.as_dict(),
        "fitted_on": fitted_on,
    }
    write_cascade(bus, cascade)
    summary = {
        "pairs": len(y), "queries": n_queries, "origins": data.counts(), "folds": folds,
        "tiers": [t.name for t in tiers], "per_tier": per_tier, "estimate": estimate.as_dict(), "ece": ece,
        "guaranteed": guaranteed.as_dict() if guaranteed is not None else None, "gate": gate.as_dict(),
        "cascade": cascade, "seconds": round(time.perf_counter() - started, 1),
    }
    write_calibration_report(
        bus, summary, tiers, raw, oof_by_tier, estimate, y, scale, config,
        paths={"md": REPORT_MD, "html": REPORT_HTML, "json": REPORT_JSON, "metrics": METRICS_JSON,
               "confusion": CONFUSION_JSON},
    )
    cf, ci = estimate.crossfit, estimate.ci
    shares = " / ".join(f"{t.name} {s:.0%}" for t, s in zip(tiers, cf.shares))
    line = (f"accuracy {cf.accuracy:.3f} [{ci['accuracy'][0]:.2f}, {ci['accuracy'][1]:.2f}], "
            f"QWK {cf.qwk:.3f} [{ci['qwk'][0]:.2f}, {ci['qwk'][1]:.2f}], ECE {ece:.3f}, "
            f"cost x{cf.relative_cost:.2f} of the top tier; decided: {shares} (cross-fitted, {len(y)} pairs)")
    if not gate.passed:
        reasons = "; ".join(gate.reasons)
        raise CalibrationGateError(
            f"calibration gate failed: {reasons}. The cascade's labels would miss the quality target; no label is "
            f"made from it. Report: {bus.uri(REPORT_MD)}"
        )
    summary["decided"] = ("gate passed: " if gate.enabled else "gate off: ") + line
    return summary
