"""Plots of the retriever's own reports: the training curves per stage, and the index's recall
against its queries per second. Each function writes one PNG (matplotlib's object API on the Agg
canvas, imported on first use) and returns its path."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def _figure(width: float, height: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def plot_training_curves(stages: list[dict[str, Any]], path: str | Path) -> Path:
    """The training loss against the step, one panel per stage (losses differ in scale)."""
    trained = [s for s in stages if s.get("curve")]
    fig = _figure(3.4 * max(1, len(trained)) + 0.4, 3.0)
    axes = fig.subplots(1, max(1, len(trained)), squeeze=False)[0]
    for ax, stage in zip(axes, trained):
        steps = [p["step"] for p in stage["curve"]]
        ax.plot(steps, [p["loss"] for p in stage["curve"]], marker="o", markersize=3, linewidth=1.2)
        ax.set_title(f"{stage['stage']}: {stage['loss']}", fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        ax.tick_params(labelsize=7)
    if not trained:
        axes[0].text(0.5, 0.5, "no stage trained", ha="center", va="center")
        axes[0].set_axis_off()
    else:
        axes[0].set_ylabel("training loss", fontsize=8)
    fig.suptitle("Two-tower training, per stage", fontsize=10)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, format="png")
    return out


def plot_recall_qps(points: list[dict[str, Any]], chosen: str, path: str | Path) -> Path:
    """Recall@10 against single-query QPS per index kind and search setting; the published kind marked."""
    fig = _figure(5.2, 3.6)
    ax = fig.subplots()
    for kind in sorted({p["kind"] for p in points}):
        mine = [p for p in points if p["kind"] == kind]  # in the order of their search setting
        ax.plot([p["qps"] for p in mine], [p["recall_at_10"] for p in mine], marker="o", markersize=4,
                linewidth=1.4 if kind == chosen else 0.9, label=f"{kind}{' (published)' if kind == chosen else ''}")
        for p in mine:
            if p.get("setting"):
                ax.annotate(p["setting"], (p["qps"], p["recall_at_10"]), fontsize=6, xytext=(3, -8),
                            textcoords="offset points")
    ax.set_xscale("log")
    ax.set_xlabel("queries per second (single queries)", fontsize=8)
    ax.set_ylabel("recall@10 against exact search", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.legend(fontsize=7)
    ax.set_title("Index: recall against speed", fontsize=10)
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, format="png")
    return out
