"""Fixtures of the mining tests: a small synthetic catalog with odd items, queries with odd
queries, human judgments, and a tiny sentence-transformers bi-encoder built here."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from relforge.config import RelforgeConfig
from tests.tiny_models import cached, word_vocab

#: (item_id, title, text). Odd ones: i13 and i14 non-Latin, i15 with an empty description
#: (its text is the title alone), i16 with no letter or digit at all.
ITEMS = [
    ("i01", "Red running shoes", "Red running shoes for men. Trail running, light and fast."),
    ("i02", "Trail running shoe", "Trail running shoe for women, blue. Grippy sole."),
    ("i03", "Cotton T-Shirt", "Cotton t-shirt, white, size medium."),
    ("i04", "Kids tshirt", "Organic cotton tshirt for kids, green."),
    ("i05", "Steel water bottle", "Stainless steel water bottle, 1 litre, keeps drinks cold."),
    ("i06", "Glass bottle", "Glass water bottle with a silicone sleeve."),
    ("i07", "Wireless headphones", "Wireless headphones with a USB charger and a carry case."),
    ("i08", "USB-C cable", "USB-C charging cable, 2 m, braided."),
    ("i09", "Coffee maker", "Coffee maker with a steel mug, 12 cups."),
    ("i10", "Kitchen knife set", "Kitchen knife set, 6 pieces, with a wooden block."),
    ("i11", "Desk lamp", "Desk lamp with LED light, dimmable."),
    ("i12", "Camera tripod", "Camera tripod, aluminium, for phone and camera."),
    ("i13", "Паровой утюг", "Паровой утюг Philips, 2400 Вт."),
    ("i14", "東京タワー 模型", "東京タワー 模型 キット"),
    ("i15", "Phone case black", "Phone case black"),
    ("i16", "---", "--- !!! ..."),
    ("i17", "Notebook and pen", "Paper notebook with a pen, 100 pages."),
    ("i18", "Puzzle game", "Puzzle game, 1000 pieces, for adults."),
    ("i19", "Winter jacket", "Winter jacket for women, waterproof, rain hood."),
    ("i20", "Office chair", "Office chair with lumbar support, black."),
]

#: (query_id, query, split). Odd ones: q04 stop words only, q05 punctuation only, q06 non-Latin,
#: q07 the same text as q01.
QUERIES = [
    ("q01", "running shoes", "train"),
    ("q02", "tshirt", "train"),
    ("q03", "water bottles", "calib"),
    ("q04", "the and of", "test"),
    ("q05", "!!! ???", "unlabeled"),
    ("q06", "паровой утюг", "test"),
    ("q07", "running shoes", "unlabeled"),
    ("q08", "usb charger", "train"),
    ("q09", "coffee mug", "calib"),
    ("q10", "led desk lamp", "test"),
]

JUDGMENTS = [
    ("q01", "i01", 3),
    ("q01", "i02", 2),
    ("q01", "i19", 0),
    ("q02", "i03", 3),
    ("q02", "i04", 3),
    ("q03", "i05", 3),
    ("q03", "i06", 3),
    ("q08", "i08", 2),
    ("q08", "i07", 1),
    ("q09", "i09", 2),
    ("q10", "i11", 3),
    ("q10", "i20", 0),
]


def catalog_table(items=ITEMS) -> pa.Table:
    ids, titles, texts = zip(*items)
    return pa.table({"item_id": list(ids), "title": list(titles), "text": list(texts)})


def queries_table(queries=QUERIES) -> pa.Table:
    ids, texts, splits = zip(*queries)
    return pa.table({"query_id": list(ids), "query": list(texts), "split": list(splits)})


def judgments_table(rows=JUDGMENTS) -> pa.Table:
    q, i, g = zip(*rows)
    return pa.table(
        {"query_id": list(q), "item_id": list(i), "grade": pa.array(g, pa.int8()), "source": ["human"] * len(q)}
    )


def write_inputs(bus, items=ITEMS, queries=QUERIES, judgments=JUDGMENTS) -> None:
    """Commit catalog, queries and (when given) judgments, as ingest would."""
    bus.write_table("catalog", catalog_table(items))
    bus.write_table("queries", queries_table(queries))
    if judgments:
        bus.write_table("judgments", judgments_table(judgments))


def tiny_bi_encoder(folder: Path, hidden_size: int = 32, seed: int = 0) -> Path:
    """A tiny random BERT with mean pooling, saved as a sentence-transformers folder."""
    import torch
    from sentence_transformers import SentenceTransformer
    from sentence_transformers.sentence_transformer.modules import Pooling, Transformer
    from transformers import BertConfig, BertModel, BertTokenizer

    folder = Path(folder)
    bert = folder / "bert"
    bert.mkdir(parents=True, exist_ok=True)
    vocab = word_vocab()
    config = BertConfig(
        vocab_size=len(vocab),
        hidden_size=hidden_size,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=2 * hidden_size,
        max_position_embeddings=128,
    )
    torch.manual_seed(seed)
    BertModel(config).eval().save_pretrained(bert)
    BertTokenizer(vocab=vocab, do_lower_case=True, model_max_length=128).save_pretrained(bert)
    model = SentenceTransformer(
        modules=[Transformer(str(bert), max_seq_length=64), Pooling(hidden_size, "mean")], device="cpu"
    )
    out = folder / "st"
    model.save(str(out))
    return out


@pytest.fixture(scope="session")
def bi_encoder_dir(tmp_path_factory) -> Path:
    return cached(tmp_path_factory.getbasetemp(), tiny_bi_encoder, "mine-bi-encoder")


@pytest.fixture
def mine_config(bi_encoder_dir, tmp_path) -> RelforgeConfig:
    """Three channels with the tiny bi-encoder; top 5 per channel; 3 queries per shard."""
    config = RelforgeConfig()
    config.models.cache_dir = tmp_path / "cache"
    config.mine.dense_model = str(bi_encoder_dir)
    config.mine.top_k = 5
    config.mine.queries_per_shard = 3
    config.mine.random_negatives = 2
    return config
