"""Prompt rendering details the LLM backends rely on: BOS handling and chat templates."""

from __future__ import annotations

import pytest
from tokenizers import processors

from relforge.grades import ESCI
from relforge.tiers import prompt_token_ids, render_prompt, server_prompt_text
from tests.tiny_models import train_bpe_tokenizer

BOS_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


@pytest.fixture(scope="module")
def bos_tokenizer():
    """A tokenizer that adds its BOS by itself (like Llama's and Gemma's) and whose chat
    template also writes it."""
    tok = train_bpe_tokenizer(chat_template=BOS_TEMPLATE)
    bos = tok.convert_tokens_to_ids("<|endoftext|>")
    tok.backend_tokenizer.post_processor = processors.TemplateProcessing(
        single="<|endoftext|> $A", pair="<|endoftext|> $A $B", special_tokens=[("<|endoftext|>", bos)]
    )
    tok.bos_token = "<|endoftext|>"
    return tok


def test_a_bos_written_by_the_template_is_not_doubled(bos_tokenizer):
    text = render_prompt(bos_tokenizer, ESCI, "usb cable", "phone charger")
    assert text.startswith("<|endoftext|><|im_start|>system")
    ids = prompt_token_ids(bos_tokenizer, text)
    assert ids[0] == bos_tokenizer.bos_token_id and ids[1] != bos_tokenizer.bos_token_id
    # a server adds the BOS itself: it gets the text without it and reads the same ids
    sent = server_prompt_text(bos_tokenizer, text)
    assert not sent.startswith("<|endoftext|>")
    assert bos_tokenizer(sent)["input_ids"] == ids


def test_a_bos_is_added_where_the_template_has_none(bos_tokenizer):
    ids = prompt_token_ids(bos_tokenizer, "Query: usb cable")
    assert ids[0] == bos_tokenizer.bos_token_id and ids.count(bos_tokenizer.bos_token_id) == 1
    assert server_prompt_text(bos_tokenizer, "Query: usb cable") == "Query: usb cable"


def test_no_bos_and_no_eos_for_a_tokenizer_that_adds_none(llama_tokenizer):
    text = render_prompt(llama_tokenizer, ESCI, "usb cable", "phone charger")
    ids = prompt_token_ids(llama_tokenizer, text)
    assert ids == llama_tokenizer(text, add_special_tokens=False)["input_ids"]
    assert server_prompt_text(llama_tokenizer, text) == text


def test_a_template_without_a_system_role_gets_it_in_the_user_turn():
    gemma_like = (
        "{% for m in messages %}{% if m['role'] == 'system' %}{{ raise_exception('System role not supported') }}"
        "{% endif %}<start>{{ m['role'] }}\n{{ m['content'] }}<end>\n{% endfor %}"
        "{% if add_generation_prompt %}<start>model\n{% endif %}"
    )
    tok = train_bpe_tokenizer(chat_template=gemma_like)
    text = render_prompt(tok, ESCI, "usb cable", "phone charger")
    assert text.startswith("<start>user\nYou are a relevance judge")
    assert "Query: usb cable" in text and text.endswith("<start>model\n")
