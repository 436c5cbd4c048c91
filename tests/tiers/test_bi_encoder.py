"""The bi-encoder tier: cosine similarity through an ordered-logit map, item vectors shared with the
dense mining channel's cache, and its fitting by finetune-tiers."""

from __future__ import annotations

import numpy as np
import pytest

from relforge.config import ModelsConfig, TierSpec
from relforge.errors import ModelError
from relforge.finetune import GradedPairs, cut_points, save_bi_encoder, train_bi_encoder
from relforge.grades import ESCI
from relforge.tiers import (
    BiEncoder,
    BiEncoderScorer,
    EmbeddingCache,
    Pair,
    ProbeHead,
    load_encoder,
    load_scorer,
    model_fingerprint,
)
from tests.tiny_models import cached, tiny_bi_encoder

TEXTS = ["red running shoes for men", "usb cable for phone", "coffee maker, steel", "blue cotton shirt", "!!!"]


@pytest.fixture(scope="module")
def base(tier_models):
    return cached(tier_models, tiny_bi_encoder, "bi-base")


def _tier(base, tmp_path, weight=4.0):
    head = ProbeHead("ordinal", np.array([0.5]), np.array([0.2]), np.array([[weight]]), np.array([1.0, 0.0, -1.0]))
    return save_bi_encoder(tmp_path / "tier0", head, ESCI, str(base), max_length=32)


def test_probabilities_follow_the_cosine_in_grade_order(base, tmp_path):
    scorer = BiEncoderScorer(_tier(base, tmp_path), ESCI, models=ModelsConfig(cache_dir=tmp_path / "cache"))
    pairs = [Pair("red shoes", t) for t in TEXTS[:4]] + [Pair("red shoes", "red shoes")]
    scores = scorer.score(pairs)
    assert scores.probs.shape == (5, 4) and not scores.failed.any() and (scores.cost > 0).all()
    np.testing.assert_allclose(scores.probs.sum(axis=1), 1.0, atol=1e-5)
    cos = scorer.encoder.cosines(pairs)
    expected_grade = (scores.probs * np.arange(4)).sum(axis=1)
    order = np.argsort(cos)
    assert np.all(np.diff(expected_grade[order]) >= -1e-6)  # a higher cosine never means a lower expected grade
    assert scores.grades[-1] == 3  # identical texts: cosine 1, the top grade


def test_the_tier_reads_the_item_vectors_the_dense_channel_cached(base, tmp_path, monkeypatch):
    cache_dir = tmp_path / "cache"
    folder = _tier(base, tmp_path)
    # what the dense channel stores: the catalog's items with words, keyed by encoder and texts
    cache = EmbeddingCache(cache_dir / "embeddings", model_fingerprint(base, 32))
    positions, key = cache.items_key(TEXTS)
    assert positions.tolist() == [0, 1, 2, 3]  # "!!!" has no words
    stored = load_encoder(base, max_seq_length=32)([TEXTS[i] for i in positions])
    cache.save(key, stored * 0 + stored[0])  # every item vector made identical: visible if read
    scorer = BiEncoderScorer(folder, ESCI, models=ModelsConfig(cache_dir=cache_dir))
    scorer.prepare_items(TEXTS)
    encoded = []
    real = scorer.encoder.encode
    monkeypatch.setattr(scorer.encoder, "encode", lambda texts: encoded.extend(texts) or real(texts))
    cos = scorer.encoder.cosines([Pair("shoes", TEXTS[1]), Pair("shoes", TEXTS[2])])
    assert cos[0] == pytest.approx(cos[1])  # both read the (doctored) cached vector
    assert encoded == ["shoes"]  # only the query was encoded


