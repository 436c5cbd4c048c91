"""The numerical core of step ``calibrate``: calibrators, cascade routing, guarantees, comparisons, plots.

Arrays in, arrays and small result objects out; no models are loaded here.

- :mod:`~relforge.calibrate._calibrators`: ``none``, ``temperature``, ``top-label-isotonic``,
  ``per-class-isotonic`` (the product's), saved as JSON states beside the tier models;
- :mod:`~relforge.calibrate._decision`: the decision rule (``most-probable`` or
  ``expected-grade``) that turns calibrated probabilities into a grade and its confidence;
- :mod:`~relforge.calibrate._metrics`: accuracy / macro-F1 / QWK, ECE (top-label and
  class-wise, equal-mass bins), Brier, NLL, reliability-diagram data;
- :mod:`~relforge.calibrate._routing`: route pairs through the tiers, simulate a threshold
  vector, search thresholds (target accuracy or budget), the cost-accuracy frontier;
- :mod:`~relforge.calibrate._crossfit`: cross-fitting over query folds (calibrators refitted
  per fold) and the estimate of the chosen operating point with bootstrap CIs;
- :mod:`~relforge.calibrate._guarantee`: guaranteed mode (fixed-sequence testing);
- :mod:`~relforge.calibrate._stats`: per-class isotonic against the best baseline (paired
  bootstrap over queries, exact McNemar);
- :mod:`~relforge.calibrate._plots`: reliability diagrams, frontier, confusion matrix, tier shares;
- the step ``calibrate`` (:func:`~relforge.calibrate.run_calibrate`, declared as :data:`STEP`):
  every tier scores the calib pairs (scores cached on the bus by the tier model's
  fingerprint), calibrators are fitted and saved beside the tier models, the routing is
  chosen and cross-fitted, the gate decides, and the report is written
  (:mod:`~relforge.calibrate._step`, ``_tiers``, ``_scores``, ``_artifacts``, ``_gate``, ``_report``).

The configuration section is :class:`relforge.config.CalibrateConfig` (re-exported here).

Example:
    >>> from relforge.calibrate import calibrator_factory, crossfit_cascade
    >>> est = crossfit_cascade(raw_probs, costs, y, groups, calibrator_factory("per-class-isotonic"),
    ...                        mode="target-accuracy", target=0.8)     # doctest: +SKIP
"""

from relforge._lazy import lazy_exports

