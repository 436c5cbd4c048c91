"""A small shop run for the cold-start tests, tiny models (never downloaded), and a scripted generator.

The catalog has 48 items in 4 categories; an item's title is ``<colour> <kind> <material>`` and
its grade for a query on its kind is its colour (black 0, green 1, blue 2, red 3). The queries
(train 6 / calib 4 / test 2) are the kinds, judged on their items.

:class:`ScriptedGenerator` stands in for a generator model where a test needs to know what was
written (the filters, resumability): it answers each item with ``answer(title)``; the real
generation path (transformers ``generate`` on a tiny Llama, remote servers) is tested in
``test_generate.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from relforge.bus import DataBus
from relforge.config import RelforgeConfig, load_config
from relforge.grades import ESCI
from relforge.tiers import Generations, QueryGenerator, load_tokenizer
from tests.tiny_models import cached, tiny_bert_cross_encoder, tiny_llama

COLOURS = ["black", "green", "blue", "red"]
KINDS = ["shoes", "jacket", "lamp", "mug", "chair", "bag"]
MATERIALS = ["cotton", "steel", "glass", "paper"]
CATEGORIES = {"shoes": "Shoes", "jacket": "Clothing", "lamp": "Home", "mug": "Kitchen", "chair": "Home",
              "bag": "Clothing"}
SPLITS = [("train", 6), ("calib", 4), ("test", 2)]


def write_shop(bus: DataBus, queries: bool = True, judgments: bool = True) -> DataBus:
    """catalog (with ``category``), queries and judgments, with the ESCI scale as metadata."""
    items = []
    for k, kind in enumerate(KINDS):
        for c, colour in enumerate(COLOURS):
            for m in (k % 2, 2 + k % 2):
                title = f"{colour} {kind} {MATERIALS[m]}"
                items.append({"item_id": f"{kind}-{colour}-{m}", "title": title, "category": CATEGORIES[kind],
                              "text": f"{title} | acme | {colour} | {CATEGORIES[kind]}"})
    meta = {"grade_scale": ESCI.model_dump()}
    bus.write_table("catalog", pa.Table.from_pylist(items), metadata=meta)
    rows, judged = [], []
    q = 0
    for split, count in SPLITS:
        for _ in range(count):
            kind = KINDS[q % len(KINDS)]
            rows.append({"query_id": f"q{q:02d}", "query": f"{kind} {'for men' if q >= 6 else ''}".strip(),
                         "split": split})
            for it in items:
                if it["item_id"].startswith(kind):
                    judged.append({"query_id": f"q{q:02d}", "item_id": it["item_id"],
                                   "grade": COLOURS.index(it["title"].split()[0]), "source": "human"})
            q += 1
    schema = pa.schema([("query_id", pa.string()), ("query", pa.string()), ("split", pa.string())])
    bus.write_table("queries", pa.Table.from_pylist(rows if queries else [], schema=schema), metadata=meta)
    j = pa.Table.from_pylist(judged if judgments else [], schema=pa.schema(
        [("query_id", pa.string()), ("item_id", pa.string()), ("grade", pa.int8()), ("source", pa.string())]))
    bus.write_table("judgments", j, metadata=meta)
    return bus


def default_answer(title: str) -> str:
    """``<kind> <colour>``: a query that finds its item (BM25) and copies no more than 2 of 3 title words."""
    colour, kind, _ = title.split()
    return f"{kind} {colour}"


class ScriptedGenerator(QueryGenerator):
    """Writes ``answer(title)`` for each item (``fail(title)``: the item's generation fails)."""

    backend = "scripted"

    def __init__(self, tokenizer, answer: Callable[[str], str] = default_answer,
                 fail: Callable[[str], bool] = lambda title: False, stop_after: int | None = None):
        super().__init__("scripted", tokenizer)
        self.answer, self.fail, self.stop_after = answer, fail, stop_after
        self.calls: list[list[str]] = []
        self.chats: list[list[dict]] = []

    def generate(self, chats: Sequence[list[dict]], n: int = 1, seed: int = 0) -> Generations:
        if self.stop_after is not None and len(self.calls) >= self.stop_after:
            raise KeyboardInterrupt("killed")  # a run killed between shards
        titles = [c[-1]["content"].split("\n", 1)[0].removeprefix("Product: ").split(" | ")[0] for c in chats]
        self.calls.append(titles)
        self.chats += list(chats)
        failed = np.array([self.fail(t) for t in titles])
        texts = [[] if f else [f"Query: {self.answer(t)}{'' if r == 0 else f' {r}'}" for r in range(n)]
                 for t, f in zip(titles, failed)]
        errors = ["HTTP 503: overloaded (after 4 request(s))" if f else None for f in failed]
        return Generations(texts, failed, np.full(len(chats), 0.5, dtype=np.float32), errors, seconds=0.01)


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Tiny models on a shared 2-core machine: one thread avoids oversubscription."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def cs_models(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("coldstart-models")
    return {
        "llama": cached(root, tiny_llama, "llama"),
        "bert": cached(root, tiny_bert_cross_encoder, "bert-base", head=None),
        "ce": cached(root, tiny_bert_cross_encoder, "ce-teacher", head="softmax", seed=2),  # grades vary
    }


@pytest.fixture
def shop(tmp_path) -> DataBus:
    return write_shop(DataBus(tmp_path / "run"))


def cs_config(models: dict[str, Path], cache: Path, *extra: str) -> RelforgeConfig:
    """Tiny tiers: tier3 a random cross-encoder (the teacher, `top`), tier2 the tiny Llama (the
    generator), tier1 the tiny BERT base (the student is made like it); fast settings."""
    return load_config(overrides=[
        "compute.threads=1", f"models.cache_dir={cache}",
        "tiers.names=[tier1, tier3]",
        f"tiers.specs.tier1.model={models['bert']}", "tiers.specs.tier1.max_length=32",
        f"tiers.specs.tier2.model={models['llama']}",
        f"tiers.specs.tier3.model={models['ce']}", "tiers.specs.tier3.backend=cross-encoder",
        "tiers.specs.tier3.max_length=32",
        "coldstart.items=24", "coldstart.items_per_shard=8", "coldstart.max_new_tokens=8",
        "coldstart.hard_negatives=3", "coldstart.random_negatives=2", "coldstart.round_trip_k=10",
        "coldstart.calib_share=0.25", "coldstart.teacher_shard_rows=40",
        "finetune.ce_epochs=1", "finetune.ce_max_length=32", "finetune.ce_eval_steps=4", "finetune.ce_batch_size=8",
        "finetune.calib_max_pairs=24", "calibrate.folds=2",
        *extra,
    ])


@pytest.fixture
def config_for(cs_models):
    """``config_for(root, *overrides)``: the cold-start test configuration."""

    def make(root: Path, *extra: str) -> RelforgeConfig:
        return cs_config(cs_models, Path(root) / "cache", *extra)

    return make


@pytest.fixture
def scripted(cs_models, monkeypatch):
    """``scripted(**kwargs)``: make ``synthesize-queries`` use a :class:`ScriptedGenerator` (returned)."""
    tokenizer = load_tokenizer(cs_models["llama"])

    def install(**kwargs) -> ScriptedGenerator:
        generator = ScriptedGenerator(tokenizer, **kwargs)
        monkeypatch.setattr("relforge.coldstart._synthesize.load_generator", lambda *a, **k: generator)
        return generator

    return install


@pytest.fixture
def synthesized(shop, config_for, scripted, tmp_path):
    """``(bus, config)`` once ``synthesize-queries`` ran (scripted generator, 24 items)."""
    from relforge.coldstart import run_synthesize_queries

    config = config_for(tmp_path)
    scripted()
    run_synthesize_queries(shop, config)
    return shop, config
