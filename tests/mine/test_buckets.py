"""Bucket precedence: consensus, then single, then lexical_only, then partial."""

import numpy as np
import pytest

from relforge.mine import BUCKETS, assign_buckets

LEX3 = [True, True, False]  # bm25, ngram, dense


@pytest.mark.parametrize(
    ("found", "bucket"),
    [
        ([1, 1, 1], "consensus"),
        ([1, 1, 0], "lexical_only"),
        ([1, 0, 0], "single"),  # one lexical channel: single wins over lexical_only
        ([0, 1, 0], "single"),
        ([0, 0, 1], "single"),
        ([1, 0, 1], "partial"),
        ([0, 1, 1], "partial"),
        ([0, 0, 0], "random"),
    ],
)
def test_three_channels(found, bucket):
    assert assign_buckets(np.array([found], bool), LEX3).tolist() == [bucket]


def test_four_channels_with_three_lexical():
    lex = [True, True, True, False]
    found = np.array([[1, 1, 1, 0], [1, 1, 0, 0], [1, 1, 1, 1], [0, 1, 0, 1], [0, 0, 0, 1]], bool)
    assert assign_buckets(found, lex).tolist() == [
        "lexical_only", "lexical_only", "consensus", "partial", "single"
    ]


def test_one_channel_is_consensus_and_two_non_lexical_are_partial():
    assert assign_buckets(np.array([[1], [0]], bool), [False]).tolist() == ["consensus", "random"]
    found = np.array([[1, 0, 1]], bool)
    assert assign_buckets(found, [False, True, False]).tolist() == ["partial"]


def test_shape_is_checked():
    with pytest.raises(ValueError, match="expected"):
        assign_buckets(np.zeros((2, 2), bool), LEX3)


def test_every_bucket_is_listed():
    assert set(BUCKETS) == {"consensus", "lexical_only", "partial", "single", "random"}
