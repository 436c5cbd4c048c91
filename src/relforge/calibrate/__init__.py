"""The numerical core of step ``calibrate``: calibrators, cascade routing, guarantees, comparisons, plots.

Arrays in, arrays and small result objects out; no models are loaded here.

- :mod:`~relforge.calibrate._calibrators`: ``none``, ``temperature``, ``top-label-isotonic``,
  ``per-class-isotonic`` (the product's), saved as JSON states beside the tier models;
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
- :mod:`~relforge.calibrate._config_proposal`: ``CalibrateConfig``, to move into ``relforge.config``.

Example:
    >>> from relforge.calibrate import calibrator_factory, crossfit_cascade
    >>> est = crossfit_cascade(raw_probs, costs, y, groups, calibrator_factory("per-class-isotonic"),
    ...                        mode="target-accuracy", target=0.8)     # doctest: +SKIP
"""

from relforge.calibrate._bootstrap import percentile_ci, query_counts, query_mean_draws
from relforge.calibrate._calibrators import (
    CALIBRATION_METHODS,
    CALIBRATOR_FILE,
    DEFAULT_FLOOR,
    DEFAULT_MIN_POSITIVES,
    STATE_VERSION,
    Calibrator,
    NoCalibrator,
    PerClassIsotonicCalibrator,
    TemperatureCalibrator,
    TopLabelIsotonicCalibrator,
    calibrator_factory,
    load_calibrator,
    make_calibrator,
    save_calibrator,
)
from relforge.calibrate._config_proposal import CalibrateConfig
from relforge.calibrate._crossfit import (
    CascadeEstimate,
    crossfit_calibrate,
    crossfit_cascade,
    query_folds,
)
from relforge.calibrate._guarantee import (
    ABSTAIN,
    GuaranteedCascade,
    TierGuarantee,
    binomial_p_value,
    candidate_thresholds,
    fixed_sequence_threshold,
    guaranteed_cascade,
    guaranteed_routing,
    min_accepted,
    start_accepted,
)
from relforge.calibrate._metrics import (
    ReliabilityBins,
    brier_score,
    calibration_metrics,
    classwise_ece,
    expected_calibration_error,
    negative_log_likelihood,
    reliability_bins,
)
from relforge.calibrate._plots import (
    plot_confusion,
    plot_frontier,
    plot_reliability,
    plot_tier_shares,
)
from relforge.calibrate._routing import (
    ACCEPT_ALL,
    ACCEPT_NONE,
    ROUTING_MODES,
    Frontier,
    OperatingPoint,
    Routing,
    ThresholdChoice,
    cost_accuracy_frontier,
    operating_point,
    route,
    search_thresholds,
    simulate_cascade,
    single_tier_points,
    threshold_grid,
)
from relforge.calibrate._stats import (
    Difference,
    McNemar,
    PairedComparison,
    compare_to_best_baseline,
    mcnemar_exact,
    paired_bootstrap,
)

__all__ = [
    "ABSTAIN",
    "ACCEPT_ALL",
    "ACCEPT_NONE",
    "CALIBRATION_METHODS",
    "CALIBRATOR_FILE",
    "DEFAULT_FLOOR",
    "DEFAULT_MIN_POSITIVES",
    "ROUTING_MODES",
    "STATE_VERSION",
    "CalibrateConfig",
    "Calibrator",
    "CascadeEstimate",
    "Difference",
    "Frontier",
    "GuaranteedCascade",
    "McNemar",
    "NoCalibrator",
    "OperatingPoint",
    "PairedComparison",
    "PerClassIsotonicCalibrator",
    "ReliabilityBins",
    "Routing",
    "TemperatureCalibrator",
    "ThresholdChoice",
    "TierGuarantee",
    "TopLabelIsotonicCalibrator",
    "binomial_p_value",
    "brier_score",
    "calibration_metrics",
    "calibrator_factory",
    "candidate_thresholds",
    "classwise_ece",
    "compare_to_best_baseline",
    "cost_accuracy_frontier",
    "crossfit_calibrate",
    "crossfit_cascade",
    "expected_calibration_error",
    "fixed_sequence_threshold",
    "guaranteed_cascade",
    "guaranteed_routing",
    "load_calibrator",
    "make_calibrator",
    "mcnemar_exact",
    "min_accepted",
    "negative_log_likelihood",
    "operating_point",
    "paired_bootstrap",
    "percentile_ci",
    "plot_confusion",
    "plot_frontier",
    "plot_reliability",
    "plot_tier_shares",
    "query_counts",
    "query_folds",
    "query_mean_draws",
    "reliability_bins",
    "route",
    "save_calibrator",
    "search_thresholds",
    "simulate_cascade",
    "single_tier_points",
    "start_accepted",
    "threshold_grid",
]
