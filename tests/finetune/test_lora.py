"""LoRA on the grade token (tiny Llama): adapter and merged model saved, merged model scores."""

from __future__ import annotations

import json

import numpy as np
import torch

from relforge.config import FinetuneConfig
from relforge.finetune import finetune_lora, grade_examples
from relforge.grades import ESCI
from relforge.tiers import CausalLMScorer, TierDescriptor, grade_token_ids, load_tokenizer
from relforge.tiers._causal_lm import prompt_for
from tests.finetune.conftest import synthetic_pairs

FAST = {"lora_epochs": 2, "lora_learning_rate": 5e-3, "lora_eval_steps": 4, "lora_batch_size": 8, "lora_grad_accum": 1,
            "llm_max_length": 96, "lora_r": 4, "lora_alpha": 8}


def test_examples_label_only_the_grade_token(llama_base):
    tok = load_tokenizer(llama_base)
    ids = grade_token_ids(tok, ESCI, prompt_for(llama_base, ESCI))
    pairs = synthetic_pairs(5, seed=1)
    ds, skipped = grade_examples(tok, ESCI, prompt_for(llama_base, ESCI), pairs, ids, 96)
    assert skipped == 0 and len(ds) == 5
    for row, grade in zip(ds, pairs.grade):
        labelled = [t for t in row["labels"] if t != -100]
        assert labelled == [ids[grade]] and row["labels"][-1] == row["input_ids"][-1] == ids[grade]
        assert len(row["input_ids"]) <= 96


def test_lora_saves_adapter_and_a_merged_model_that_scores(llama_base, tmp_path):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    train, calib = synthetic_pairs(64, seed=1), synthetic_pairs(16, seed=2)
    out = tmp_path / "tier2"
    report = finetune_lora(llama_base, train, calib, out, ESCI, FinetuneConfig(**FAST), base_ref="tiny-llama")
    assert report["calib_loss_best"] < report["calib_loss_before"]
    assert 0 < report["trainable_parameters"] < report["parameters"] / 5
    assert (out / "adapter" / "adapter_config.json").is_file() and (out / "adapter" / "adapter_model.safetensors").is_file()
    assert json.loads((out / "adapter" / "adapter_config.json").read_text())["r"] == 4
    d = TierDescriptor.load(out)
    assert (d.backend, d.head, d.base_model) == ("causal-lm", "grade-tokens", "tiny-llama")
    # the merged folder is a plain causal LM folder that the causal-lm backend reads
    test = synthetic_pairs(12, seed=3)
    merged = CausalLMScorer(out, ESCI, max_length=96).score(test.pairs())
    assert np.allclose(merged.probs.sum(1), 1, atol=1e-5) and not merged.failed.any()
    base = CausalLMScorer(llama_base, ESCI, max_length=96).score(test.pairs())
    assert not np.allclose(merged.probs, base.probs, atol=1e-3)  # training changed the model
    # ... and it equals the base model with the adapter applied
    scorer = CausalLMScorer(llama_base, ESCI, max_length=96)
    scorer.lm.model = PeftModel.from_pretrained(
        AutoModelForCausalLM.from_pretrained(str(llama_base), dtype=torch.float32), str(out / "adapter")
    ).eval()
    with_adapter = scorer.score(test.pairs())
    assert np.allclose(with_adapter.probs, merged.probs, atol=1e-4)
