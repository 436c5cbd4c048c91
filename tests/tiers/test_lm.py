"""The one forward pass of a local LLM tier: the shared prefix's cache, right-padded suffixes
and the early exit give what a plain, unpadded, full forward pass of each prompt gives."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from transformers import AutoModelForCausalLM

from relforge.grades import ESCI
from relforge.tiers import PromptedLM, feature_key

LONG_ITEM = "trail running shoes | acme | red | " + "light mesh upper, cushioned sole, grippy outsole " * 6


def _reference(folder, lm: PromptedLM, pairs, layers):
    """Per pair, alone and unpadded: the grade logits and every layer's mean and last-token state."""
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    rows = []
    with torch.no_grad():
        for p in pairs:
            ids = torch.tensor([lm.builder.ids(p.query, p.text)])
            out = model(ids, output_hidden_states=True)
            row = {"grade_logits": out.logits[0, -1, lm.grade_ids].numpy()}
            for layer in layers:
                h = out.hidden_states[layer][0]
                row[feature_key("mean", layer)] = h.mean(0).numpy()
                row[feature_key("last-token", layer)] = h[-1].numpy()
            rows.append(row)
    return {k: np.stack([r[k] for r in rows]) for k in rows[0]}


@pytest.mark.parametrize("model", ["llama_dir", "gemma_dir"])
def test_cached_prefix_right_padding_and_early_exit_match_plain_forward_passes(model, pairs, request):
    folder = request.getfixturevalue(model)
    pairs = [*pairs, type(pairs[0])("red running shoes", LONG_ITEM)]
    lm = PromptedLM(folder, ESCI, max_length=120, device="cpu", dtype="float32")
    n = lm.n_layers
    layers = [0, 1, n // 2, n]
    suffixes = [lm.builder.suffix_ids(p.query, p.text) for p in pairs]
    assert len({len(s) for s in suffixes}) > 2, "the batch must mix lengths (padding)"
    full = lm.forward(suffixes, layers=layers, logits=True)
    reference = _reference(folder, lm, pairs, layers)
    for key, expected in reference.items():
        np.testing.assert_allclose(full[key], expected, atol=2e-4, rtol=1e-4, err_msg=key)
    # stopping after the layer a probe reads gives the same features as the full pass
    early = lm.forward(suffixes, layers=[n // 2], poolings=["mean"], logits=False)
    np.testing.assert_allclose(early[feature_key("mean", n // 2)], full[feature_key("mean", n // 2)], atol=1e-5)
    assert "grade_logits" not in early


def test_the_prefix_is_computed_once_per_model(llama_dir, pairs):
    lm = PromptedLM(llama_dir, ESCI, device="cpu", dtype="float32")
    suffixes = [lm.builder.suffix_ids(p.query, p.text) for p in pairs]
    first = lm.forward(suffixes[:3], layers=[1])
    cache = lm._prefix
    second = lm.forward(suffixes[:3], layers=[1])
    assert lm._prefix is cache  # reused, and not grown by the batches run on it
    np.testing.assert_allclose(first["grade_logits"], second["grade_logits"], atol=1e-6)
    assert cache[0].get_seq_length() == lm.prefix_length


def test_every_prompt_fits_max_length_and_starts_with_the_shared_prefix(llama_dir):
    lm = PromptedLM(llama_dir, ESCI, max_length=160, device="cpu", dtype="float32")
    ids = lm.builder.ids("red running shoes", LONG_ITEM)
    assert 140 <= len(ids) <= 160  # the budget is used, and never exceeded
    assert ids[: lm.prefix_length] == lm.builder.prefix_ids
    # the title and brand survive the cut; the long description is what gets shortened
    text = lm.builder.suffix_text("red running shoes", LONG_ITEM)
    assert "trail running shoes | acme | red" in text and text.count("grippy outsole") < 6
