"""The `tgi` backend against a STAND-IN for TGI (TGI cannot run on this machine).

The stand-in (tests/tiers/_fake_servers.py: TGIStandIn) replays TGI's documented
``POST /generate`` contract; the requests go through huggingface_hub's InferenceClient.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest

from relforge.errors import ConfigError
from relforge.grades import ESCI
from relforge.tiers import Pair, RemotePolicy, TGIScorer
from tests.tiers._fake_servers import Script, TGIStandIn

FAST = {"backoff_s": 0.01, "backoff_max_s": 0.05}


def _ids(tokenizer) -> dict[str, int]:
    return {d: tokenizer.convert_tokens_to_ids(d) for d in "0123"}


def _answers(tokenizer):
    """Top tokens per query: full grade coverage, a missing grade, and no grade at all."""
    ids = _ids(tokenizer)
    table = {
        "q-all": [(ids["3"], "3", math.log(0.5)), (ids["2"], "2", math.log(0.3)),
                  (ids["1"], "1", math.log(0.15)), (ids["0"], "0", math.log(0.05))],
        "q-missing": [(ids["2"], "2", math.log(0.6)), (500, "x", math.log(0.3)), (ids["1"], "1", math.log(0.05))],
        "q-none": [(500, "x", math.log(0.7)), (501, "y", math.log(0.2))],
    }

    def answer(prompt: str):
        query = re.search(r"Query: (\S+)", prompt).group(1)
        return table[query]

    return answer


def _scorer(url, tokenizer, **policy) -> TGIScorer:
    return TGIScorer(url, scale=ESCI, name="tier2", tokenizer=tokenizer, top_n=5,
                     policy=RemotePolicy(**{**FAST, **policy}))


def test_probabilities_from_top_tokens_with_remainder_mass(llama_tokenizer):
    with TGIStandIn(Script(_answers(llama_tokenizer))) as server:
        scores = _scorer(server.url, llama_tokenizer).score(
            [Pair("q-all", "shoes"), Pair("q-missing", "cable"), Pair("q-none", "mug")]
        )
        body = server.script.bodies[0]
    np.testing.assert_allclose(scores.probs[0], [0.05, 0.15, 0.3, 0.5], atol=1e-5)
    # q-missing: top mass 0.95, remainder 0.05 split over grades 0 and 3 (0.025 each, < floor 0.05)
    np.testing.assert_allclose(scores.probs[1], np.array([0.025, 0.05, 0.6, 0.025]) / 0.7, atol=1e-5)
    assert scores.failed.tolist() == [False, False, True]
    assert np.isnan(scores.probs[2]).all() and "no grade token" in scores.errors[2]
    np.testing.assert_allclose(scores.probs[:2].sum(axis=1), 1.0, atol=1e-6)
    # the request follows TGI's contract
    assert body["parameters"]["details"] is True and body["parameters"]["top_n_tokens"] == 5
    assert body["parameters"]["max_new_tokens"] == 1
    assert body["inputs"].startswith("<|im_start|>system") and body["inputs"].endswith("assistant\n")


@pytest.mark.parametrize("status,payload", [
    (503, {"error": "Service Unavailable"}),
    (429, {"error": "Model is overloaded", "error_type": "overloaded"}),
])
def test_503_and_429_are_retried_until_they_succeed(llama_tokenizer, status, payload):
    script = Script(_answers(llama_tokenizer), fail_first=2, fail_status=status, fail_body=payload)
    with TGIStandIn(script) as server:
        scores = _scorer(server.url, llama_tokenizer, retries=3).score([Pair("q-all", "a"), Pair("q-all", "b")])
    assert not scores.failed.any()
    assert sorted(script.requests.values()) == [3, 3]  # two failures and a success per pair


def test_pairs_that_exhaust_their_retries_are_failed_not_guessed(llama_tokenizer):
    script = Script(_answers(llama_tokenizer), fail_first=10)
    with TGIStandIn(script) as server:
        scorer = TGIScorer(server.url, scale=ESCI, name="t", tokenizer=llama_tokenizer,
                           policy=RemotePolicy(retries=2, **FAST), cost_per_request=0.5)
        scores = scorer.score([Pair("q-all", "a"), Pair("q-missing", "b")])
    assert scores.failed.all() and np.isnan(scores.probs).all()
    assert (scores.grades == -1).all()
    assert all("HTTP 503" in e and "after 3 request(s)" in e for e in scores.errors)
    np.testing.assert_allclose(scores.cost, [1.5, 1.5])  # three requests at 0.5 each


def test_a_validation_error_is_not_retried(llama_tokenizer):
    script = Script(_answers(llama_tokenizer), max_top_n=2)  # like --max-top-n-tokens 2
    with TGIStandIn(script) as server:
        scores = _scorer(server.url, llama_tokenizer, retries=3).score([Pair("q-all", "a")])
    assert scores.failed.all() and "HTTP 422" in scores.errors[0]
    assert sum(script.requests.values()) == 1


def test_concurrency_is_bounded(llama_tokenizer):
    script = Script(_answers(llama_tokenizer), delay_s=0.15)
    with TGIStandIn(script) as server:
        scores = _scorer(server.url, llama_tokenizer, max_concurrency=3).score(
            [Pair("q-all", f"item {i}") for i in range(12)]
        )
    assert not scores.failed.any()
    assert script.max_in_flight == 3  # never more than 3, and the 3 slots were used


def test_offline_mode_is_refused_up_front(llama_tokenizer, monkeypatch):
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(ConfigError, match="HF_HUB_OFFLINE"):
        _scorer("http://127.0.0.1:9", llama_tokenizer)
