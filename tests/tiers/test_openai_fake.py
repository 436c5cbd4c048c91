"""The `openai` backend's retries, timeouts and failure reporting, against a small fake server
(tests/tiers/_fake_servers.py: OpenAIFake). The real server, vLLM, is in test_vllm.py."""

from __future__ import annotations

import math
import socket
import time

import numpy as np
import pytest

from relforge.grades import ESCI
from relforge.tiers import OpenAIScorer, Pair, RemotePolicy
from tests.tiers._fake_servers import OpenAIFake, Script

FAST = {"backoff_s": 0.01, "backoff_max_s": 0.05}
TOP = [("3", math.log(0.7)), ("2", math.log(0.2)), ("1", math.log(0.06)), ("0", math.log(0.04))]


def _answer(prompt: str):
    return [(0, text, lp) for text, lp in TOP]


def _scorer(url, tokenizer, top_n=20, **policy) -> OpenAIScorer:
    return OpenAIScorer(url, scale=ESCI, name="tier3", tokenizer=tokenizer, top_n=top_n,
                        policy=RemotePolicy(**{**FAST, **policy}))


def test_scores_and_finds_the_served_model(llama_tokenizer, pairs):
    script = Script(_answer)
    with OpenAIFake(script) as server, _scorer(server.url + "/v1", llama_tokenizer) as scorer:
        scores = scorer.score(pairs)
        assert scorer.served_model == "fake-model"
    assert not scores.failed.any()
    np.testing.assert_allclose(scores.probs, np.tile([0.04, 0.06, 0.2, 0.7], (len(pairs), 1)), atol=1e-5)
    body = script.bodies[0]
    assert body["max_tokens"] == 1 and body["logprobs"] == 20 and body["temperature"] == 0
    assert body["prompt"].endswith("<|im_start|>assistant\n")


def test_a_timeout_is_retried_then_reported_failed(llama_tokenizer):
    script = Script(_answer, delay_s=0.6)
    with OpenAIFake(script) as server:
        scorer = _scorer(server.url, llama_tokenizer, timeout_s=0.2, retries=1)
        scorer.served_model = "fake-model"
        start = time.perf_counter()
        scores = scorer.score([Pair("usb cable", "phone charger")])
        elapsed = time.perf_counter() - start
    assert scores.failed.all() and np.isnan(scores.probs).all()
    assert "timed out" in scores.errors[0] and "after 2 request(s)" in scores.errors[0]
    assert sum(script.requests.values()) == 2
    assert elapsed < 1.5  # two 0.2 s timeouts, not two 0.6 s answers


def test_429_with_retry_after_is_waited_for(llama_tokenizer):
    script = Script(_answer, fail_first=1, fail_status=429, retry_after="0.3",
                    fail_body={"error": {"message": "rate limited"}})
    with OpenAIFake(script) as server:
        start = time.perf_counter()
        scores = _scorer(server.url, llama_tokenizer, backoff_max_s=1.0).score([Pair("usb", "cable")])
        elapsed = time.perf_counter() - start
    assert not scores.failed.any() and sum(script.requests.values()) == 2
    assert elapsed >= 0.3


def test_a_dead_server_fails_every_pair_quickly(llama_tokenizer, pairs):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    scorer = _scorer(f"http://127.0.0.1:{port}", llama_tokenizer, retries=2)
    scores = scorer.score(pairs)
    assert scores.failed.all() and np.isnan(scores.probs).all()
    assert all("server not usable" in e and "connection failed" in e for e in scores.errors)


def test_the_breaker_stops_sending_after_failures_in_a_row(llama_tokenizer):
    script = Script(_answer, fail_first=100)
    with OpenAIFake(script) as server:
        scorer = _scorer(server.url, llama_tokenizer, retries=1, max_concurrency=1)
        scorer.served_model = "fake-model"
        scores = scorer.score([Pair("usb", f"cable {i}") for i in range(10)])
    assert scores.failed.all()
    # breaker_after defaults to 2 x max_concurrency = 2 pairs; the other 8 are not sent
    assert sum(script.requests.values()) == 4
    assert sum("not sent" in e for e in scores.errors) == 8
    assert (scores.cost[[e.startswith("not sent") for e in scores.errors]] == 0).all()


def test_a_wrong_model_name_is_not_retried(llama_tokenizer):
    script = Script(_answer)
    with OpenAIFake(script) as server:
        scorer = OpenAIScorer(server.url, served_model="other", scale=ESCI, name="t", tokenizer=llama_tokenizer,
                              policy=RemotePolicy(retries=3, **FAST))
        scores = scorer.score([Pair("usb", "cable")])
    assert scores.failed.all() and "HTTP 404" in scores.errors[0]
    assert sum(script.requests.values()) == 1


def test_concurrency_is_bounded_and_used(llama_tokenizer):
    script = Script(_answer, delay_s=0.1)
    with OpenAIFake(script) as server:
        scores = _scorer(server.url, llama_tokenizer, max_concurrency=4).score(
            [Pair("usb", f"cable {i}") for i in range(16)]
        )
    assert not scores.failed.any()
    assert script.max_in_flight == 4


@pytest.mark.parametrize("price", [None, 0.25])
def test_cost_is_per_request_or_measured_seconds(llama_tokenizer, price):
    script = Script(_answer, delay_s=0.05, fail_first=1)
    with OpenAIFake(script) as server:
        scorer = OpenAIScorer(server.url, scale=ESCI, name="t", tokenizer=llama_tokenizer,
                              policy=RemotePolicy(**FAST), cost_per_request=price, cost_per_second=2.0)
        scores = scorer.score([Pair("usb", "cable")])
    assert not scores.failed.any()
    if price is None:  # two requests of >= 0.05 s at 2.0 per second
        assert 0.2 <= scores.cost[0] < 2.0
    else:
        assert scores.cost[0] == pytest.approx(0.5)  # two requests (one retry) at 0.25
