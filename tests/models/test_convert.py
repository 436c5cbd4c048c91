"""GGUF to transformers folder, on a tiny llama GGUF written by the test (see _tiny.py)."""

from __future__ import annotations

import json

import pytest
import torch

from relforge.errors import ModelError
from relforge.models import convert_gguf
from tests.models._tiny import SENTENCES, tiny_gguf

GEMMA_LIKE = "{% for m in messages %}<start>{{ m['role'] }}\n{{ m['content'] }}<end>\n{% endfor %}"


@pytest.fixture(scope="module")
def converted(tiny_llama_gguf, tmp_path_factory):
    path, model, tok = tiny_llama_gguf
    out = tmp_path_factory.mktemp("converted") / "model"
    convert_gguf(path, out, stop_tokens=("<|endoftext|>",))
    return out, model, tok


def test_the_folder_loads_plainly_and_computes_what_the_original_did(converted):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out, original, tok = converted
    assert {"config.json", "model.safetensors", "tokenizer.json", "generation_config.json"} <= {
        p.name for p in out.iterdir()
    }
    config = json.loads((out / "config.json").read_text())
    assert "quantization_config" not in config
    assert config["architectures"] == ["LlamaForCausalLM"] and config["dtype"] == "float32"
    model = AutoModelForCausalLM.from_pretrained(out)
    tokenizer = AutoTokenizer.from_pretrained(out)
    for text in SENTENCES[:3] + ["an unseen query: blue wireless shoes!"]:
        ids = tokenizer(text, return_tensors="pt")
        assert ids["input_ids"][0].tolist() == tok.encode(text).ids
        with torch.no_grad():
            # q and k come back un-permuted from llama.cpp's layout: the same logits, to float precision
            torch.testing.assert_close(model(**ids).logits, original(**ids).logits, rtol=0, atol=1e-5)


def test_chat_template_and_stop_tokens_are_kept(converted):
    from transformers import AutoTokenizer, GenerationConfig

    out, _, tok = converted
    tokenizer = AutoTokenizer.from_pretrained(out)
    prompt = tokenizer.apply_chat_template(
        [{"role": "user", "content": "red shoes?"}], tokenize=False, add_generation_prompt=True
    )
    assert prompt == "<|im_start|>user\nred shoes?<|im_end|>\n<|im_start|>assistant\n"
    gen = GenerationConfig.from_pretrained(out)
    vocab = tok.get_vocab()
    assert gen.eos_token_id == [vocab["<|im_end|>"], vocab["<|endoftext|>"]]


def test_bfloat16_and_a_fallback_chat_template(tmp_path):
    from safetensors import safe_open
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path, original, _ = tiny_gguf(tmp_path / "src", chat_template=None)
    out = tmp_path / "bf16"
    convert_gguf(path, out, dtype="bfloat16", chat_template=GEMMA_LIKE)
    with safe_open(str(out / "model.safetensors"), "pt") as f:
        dtypes = {f.get_slice(k).get_dtype() for k in f.keys()}  # noqa: SIM118 - safe_open is not a dict
    assert dtypes == {"BF16"}
    tokenizer = AutoTokenizer.from_pretrained(out)
    assert tokenizer.chat_template == GEMMA_LIKE
    model = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32)
    ids = tokenizer("red running shoes", return_tensors="pt")
    with torch.no_grad():
        torch.testing.assert_close(model(**ids).logits, original(**ids).logits, rtol=0.05, atol=0.05)


def test_errors_name_the_file(tiny_llama_gguf, tmp_path):
    path, _, _ = tiny_llama_gguf
    with pytest.raises(ModelError, match='stop token "<nope>" is not in the vocabulary'):
        convert_gguf(path, tmp_path / "a", stop_tokens=("<nope>",))
    with pytest.raises(ModelError, match="dtype"):
        convert_gguf(path, tmp_path / "b", dtype="float16")
    bogus = tmp_path / "bogus.gguf"
    bogus.write_bytes(b"GGUF but not really" * 10)
    with pytest.raises(ModelError, match=r"bogus\.gguf: cannot be read"):
        convert_gguf(bogus, tmp_path / "c")
