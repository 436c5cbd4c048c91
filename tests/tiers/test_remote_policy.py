"""Retries, backoff with jitter, and grade probabilities from top-n tokens (no server)."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from relforge.tiers import RemoteError, RemotePolicy, TopToken, grade_probs_from_top
from relforge.tiers._remote import call_with_retries, status_error

IDS, TEXTS = [10, 11, 12, 13], ["0", "1", "2", "3"]


def test_grades_in_the_top_n_are_renormalised():
    top = [TopToken("3", math.log(0.5), 13), TopToken("2", math.log(0.2), 12),
           TopToken("1", math.log(0.2), 11), TopToken("0", math.log(0.1), 10)]
    np.testing.assert_allclose(grade_probs_from_top(top, IDS, TEXTS), [0.1, 0.2, 0.2, 0.5], atol=1e-6)


def test_a_missing_grade_gets_the_remainder_mass_capped_by_the_smallest_top_token():
    # top mass 0.9 -> remainder 0.1, shared by the two missing grades (0.05 each), below the floor 0.1
    top = [TopToken("3", math.log(0.6), 13), TopToken("x", math.log(0.2), 99), TopToken("2", math.log(0.1), 12)]
    probs = grade_probs_from_top(top, IDS, TEXTS)
    np.testing.assert_allclose(probs, np.array([0.05, 0.05, 0.1, 0.6]) / 0.8, atol=1e-6)
    # a large remainder is capped: no missing token can beat the least probable top token
    top = [TopToken("3", math.log(0.3), 13), TopToken("2", math.log(0.1), 12)]
    probs = grade_probs_from_top(top, IDS, TEXTS)
    np.testing.assert_allclose(probs, np.array([0.1, 0.1, 0.1, 0.3]) / 0.6, atol=1e-6)
    assert probs.sum() == pytest.approx(1.0, abs=1e-6)


def test_tokens_match_by_id_when_given_else_by_exact_text():
    top = [TopToken(" 3", math.log(0.7), 13), TopToken(" 2", math.log(0.2))]  # " 2" has no id: text must match
    probs = grade_probs_from_top(top, IDS, TEXTS)
    assert probs[3] > probs[2] and probs[2] == pytest.approx(probs[0])  # " 2" is not grade "2"


def test_no_grade_token_in_the_top_n_fails_the_pair_instead_of_guessing():
    top = [TopToken("x", math.log(0.9)), TopToken("y", math.log(0.05))]
    with pytest.raises(RemoteError, match="no grade token") as info:
        grade_probs_from_top(top, IDS, TEXTS)
    assert not info.value.retryable


def test_retryable_errors_are_retried_with_growing_jittered_backoff():
    policy = RemotePolicy(retries=4, backoff_s=0.5, backoff_max_s=3.0)
    sleeps: list[float] = []
    calls = {"n": 0}

    def flaky():
        calls["n"] += 1
        if calls["n"] <= 4:
            raise RemoteError("HTTP 503", retryable=True, status=503)
        return "ok"

    result, attempts, _ = call_with_retries(flaky, policy, random.Random(1), sleep=sleeps.append)
    assert (result, attempts) == ("ok", 5)
    caps = [0.5, 1.0, 2.0, 3.0]  # doubling, capped at backoff_max_s
    assert len(sleeps) == 4 and all(0 <= s <= c for s, c in zip(sleeps, caps))
    assert len(set(sleeps)) == 4  # jittered, not a fixed schedule


def test_the_last_error_is_raised_when_retries_run_out():
    sleeps: list[float] = []

    def down():
        raise RemoteError("connection refused", retryable=True)

    with pytest.raises(RemoteError) as info:
        call_with_retries(down, RemotePolicy(retries=2, backoff_s=0.01), random.Random(0), sleep=sleeps.append)
    assert info.value.attempts == 3 and len(sleeps) == 2


def test_errors_that_cannot_heal_are_not_retried():
    sleeps: list[float] = []

    def bad():
        raise status_error(400, "prompt too long")

    with pytest.raises(RemoteError, match="HTTP 400") as info:
        call_with_retries(bad, RemotePolicy(retries=5), random.Random(0), sleep=sleeps.append)
    assert info.value.attempts == 1 and sleeps == []


def test_retry_after_is_honoured_and_capped():
    policy = RemotePolicy(backoff_max_s=2.0)
    assert policy.delay(0, random.Random(0), retry_after=1.5) == 1.5
    assert policy.delay(0, random.Random(0), retry_after=30.0) == 2.0
    assert status_error(429, "slow down", "3").retry_after == 3.0
    assert status_error(429, "slow down", "soon").retry_after is None
    assert status_error(503, "").retryable and status_error(429, "").retryable
    assert not status_error(404, "").retryable and not status_error(422, "").retryable
