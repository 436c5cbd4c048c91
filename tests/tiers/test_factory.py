"""`load_scorer`: a tier's scorer from its configuration."""

from __future__ import annotations

import pytest

from relforge.config import ModelsConfig, TierSpec, load_config
from relforge.errors import ConfigError, ModelError
from relforge.grades import ESCI
from relforge.tiers import (
    CausalLMScorer,
    CrossEncoderScorer,
    OpenAIScorer,
    Pair,
    TGIScorer,
    load_scorer,
)


def test_local_backends_from_the_configuration(ce_ordinal_dir, llama_dir):
    cfg = load_config(overrides=[
        f"tiers.specs.tier1.model={ce_ordinal_dir}",
        f"tiers.specs.tier2.model={llama_dir}",
        "tiers.specs.tier2.batch_size=2",
        "tiers.specs.tier2.max_length=200",
    ])
    with load_scorer(cfg.tiers.spec("tier1"), ESCI, cfg.models) as tier1:
        assert isinstance(tier1, CrossEncoderScorer) and tier1.head == "ordinal"
        assert tier1.batch_size == 32 and tier1.name == str(ce_ordinal_dir)
        assert not tier1.score([Pair("usb", "cable")]).failed.any()
    with load_scorer(cfg.tiers.spec("tier2"), ESCI, cfg.models) as tier2:
        assert isinstance(tier2, CausalLMScorer)
        assert (tier2.batch_size, tier2.max_length) == (2, 200)


def test_the_model_defaults_to_the_models_section(llama_dir):
    spec = TierSpec(name="tier3", backend="causal-lm")
    scorer = load_scorer(spec, ESCI, ModelsConfig(tier3=str(llama_dir)))
    assert isinstance(scorer, CausalLMScorer) and scorer.name == str(llama_dir)


def test_remote_backends_take_the_tokenizer_from_the_model_folder(llama_dir):
    openai = load_scorer(TierSpec(name="t", backend="openai", model=str(llama_dir), url="http://127.0.0.1:9/v1",
                                  max_concurrency=3, retries=1, timeout_s=2.0, cost_per_request=0.1), ESCI)
    assert isinstance(openai, OpenAIScorer)
    assert openai.top_n == 20 and openai.base == "http://127.0.0.1:9"
    assert (openai.policy.max_concurrency, openai.policy.retries, openai.policy.timeout_s) == (3, 1, 2.0)
    assert openai.cost_per_request == 0.1
    assert openai.grade_texts == ["0", "1", "2", "3"]
    openai.close()
    tgi = load_scorer(TierSpec(name="t", backend="tgi", model=str(llama_dir), url="http://127.0.0.1:9"), ESCI)
    assert isinstance(tgi, TGIScorer) and tgi.top_n == 5
    tgi = load_scorer(TierSpec(name="t", backend="tgi", model=str(llama_dir), url="http://x", top_n=3), ESCI)
    assert tgi.top_n == 3


def test_no_model_is_a_config_error():
    with pytest.raises(ConfigError, match="tier `tier9`: no model"):
        load_scorer(TierSpec(name="tier9", backend="causal-lm"), ESCI, ModelsConfig())


def test_a_model_of_the_wrong_kind_is_a_model_error(ce_softmax_dir, llama_dir):
    with pytest.raises(ModelError, match="a cross-encoder, but tier `t` uses the `causal-lm` backend"):
        load_scorer(TierSpec(name="t", backend="causal-lm", model=str(ce_softmax_dir)), ESCI)
    with pytest.raises(ModelError, match="a causal LM .*LlamaForCausalLM.*, not a cross-encoder"):
        load_scorer(TierSpec(name="t", backend="cross-encoder", model=str(llama_dir)), ESCI)


def test_an_unknown_reference_goes_through_resolve_model(tmp_path):
    with pytest.raises(ModelError):
        load_scorer(TierSpec(name="t", backend="causal-lm", model=str(tmp_path / "missing")), ESCI,
                    ModelsConfig(cache_dir=tmp_path / "cache"))


def test_the_configuration_checks_tier_specs():
    with pytest.raises(ConfigError, match="needs a url"):
        load_config(overrides=["tiers.specs.tier2.backend=openai"])
    with pytest.raises(ConfigError, match=r"tiers \['tier4'\] have no entry"):
        load_config(overrides=["tiers.names=[tier1, tier4]"])
    cfg = load_config(overrides=["tiers.specs.tier2.backend=tgi", "tiers.specs.tier2.url=http://tgi:8080"])
    assert cfg.tiers.backends == ["bi-encoder", "cross-encoder", "tgi", "causal-lm"]
    assert cfg.tiers.spec("tier2").url == "http://tgi:8080" and cfg.tiers.spec("tier1").batch_size == 32
    with pytest.raises(ConfigError, match="no tier `nope`"):
        cfg.tiers.spec("nope")
