"""Plots for the calibration report: each function writes one PNG and returns its path.

Figures are drawn with matplotlib's object API on the Agg canvas (``Figure`` +
``FigureCanvasAgg``): no window, no global pyplot state, safe in a pipeline step.
matplotlib is imported on first use, so importing :mod:`relforge.calibrate` stays light.

Example:
    >>> plot_frontier(est.frontier, est.calib, "reports/frontier.png", single_tiers=est.single_tiers)  # doctest: +SKIP
    PosixPath('reports/frontier.png')
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from relforge.calibrate._arrays import check_grades, check_probs
from relforge.calibrate._decision import DEFAULT_DECISION
from relforge.calibrate._metrics import DEFAULT_BINS, expected_calibration_error, reliability_bins
from relforge.calibrate._routing import Frontier, OperatingPoint


def _figure(width: float, height: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Any, path: str | Path) -> Path:
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, format="png")
    return out


def _reliability_panel(ax: Any, probs: np.ndarray, y: np.ndarray, n_bins: int, title: str, decision: str) -> None:
    rb = reliability_bins(probs, y, n_bins, decision)
    ece = expected_calibration_error(probs, y, n_bins, decision)
    ax.plot([0, 1], [0, 1], color="0.6", linestyle="--", linewidth=1)
    ax.plot(rb.confidence, rb.accuracy, marker="o", markersize=3, linewidth=1.2)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_aspect("equal")
    ax.set_title(f"{title}\nECE {ece:.3f}", fontsize=9)
    ax.tick_params(labelsize=7)


def plot_reliability(
    before: Mapping[str, np.ndarray],
    after: Mapping[str, np.ndarray],
    y: np.ndarray,
    path: str | Path,
    n_bins: int = DEFAULT_BINS,
    decision: str = DEFAULT_DECISION,
) -> Path:
    """Reliability diagrams per tier, before (top row) and after (bottom row) calibration.

    Args:
        before, after: tier name -> (n, K) probabilities of the same pairs (same tiers in both).
        y: (n,) human grades.
        n_bins: equal-mass confidence bins.
        decision: the decision rule whose grade and confidence are plotted.
    """
    tiers = list(before)
    if not tiers or set(tiers) != set(after):
        raise ValueError("before and after must name the same, non-empty set of tiers")
    fig = _figure(2.6 * len(tiers) + 0.4, 5.6)
    axes = fig.subplots(2, len(tiers), squeeze=False, sharex=True, sharey=True)
    for col, tier in enumerate(tiers):
        for row, (label, probs) in enumerate((("before", before[tier]), ("after", after[tier]))):
            p = check_probs(probs, f"{label}[{tier}]")
            _reliability_panel(axes[row][col], p, check_grades(y, p.shape[1], len(p)), n_bins, f"{tier}, {label}",
                               decision)
        axes[1][col].set_xlabel("confidence", fontsize=8)
    for row in range(2):
        axes[row][0].set_ylabel("accuracy", fontsize=8)
    fig.suptitle("Reliability (equal-mass bins)", fontsize=10)
    return _save(fig, path)


def plot_frontier(
    frontier: Frontier,
    chosen: OperatingPoint,
    path: str | Path,
    single_tiers: Sequence[OperatingPoint] = (),
    tier_names: Sequence[str] | None = None,
    estimate: OperatingPoint | None = None,
    estimate_ci: Mapping[str, tuple[float, float]] | None = None,
) -> Path:
    """The cost-accuracy frontier with the chosen operating point, each tier alone, and the cross-fitted estimate.

    Args:
        frontier: from :func:`cost_accuracy_frontier`.
        chosen: the operating point chosen on calib.
        single_tiers: each tier alone (:func:`single_tier_points`), drawn as labelled points.
        estimate, estimate_ci: the cross-fitted point and its CIs (``accuracy``, ``mean_cost``), drawn with error bars.
    """
    fig = _figure(5.6, 4.2)
    ax = fig.subplots()
    ax.step(frontier.mean_cost, frontier.accuracy, where="post", color="C0", linewidth=1.2, label="frontier (calib)")
    ax.scatter(frontier.mean_cost, frontier.accuracy, s=8, color="C0")
    names = list(tier_names) if tier_names is not None else [f"tier {t + 1}" for t in range(len(single_tiers))]
    for name, point in zip(names, single_tiers):
        ax.scatter([point.mean_cost], [point.accuracy], marker="s", s=30, color="C2", zorder=3)
        ax.annotate(name, (point.mean_cost, point.accuracy), fontsize=8, xytext=(4, -10), textcoords="offset points")
    ax.scatter([chosen.mean_cost], [chosen.accuracy], marker="*", s=160, color="C3", zorder=4, label="chosen (calib)")
    if estimate is not None:
        xerr = yerr = None
        if estimate_ci:
            # a percentile CI need not contain its point estimate: clip the bars at the point
            lo, hi = estimate_ci.get("mean_cost", (estimate.mean_cost,) * 2)
            xerr = [[max(estimate.mean_cost - lo, 0.0)], [max(hi - estimate.mean_cost, 0.0)]]
            lo, hi = estimate_ci.get("accuracy", (estimate.accuracy,) * 2)
            yerr = [[max(estimate.accuracy - lo, 0.0)], [max(hi - estimate.accuracy, 0.0)]]
        ax.errorbar(
            [estimate.mean_cost], [estimate.accuracy], xerr=xerr, yerr=yerr, fmt="D", color="C1",
            markersize=5, capsize=3, zorder=4, label="cross-fitted estimate",
        )
    ax.set_xlabel("mean cost per pair")
    ax.set_ylabel("accuracy")
    ax.set_title("Cost and accuracy of the cascade", fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    return _save(fig, path)


def plot_confusion(
    y: np.ndarray, predicted: np.ndarray, grade_names: Sequence[str], path: str | Path, normalize: bool = False
) -> Path:
    """The confusion matrix of predicted grades against human grades (rows: human), with grade names.

    Drawn by scikit-learn's ``ConfusionMatrixDisplay`` on an Agg figure; ``normalize``: shares per human grade.
    """
    from sklearn.metrics import ConfusionMatrixDisplay

    names = list(grade_names)
    g = check_grades(y, len(names))
    pred = check_grades(predicted, len(names), len(g), "predicted")
    fig = _figure(1.1 * len(names) + 1.8, 1.1 * len(names) + 1.4)
    ax = fig.subplots()
    ConfusionMatrixDisplay.from_predictions(
        g, pred, labels=list(range(len(names))), display_labels=names, ax=ax, colorbar=False,
        normalize="true" if normalize else None, values_format=".2f" if normalize else "d", cmap="Blues",
    )
    ax.set_xlabel("cascade grade")
    ax.set_ylabel("human grade")
    title = "Cascade grades against human grades" + (" (shares per human grade)" if normalize else "")
    ax.set_title(title, fontsize=10)
    ax.tick_params(axis="x", labelrotation=30)
    return _save(fig, path)


def plot_tier_shares(
    shares: Sequence[float],
    path: str | Path,
    tier_names: Sequence[str] | None = None,
    ci: Sequence[tuple[float, float]] | None = None,
) -> Path:
    """The share of pairs each tier decides (bars), with CIs when given."""
    s = np.asarray(list(shares), dtype=np.float64)
    names = list(tier_names) if tier_names is not None else [f"tier {t + 1}" for t in range(len(s))]
    if len(names) != len(s):
        raise ValueError(f"{len(names)} tier names for {len(s)} shares")
    fig = _figure(1.2 * len(s) + 2.4, 3.4)
    ax = fig.subplots()
    yerr = None
    if ci is not None:
        lo, hi = np.asarray(ci, dtype=np.float64).T
        yerr = [np.clip(s - lo, 0, None), np.clip(hi - s, 0, None)]
    ax.bar([f"{name}\n{v:.0%}" for name, v in zip(names, s)], s, yerr=yerr, capsize=4, color="C0")
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("share of pairs decided")
    ax.set_title("Where pairs are decided", fontsize=10)
    return _save(fig, path)
