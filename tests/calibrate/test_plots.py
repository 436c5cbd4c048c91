"""Plots: each writes a real PNG at the path given and returns it."""

from __future__ import annotations

import matplotlib.image
import pytest

from relforge.calibrate import (
    cost_accuracy_frontier,
    make_calibrator,
    plot_confusion,
    plot_frontier,
    plot_reliability,
    plot_tier_shares,
    search_thresholds,
    single_tier_points,
)
from relforge.grades import ESCI


def _is_drawn_png(path):
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    pixels = matplotlib.image.imread(path)
    assert pixels.shape[0] > 100 and pixels.shape[1] > 100
    assert pixels[..., :3].std() > 0.01  # something was drawn, not a blank canvas


@pytest.fixture(scope="module")
def calibrated(cascade):
    return [make_calibrator("per-class-isotonic").fit(p, cascade.y).transform(p) for p in cascade.probs]


def test_reliability_small_multiples_before_and_after(cascade, calibrated, tmp_path):
    names = ["tier1", "tier2", "tier3"]
    out = plot_reliability(dict(zip(names, cascade.probs)), dict(zip(names, calibrated)), cascade.y,
                           tmp_path / "sub" / "reliability.png", n_bins=10)
    assert out == tmp_path / "sub" / "reliability.png"
    _is_drawn_png(out)
    with pytest.raises(ValueError, match="same"):
        plot_reliability({"tier1": cascade.probs[0]}, {"tier2": calibrated[0]}, cascade.y, tmp_path / "x.png")


def test_frontier_with_the_chosen_point_and_the_single_tiers(cascade, calibrated, tmp_path):
    frontier = cost_accuracy_frontier(calibrated, cascade.costs, cascade.y, n_grid=20)
    chosen = search_thresholds(calibrated, cascade.costs, cascade.y, "target-accuracy", target=0.6, n_grid=20)
    out = plot_frontier(frontier, chosen.point, tmp_path / "frontier.png",
                        single_tiers=single_tier_points(calibrated, cascade.costs, cascade.y),
                        tier_names=["MiniLM", "SmolLM2", "gemma"], estimate=chosen.point,
                        estimate_ci={"accuracy": (0.55, 0.7), "mean_cost": (3.0, 6.0)})
    _is_drawn_png(out)


def test_confusion_matrix_with_grade_names(cascade, calibrated, tmp_path):
    pred = calibrated[2].argmax(axis=1)
    _is_drawn_png(plot_confusion(cascade.y, pred, ESCI.names, tmp_path / "confusion.png"))
    _is_drawn_png(plot_confusion(cascade.y, pred, ESCI.names, tmp_path / "confusion-norm.png", normalize=True))


def test_tier_shares(tmp_path):
    _is_drawn_png(plot_tier_shares([0.5, 0.3, 0.2], tmp_path / "shares.png", ["a", "b", "c"],
                                   ci=[(0.4, 0.6), (0.2, 0.4), (0.1, 0.3)]))
    with pytest.raises(ValueError, match="names"):
        plot_tier_shares([0.5, 0.5], tmp_path / "bad.png", ["only one"])
