"""The `causal-lm` backend on a tiny Llama: grade-token probabilities, batching, prompt checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import yaml
from transformers import AutoModelForCausalLM

from relforge.errors import ModelError
from relforge.grades import ESCI, GradeScale
from relforge.tiers import CausalLMScorer, Pair, load_prompt, render_prompt


def _reference_probs(folder, tokenizer, pairs, scale=ESCI) -> np.ndarray:
    """Next-token probabilities of the grade digits, one unpadded prompt at a time."""
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    grade_ids = [tokenizer.convert_tokens_to_ids(t) for t in load_prompt(scale.name).grade_tokens]
    rows = []
    with torch.no_grad():
        for p in pairs:
            ids = tokenizer(render_prompt(tokenizer, scale, p.query, p.text), add_special_tokens=False)["input_ids"]
            probs = torch.softmax(model(torch.tensor([ids])).logits[0, -1], dim=-1)
            grade = probs[grade_ids]
            rows.append((grade / grade.sum()).numpy())
    return np.stack(rows)


def test_probabilities_are_the_renormalised_next_token_probabilities(llama_dir, llama_tokenizer, pairs):
    scores = CausalLMScorer(llama_dir, ESCI, batch_size=3).score(pairs)
    assert scores.probs.shape == (len(pairs), ESCI.n)
    np.testing.assert_allclose(scores.probs.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(scores.probs, _reference_probs(llama_dir, llama_tokenizer, pairs), atol=1e-4)
    assert not scores.failed.any()
    assert (scores.cost > 0).all()


def test_left_padded_batches_match_single_prompts(llama_dir, pairs):
    """Prompts of different lengths share a batch (left padding, explicit positions)."""
    batched = CausalLMScorer(llama_dir, ESCI, batch_size=len(pairs)).score(pairs)
    single = CausalLMScorer(llama_dir, ESCI, batch_size=1).score(pairs)
    np.testing.assert_allclose(batched.probs, single.probs, atol=1e-4)


def test_the_chat_template_is_used_where_the_model_has_one(llama_dir, llama_plain_dir):
    with_template = CausalLMScorer(llama_dir, ESCI)
    plain = CausalLMScorer(llama_plain_dir, ESCI)
    text = render_prompt(with_template.tokenizer, ESCI, "q", "d")
    assert text.startswith("<|im_start|>system\n") and text.endswith("<|im_start|>assistant\n")
    plain_text = render_prompt(plain.tokenizer, ESCI, "q", "d")
    assert "<|im_start|>" not in plain_text and plain_text.endswith("Answer: ")
    assert not plain.score([Pair("usb cable", "phone charger")]).failed.any()


def test_a_grade_token_that_is_not_one_token_is_a_clear_error(llama_dir, tmp_path):
    prompt = load_prompt.__wrapped__("esci").model_dump()
    prompt["grade_tokens"] = ["0", "1", "2", "Exactly-matching"]
    path = tmp_path / "prompt.yaml"
    path.write_text(yaml.safe_dump(prompt))
    with pytest.raises(ModelError, match="'Exactly-matching' .*grade `Exact`.* tokens for this tokenizer"):
        CausalLMScorer(llama_dir, ESCI, prompt=str(path))


def test_grade_tokens_that_collide_are_a_clear_error(llama_dir, tmp_path):
    prompt = load_prompt.__wrapped__("esci").model_dump()
    prompt["grade_tokens"] = ["0", "1", "1", "3"]
    path = tmp_path / "prompt.yaml"
    path.write_text(yaml.safe_dump(prompt))
    with pytest.raises(ModelError, match="colliding token ids"):
        CausalLMScorer(llama_dir, ESCI, prompt=str(path))


def test_a_prompt_for_another_number_of_grades_is_refused(llama_dir):
    five = GradeScale.from_names(["a", "b", "c", "d", "e"])  # the default prompt has 3 grade tokens
    with pytest.raises(ModelError, match="3 grade tokens"):
        CausalLMScorer(llama_dir, five).score([Pair("q", "d")])


def test_long_items_and_queries_are_cut_to_max_length_and_the_answer_position_is_kept(llama_dir):
    scorer = CausalLMScorer(llama_dir, ESCI, max_length=140)
    long_item = "trail running shoes for men, red, size medium " * 40
    long_query = "red running shoes " * 80
    pairs = [Pair("red shoes", long_item), Pair(long_query, "shoes"), Pair("usb", "cable")]
    scores = scorer.score(pairs)
    assert not scores.failed.any()
    np.testing.assert_allclose(scores.probs.sum(axis=1), 1.0, atol=1e-5)
    builder = scorer.lm.builder
    for p in pairs:
        ids = builder.ids(p.query, p.text)
        assert len(ids) <= 140
        assert builder.text(p.query, p.text).endswith("<|im_start|>assistant\n")  # the cut is never at the answer
    # a query is cut to max_query_tokens, so that it never crowds out the item
    suffix = builder.suffix_text(long_query, "shoes")
    assert suffix.count("running") < 80 and "Product: shoes" in suffix


def test_a_max_length_that_leaves_no_room_for_the_pair_is_a_clear_error(llama_dir):
    with pytest.raises(ModelError, match="leaves no room for a query and an item under max_length=60"):
        CausalLMScorer(llama_dir, ESCI, max_length=60)