# name -> the private module that defines it, imported on first use (scikit-learn, scipy, torch)
_EXPORTS = {
    "ABSTAIN": "relforge.calibrate._guarantee",
    "DECISIONS": "relforge.calibrate._decision",
    "ACCEPT_ALL": "relforge.calibrate._routing",
    "ACCEPT_NONE": "relforge.calibrate._routing",
    "CALIBRATION_METHODS": "relforge.calibrate._calibrators",
    "CALIBRATOR_FILE": "relforge.calibrate._calibrators",
    "CASCADE": "relforge.calibrate._artifacts",
    "CalibrateConfig": "relforge.config",
    "CalibrationPairs": "relforge.calibrate._data",
    "Calibrator": "relforge.calibrate._calibrators",
    "CascadeEstimate": "relforge.calibrate._crossfit",
    "DEFAULT_FLOOR": "relforge.calibrate._calibrators",
    "DEFAULT_MIN_POSITIVES": "relforge.calibrate._calibrators",
    "Difference": "relforge.calibrate._stats",
    "Document": "relforge.calibrate._document",
    "Frontier": "relforge.calibrate._routing",
    "GateCheck": "relforge.calibrate._gate",
    "GateResult": "relforge.calibrate._gate",
    "GuaranteedCascade": "relforge.calibrate._guarantee",
    "McNemar": "relforge.calibrate._stats",
    "NoCalibrator": "relforge.calibrate._calibrators",
    "OperatingPoint": "relforge.calibrate._routing",
    "PairedComparison": "relforge.calibrate._stats",
    "PerClassIsotonicCalibrator": "relforge.calibrate._calibrators",
    "ROUTING_MODES": "relforge.calibrate._routing",
    "ReliabilityBins": "relforge.calibrate._metrics",
    "Routing": "relforge.calibrate._routing",
    "STATE_VERSION": "relforge.calibrate._calibrators",
    "TemperatureCalibrator": "relforge.calibrate._calibrators",
    "ThresholdChoice": "relforge.calibrate._routing",
    "TierGuarantee": "relforge.calibrate._guarantee",
    "TierModel": "relforge.calibrate._tiers",
    "TierScores": "relforge.calibrate._scores",
    "TopLabelIsotonicCalibrator": "relforge.calibrate._calibrators",
    "binomial_p_value": "relforge.calibrate._guarantee",
    "brier_score": "relforge.calibrate._metrics",
    "calibration_metrics": "relforge.calibrate._metrics",
    "calibration_pairs": "relforge.calibrate._data",
    "calibrator_factory": "relforge.calibrate._calibrators",
    "candidate_thresholds": "relforge.calibrate._guarantee",
    "check_gate": "relforge.calibrate._gate",
    "classwise_ece": "relforge.calibrate._metrics",
    "compare_to_best_baseline": "relforge.calibrate._stats",
    "confidence_histogram": "relforge.calibrate._step",
    "cost_accuracy_frontier": "relforge.calibrate._routing",
    "crossfit_calibrate": "relforge.calibrate._crossfit",
    "crossfit_cascade": "relforge.calibrate._crossfit",
    "decide": "relforge.calibrate._decision",
    "decided_grade": "relforge.calibrate._decision",
    "expected_calibration_error": "relforge.calibrate._metrics",
    "fixed_sequence_threshold": "relforge.calibrate._guarantee",
    "guaranteed_cascade": "relforge.calibrate._guarantee",
    "guaranteed_routing": "relforge.calibrate._guarantee",
    "load_calibrator": "relforge.calibrate._calibrators",
    "load_tier_calibrator": "relforge.calibrate._artifacts",
    "make_calibrator": "relforge.calibrate._calibrators",
    "mcnemar_exact": "relforge.calibrate._stats",
    "min_accepted": "relforge.calibrate._guarantee",
    "negative_log_likelihood": "relforge.calibrate._metrics",
    "operating_point": "relforge.calibrate._routing",
    "paired_bootstrap": "relforge.calibrate._stats",
    "percentile_ci": "relforge.calibrate._bootstrap",
    "plot_confusion": "relforge.calibrate._plots",
    "plot_frontier": "relforge.calibrate._plots",
    "plot_reliability": "relforge.calibrate._plots",
    "plot_tier_shares": "relforge.calibrate._plots",
    "query_counts": "relforge.calibrate._bootstrap",
    "query_folds": "relforge.calibrate._crossfit",
    "query_mean_draws": "relforge.calibrate._bootstrap",
    "read_cascade": "relforge.calibrate._artifacts",
    "reliability_bins": "relforge.calibrate._metrics",
    "resolve_tier": "relforge.calibrate._tiers",
    "resolve_tiers": "relforge.calibrate._tiers",
    "route": "relforge.calibrate._routing",
    "run_calibrate": "relforge.calibrate._step",
    "save_calibrator": "relforge.calibrate._calibrators",
    "save_tier_calibrator": "relforge.calibrate._artifacts",
    "score_cached": "relforge.calibrate._scores",
    "search_thresholds": "relforge.calibrate._routing",
    "simulate_cascade": "relforge.calibrate._routing",
    "single_tier_points": "relforge.calibrate._routing",
    "start_accepted": "relforge.calibrate._guarantee",
    "threshold_grid": "relforge.calibrate._routing",
}
__all__ = list(_EXPORTS)  # and STEP, below
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

from relforge.step_spec import Output, Param, Resources, StepSpec

#: The pipeline step of this package (see relforge.steps).
STEP = StepSpec(
    name="calibrate",
    run="relforge.calibrate._step:run_calibrate",
    summary="Score the calib split's judged pairs (and human reviews) with every tier, fit per-class isotonic "
    "calibrators beside the tier models, choose the cascade's routing thresholds with a cross-fitted estimate, "
    "and stop the run when the calibration gate fails.",
    reads=("catalog", "queries", "judgments", "models", "packaged-models"),
    writes=("calibrators",),
    section="calibrate",
    params=(
        Param("target-accuracy", "calibrate.target_accuracy"),
        Param("decision", "calibrate.decision", "most-probable or expected-grade"),
        Param("routing", "calibrate.routing", "target-accuracy or budget"),
        Param("budget", "calibrate.budget"),
        Param("guarantee", "calibrate.guarantee", "guaranteed mode (fixed-sequence thresholds): true or false"),
        Param("gate", "calibrate.gate", "the calibration gate: true (default) or false"),
    ),
    outputs=(
        Output("report", "Markdown", "reports/calibration.md"),
        Output("report_html", "HTML", "reports/calibration.html"),
        Output("metrics", "Metrics", "reports/calibration-metrics.json"),
        Output("confusion", "ClassificationMetrics", "reports/calibration-confusion.json"),
    ),
    resources=Resources(cpu="4", memory="16Gi"),
)