def test_items_to_encode_are_encoded_once_before_scoring_when_the_catalog_is_not_cached(base, tmp_path, monkeypatch):
    folder = _tier(base, tmp_path)
    scorer = BiEncoderScorer(folder, ESCI, models=ModelsConfig(cache_dir=tmp_path / "cache"))
    encoded = []
    real = scorer.encoder.encode
    monkeypatch.setattr(scorer.encoder, "encode", lambda texts: encoded.extend(texts) or real(texts))
    scorer.prepare_items(TEXTS, encode=[TEXTS[1], TEXTS[2], TEXTS[1]])
    assert sorted(encoded) == sorted([TEXTS[1], TEXTS[2]]) and scorer.prepare_seconds > 0  # once each, apart
    encoded.clear()
    pairs = [Pair("shoes", TEXTS[1]), Pair("shoes", TEXTS[2]), Pair("boots", TEXTS[1])]
    scores = scorer.score(pairs)
    assert not scores.failed.any() and sorted(encoded) == ["boots", "shoes"]  # pairs pay for their queries only
    fresh = BiEncoderScorer(folder, ESCI, models=ModelsConfig(cache_dir=tmp_path / "cache"))
    np.testing.assert_allclose(scores.probs, fresh.score(pairs).probs, atol=1e-5)  # same scores as encoding per pair
    # with the catalog cached (as the dense channel leaves it), nothing is encoded ahead
    cache = EmbeddingCache(tmp_path / "cache" / "embeddings", model_fingerprint(base, 32))
    positions, key = cache.items_key(TEXTS)
    cache.save(key, real([TEXTS[i] for i in positions]))
    encoded.clear()
    scorer.prepare_items(TEXTS, encode=[TEXTS[3]])
    assert encoded == [] and scorer.encoder._matrix is not None


def test_load_scorer_builds_it_and_refuses_a_folder_without_its_map(base, tmp_path):
    spec = TierSpec(name="tier0", backend="bi-encoder", model=str(_tier(base, tmp_path)))
    scorer = load_scorer(spec, ESCI, ModelsConfig(cache_dir=tmp_path / "cache"))
    assert isinstance(scorer, BiEncoderScorer) and scorer.encoder.max_length == 32
    with pytest.raises(ModelError, match="not a bi-encoder tier folder"):
        load_scorer(TierSpec(name="tier0", backend="bi-encoder", model=str(base)), ESCI,
                    ModelsConfig(cache_dir=tmp_path / "cache"))
    with pytest.raises(ModelError, match="bi-encoder tier model"):
        load_scorer(spec.model_copy(update={"backend": "causal-lm"}), ESCI, ModelsConfig(cache_dir=tmp_path / "cache"))


def test_finetune_fits_an_ordered_logit_map_on_the_cosine(base, tmp_path):
    from relforge.config import FinetuneConfig

    rng = np.random.default_rng(0)
    # grade = how much of the query the item repeats: the cosine carries the signal
    queries = ["red running shoes", "usb cable charger", "coffee maker steel", "blue cotton shirt"]
    noise = ["novel", "toy car", "desk lamp", "camera lens", "rain jacket", "water bottle"]
    rows = []
    for i in range(160):
        q = queries[i % 4]
        grade = int(rng.integers(0, 4))
        words = q.split()[: grade] + list(rng.choice(noise, 3 - min(grade, 3), replace=False))
        rows.append((f"q{i % 4}", f"i{i}", q, " ".join(words), grade))
    cols = list(zip(*rows))
    pairs = GradedPairs(*(np.asarray(c, dtype=object) for c in cols[:4]), grade=np.asarray(cols[4], dtype=np.int8))
    train, calib = pairs.subset(np.arange(120)), pairs.subset(np.arange(120, 160))
    report = train_bi_encoder(base, train, calib, tmp_path / "fitted", ESCI, FinetuneConfig(probe_l2=[0.1]),
                              cache_dir=tmp_path / "cache", max_length=32)
    assert report["mode"] == "bi-encoder" and report["train_pairs"] == 120
    cuts = report["cut_points"]
    assert cuts == sorted(cuts)  # ordered cut points on the cosine scale
    head = ProbeHead.load(tmp_path / "fitted")
    assert head.head == "ordinal" and head.weight.shape == (1, 1) and head.weight[0, 0] > 0
    assert cut_points(head) == pytest.approx(cuts)
    scorer = BiEncoderScorer(tmp_path / "fitted", ESCI, models=ModelsConfig(cache_dir=tmp_path / "cache"))
    assert scorer.score(calib.pairs()).probs.shape == (40, 4)
    assert BiEncoder(base, max_length=32).cosines([]).shape == (0,)
