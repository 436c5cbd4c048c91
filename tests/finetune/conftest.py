"""A synthetic, trivially learnable graded data set on a bus, and the tiny models (never downloaded).

The grade of a pair is the colour in the item text (black 0, green 1, blue 2, red 3), so a
model that learns anything learns it; the query is the item's kind.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from relforge.bus import DataBus
from relforge.finetune import GradedPairs
from relforge.grades import ESCI
from tests.tiny_models import cached, tiny_bert_cross_encoder, tiny_llama

COLOURS = ["black", "green", "blue", "red"]
KINDS = ["shoes", "phone case", "coffee maker", "lamp", "jacket", "book", "mug", "chair"]
SPLITS = {"train": 8, "calib": 2, "test": 2}


def synthetic_pairs(n: int, seed: int, n_queries: int = 8) -> GradedPairs:
    """``n`` pairs over ``n_queries`` queries whose grade is the item's colour."""
    rng = np.random.default_rng(seed)
    grades = rng.integers(0, 4, n).astype(np.int8)
    qidx = np.arange(n) % n_queries
    kinds = [KINDS[q % len(KINDS)] for q in qidx]
    texts = [f"{COLOURS[g]} {k} with cotton" for g, k in zip(grades, kinds)]
    return GradedPairs(
        query_id=np.asarray([f"q{q}" for q in qidx], dtype=object),
        item_id=np.asarray([f"i{seed}-{i}" for i in range(n)], dtype=object),
        query=np.asarray(kinds, dtype=object),
        text=np.asarray(texts, dtype=object),
        grade=grades,
    )


def write_synthetic_bus(bus: DataBus, pairs_per_query: int = 12, seed: int = 0) -> DataBus:
    """catalog, queries (train / calib / test) and judgments with the ESCI scale as metadata."""
    rng = np.random.default_rng(seed)
    items, queries, judgments = [], [], []
    q = 0
    for split, count in SPLITS.items():
        for _ in range(count):
            kind = KINDS[q % len(KINDS)]
            queries.append({"query_id": f"q{q:02d}", "query": f"{kind}", "split": split})
            for j in range(pairs_per_query):
                grade = int(rng.integers(0, 4))
                item_id = f"i{q:02d}-{j:02d}"
                title = f"{COLOURS[grade]} {kind}"
                items.append({"item_id": item_id, "title": title, "text": f"{title} | with cotton"})
                judgments.append({"query_id": f"q{q:02d}", "item_id": item_id, "grade": grade, "source": "human"})
            q += 1
    meta = {"grade_scale": ESCI.model_dump()}
    bus.write_table("catalog", pa.Table.from_pylist(items), metadata=meta)
    bus.write_table("queries", pa.Table.from_pylist(queries), metadata=meta)
    j = pa.Table.from_pylist(judgments)
    j = j.set_column(j.schema.get_field_index("grade"), "grade", j.column("grade").cast(pa.int8()))
    bus.write_table("judgments", j, metadata=meta)
    return bus


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Tiny models on a shared 2-core machine: one thread avoids OpenMP oversubscription, which
    makes each small op wait on busy cores (a 10x slowdown measured under load)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def synthetic_bus(tmp_path) -> DataBus:
    return write_synthetic_bus(DataBus(tmp_path / "run"))


@pytest.fixture(scope="session")
def finetune_models(tmp_path_factory):
    return tmp_path_factory.mktemp("finetune-models")


@pytest.fixture(scope="session")
def bert_base(finetune_models):
    """A tiny BERT with a 1-output head and no descriptor: a base the fine-tuning gives a new head."""
    return cached(finetune_models, tiny_bert_cross_encoder, "bert-base", head=None)


@pytest.fixture(scope="session")
def llama_base(finetune_models):
    """A tiny Llama with a ChatML template."""
    return cached(finetune_models, tiny_llama, "llama")
