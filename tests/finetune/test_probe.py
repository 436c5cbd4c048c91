"""The probe: features of a frozen LLM, a softmax or CORAL head, and its scorer."""

from __future__ import annotations

import numpy as np
import pytest

from relforge.config import FinetuneConfig
from relforge.errors import ModelError
from relforge.finetune import FeatureCache, fit_probe_head, select_probe_head, train_probe
from relforge.grades import ESCI
from relforge.tiers import (
    CausalLMScorer,
    Pair,
    ProbeHead,
    ProbeScorer,
    PromptEncoder,
    TierDescriptor,
)
from tests.finetune.conftest import synthetic_pairs


def _ordered_features(n: int, seed: int):
    """4 grades along one direction of a 16-d space, plus noise."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, n)
    x = rng.normal(size=(n, 16))
    x[:, 3] += 4.0 * y
    return x, y


@pytest.mark.parametrize("head", ["softmax", "ordinal"])
def test_heads_learn_and_round_trip(tmp_path, head):
    x, y = _ordered_features(400, 0)
    xt, yt = _ordered_features(200, 1)
    fitted = fit_probe_head(x, y, 4, head=head, l2=0.01)
    probs = fitted.probs(xt)
    assert probs.shape == (200, 4) and np.allclose(probs.sum(1), 1, atol=1e-5) and (probs >= 0).all()
    assert (probs.argmax(1) == yt).mean() > 0.75
    if head == "ordinal":
        assert fitted.weight.shape == (1, 16) and fitted.bias.shape == (3,)
    fitted.save(tmp_path)
    loaded = ProbeHead.load(tmp_path)
    assert loaded.head == head and np.allclose(loaded.probs(xt), probs, atol=1e-5)


def test_ordinal_head_makes_fewer_far_errors_than_softmax_when_middle_grades_are_rare():
    """The CORAL head shares one direction: with rare middle grades it orders the grades better.

    Averaged over 8 draws (on a single draw either head can come out ahead by chance).
    """
    far = {"softmax": [], "ordinal": []}
    for seed in range(8):
        rng = np.random.default_rng(seed)
        p = [0.45, 0.03, 0.07, 0.45]
        y, yt = rng.choice(4, size=300, p=p), rng.choice(4, size=400, p=p)
        x, xt = rng.normal(size=(300, 40)), rng.normal(size=(400, 40))
        x[:, 0] += 1.5 * y
        xt[:, 0] += 1.5 * yt
        for head, rates in far.items():
            pred = fit_probe_head(x, y, 4, head=head, l2=0.001).probs(xt).argmax(1)
            rates.append(float(np.mean(np.abs(pred - yt) >= 2)))
    assert np.mean(far["ordinal"]) < np.mean(far["softmax"]) - 0.005, far


def test_unseen_grade_gets_no_probability():
    x, y = _ordered_features(200, 2)
    keep = y != 1
    head = fit_probe_head(x[keep], y[keep], 4, head="softmax", l2=0.1)
    assert head.probs(x)[:, 1].max() < 1e-6


def test_selection_on_calib_picks_the_best_l2():
    x, y = _ordered_features(300, 4)
    xc, yc = _ordered_features(100, 5)
    _best, report = select_probe_head(x, y, xc, yc, 4, "softmax", [1e-3, 1e3], metric="accuracy")
    tried = {t["l2"]: t["accuracy"] for t in report["tried"]}
    assert report["l2"] == max(tried, key=tried.get) and tried[1e-3] > tried[1e3]


def test_encoder_features_and_zero_shot_logits_match_the_causal_lm(llama_base):
    pairs = synthetic_pairs(6, seed=1).pairs()
    enc = PromptEncoder(llama_base, ESCI, layers=[1, 2], max_length=96, batch_size=4)
    out = enc.encode(pairs)
    assert set(enc.keys) == {"last-token@1", "mean@1", "last-token@2", "mean@2"}
    assert out["last-token@2"].shape == (6, 128) and (out["seconds"] > 0).all() and not out["failed"].any()
    # the grade logits are the causal-lm tier's zero-shot scores
    zero_shot = CausalLMScorer(llama_base, ESCI, max_length=96).score(pairs).probs
    e = np.exp(out["grade_logits"] - out["grade_logits"].max(1, keepdims=True))
    assert np.allclose(e / e.sum(1, keepdims=True), zero_shot, atol=1e-4)
    # batch composition (padding) changes neither pooling: each pair alone gives the same features
    for i in (0, 5):
        alone = enc.encode(pairs[i : i + 1])
        for key in ("last-token@2", "mean@1", "mean@2"):
            assert np.allclose(alone[key][0], out[key][i], atol=1e-4), key


def test_feature_cache_encodes_each_pair_once(llama_base, tmp_path, monkeypatch):
    enc = PromptEncoder(llama_base, ESCI, layers=[2], max_length=96)
    cache = FeatureCache(tmp_path)
    pairs = synthetic_pairs(8, seed=2).pairs()
    first = cache.get(enc, pairs[:5])
    calls = []
    original = enc.encode
    monkeypatch.setattr(enc, "encode", lambda p, d=None: calls.append(len(p)) or original(p, d))
    both = cache.get(enc, pairs)
    assert calls == [3]
    assert np.allclose(both["last-token@2"][:5], first["last-token@2"])
    cache.get(enc, list(reversed(pairs)))
    assert calls == [3]


@pytest.mark.parametrize("head", ["softmax", "ordinal"])
def test_train_probe_writes_a_tier_whose_scorer_returns_valid_scores(llama_base, tmp_path, head):
    train, calib, test = synthetic_pairs(96, 1), synthetic_pairs(32, 2), synthetic_pairs(24, 3)
    cfg = FinetuneConfig(head=head, llm_max_length=96, probe_l2=[0.01, 1.0])
    out = tmp_path / "probe"
    report = train_probe(llama_base, train.pairs(), train.grade, calib.pairs(), calib.grade, out, ESCI, cfg,
                         cache_dir=tmp_path / "cache", base_ref=str(llama_base))
    assert (report["layer"], report["n_layers"], report["pooling"]) == (1, 2, "mean") and report["l2"] in (0.01, 1.0)
    assert report["calib_best"]["accuracy"] > 0.8  # the colour is in the hidden state
    d = TierDescriptor.load(out)
    assert d.backend == "probe" and d.head == head and d.base_model == str(llama_base)
    scorer = ProbeScorer(out, ESCI)
    scores = scorer.score(test.pairs() + [Pair("red shoes", "red shoes " * 200)])
    assert scores.probs.shape == (25, 4) and np.allclose(scores.probs.sum(1), 1, atol=1e-5)
    assert not scores.failed.any() and (scores.cost > 0).all()  # long items are cut to fit
    assert (scores.grades[:24] == test.grade).mean() > 0.8
    # the tier factory hands a probe folder of a causal-lm tier to the probe scorer
    from relforge.config import TierSpec
    from relforge.tiers import load_scorer

    loaded = load_scorer(TierSpec(name="tier2", backend="causal-lm", model=str(out)), ESCI)
    assert isinstance(loaded, ProbeScorer)
    assert np.allclose(loaded.score(test.pairs()[:4]).probs, scores.probs[:4], atol=1e-5)
    with pytest.raises(ModelError, match="probe"):
        load_scorer(TierSpec(name="tier2", backend="cross-encoder", model=str(out)), ESCI)


def test_a_torch_error_fails_its_batch_and_the_other_batches_are_scored(llama_base, tmp_path, monkeypatch):
    train, calib = synthetic_pairs(48, 1), synthetic_pairs(16, 2)
    cfg = FinetuneConfig(llm_max_length=96, probe_l2=[0.1])
    out = tmp_path / "probe"
    train_probe(llama_base, train.pairs(), train.grade, calib.pairs(), calib.grade, out, ESCI, cfg,
                cache_dir=tmp_path / "cache", base_ref=str(llama_base))
    scorer = ProbeScorer(out, ESCI, batch_size=4)
    original, calls = scorer.encoder.lm.timed_forward, []

    def out_of_memory_once(suffixes, **kwargs):
        calls.append(len(suffixes))
        if len(calls) == 2:
            raise RuntimeError("CPU out of memory (simulated)")
        return original(suffixes, **kwargs)

    monkeypatch.setattr(scorer.encoder.lm, "timed_forward", out_of_memory_once)
    scores = scorer.score(synthetic_pairs(12, 3).pairs())
    assert calls == [4, 4, 4]
    assert scores.failed.sum() == 4 and np.isnan(scores.probs[scores.failed]).all()
    assert np.allclose(scores.probs[~scores.failed].sum(1), 1, atol=1e-5)
    assert all(e for e, f in zip(scores.errors, scores.failed) if f)


def test_probe_scorer_refuses_foreign_folders(llama_base, tmp_path):
    with pytest.raises(ModelError, match="not a probe folder"):
        ProbeScorer(llama_base, ESCI)


def test_feature_cache_saves_chunk_by_chunk(llama_base, tmp_path, monkeypatch):
    enc = PromptEncoder(llama_base, ESCI, layers=[2], max_length=96)
    cache = FeatureCache(tmp_path)
    pairs = synthetic_pairs(5, seed=4).pairs()
    calls = []
    original = enc.encode

    def failing_after_two(p, d=None):
        calls.append(len(p))
        if len(calls) == 3:
            raise KeyboardInterrupt
        return original(p, d)

    monkeypatch.setattr(enc, "encode", failing_after_two)
    with pytest.raises(KeyboardInterrupt):
        cache.get(enc, pairs, chunk=2)
    assert calls == [2, 2, 1]
    monkeypatch.setattr(enc, "encode", lambda p, d=None: calls.append(len(p)) or original(p, d))
    out = cache.get(enc, pairs, chunk=2)  # the two saved chunks are kept: only the last pair is encoded
    assert calls[3:] == [1] and out["last-token@2"].shape == (5, 128)
