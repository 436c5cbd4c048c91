"""The false-negative filter and the choice of hard negatives among those that pass."""

import numpy as np

from relforge.twotower import choose_negatives, false_negative_filter
from relforge.twotower._negatives import NegativeStats


def test_a_negative_scored_near_or_above_the_positive_is_dropped():
    neg = np.array([0.95, 0.80, 0.76, 0.70, 0.10])
    keep = false_negative_filter(0.80, neg, relative_margin=0.05)  # below 0.80 * 0.95 = 0.76
    assert keep.tolist() == [False, False, False, True, True]


def test_the_absolute_margin_and_both_margins_together():
    neg = np.array([0.75, 0.65, 0.5])
    assert false_negative_filter(0.8, neg, None, 0.1).tolist() == [False, True, True]
    assert false_negative_filter(0.8, neg, 0.3, 0.1).tolist() == [False, False, True]  # 0.8 * 0.7 = 0.56
    assert false_negative_filter(0.8, neg, None, None).all()


def test_a_negative_positive_score_keeps_the_margin_below_it():
    # relative to the score's magnitude, as sentence-transformers does: -0.5 -> below -0.525
    assert false_negative_filter(-0.5, np.array([-0.51, -0.6]), 0.05).tolist() == [False, True]


def test_top_sampling_takes_the_hardest_negatives_that_pass():
    rows, scores = np.array([10, 11, 12, 13]), np.array([0.9, 0.5, 0.7, 0.2], dtype=np.float32)
    stats = NegativeStats()
    picked = choose_negatives(0.8, rows, scores, 2, relative_margin=0.05, absolute_margin=None, strategy="top",
                              rng=np.random.default_rng(0), stats=stats)
    assert picked.tolist() == [12, 11]  # 0.9 is a likely false negative; then the hardest two
    assert stats.filtered_out == 1 and stats.candidates == 4 and stats.chosen == 2
