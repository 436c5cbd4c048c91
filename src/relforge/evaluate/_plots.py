"""The evaluation's plot: nDCG@k and rating-0@k per system with their intervals.

Drawn with matplotlib's object API on the Agg canvas (imported on first use).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any


def plot_systems(results: list[dict[str, Any]], metrics: list[tuple[str, str]], path: str | Path,
                 reference: str = "two-tower") -> Path:
    """One panel per ``(metric, title)``: each system's mean and interval, the reference in colour."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    n = len(results)
    fig = Figure(figsize=(4.2 * len(metrics) + 1.5, 0.42 * n + 1.4), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    axes = fig.subplots(1, len(metrics), sharey=True, squeeze=False)[0]
    labels = [r["label"] for r in results]
    for ax, (metric, title) in zip(axes, metrics):
        for y, r in enumerate(results):
            s = r["summary"].get(metric, {})
            mean, low, high = s.get("mean"), s.get("low"), s.get("high")
            if mean is None or math.isnan(mean):
                continue
            colour = "C3" if r["name"] == reference else "C0"
            if low is not None and high is not None and not (math.isnan(low) or math.isnan(high)):
                ax.errorbar(mean, y, xerr=[[mean - low], [high - mean]], fmt="o", color=colour, capsize=3,
                            markersize=5)
            else:
                ax.plot(mean, y, "o", color=colour)
        ax.set_title(title, fontsize=9)
        ax.tick_params(labelsize=7)
        ax.grid(axis="x", color="0.9")
    axes[0].set_yticks(range(n))
    axes[0].set_yticklabels(labels, fontsize=7)
    axes[0].invert_yaxis()
    fig.suptitle("Systems on the test split's human judgments (95% bootstrap CIs over queries)", fontsize=9)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, format="png")
    return out
