"""A small synthetic run for the calibrate and annotate tests: tables, candidates and tiny tier models.

The grade of a judged pair is the colour in the item text (black 0, green 1, blue 2, red 3);
the queries are split train 4 / calib 6 / test 2, so that cross-fitting has folds of whole
queries. Candidates: each query's judged items plus items of other queries, in the four
retrieval buckets and ``random``. Tiers (never downloaded): ``tier0`` a tiny bi-encoder with a
hand-set ordered-logit map on the cosine, ``tier1`` and ``tier2`` tiny random cross-encoders.

Example:
    >>> bus = write_tables(DataBus(tmp_path / "run"))                         # doctest: +SKIP
    >>> config = run_config(build_tier_models(tmp_path / "models"), tmp_path / "cache")   # doctest: +SKIP
    >>> run_calibrate(bus, config)                                             # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from relforge.bus import DataBus
from relforge.config import RelforgeConfig, load_config
from relforge.grades import ESCI
from tests.tiny_models import tiny_bert_cross_encoder, tiny_bi_encoder

COLOURS = ["black", "green", "blue", "red"]
KINDS = ["shoes", "phone case", "coffee maker", "lamp", "jacket", "book", "mug", "chair", "bottle", "camera",
         "desk", "bag"]
SPLITS = [("train", 4), ("calib", 6), ("test", 2)]
BUCKETS = ["consensus", "single", "partial", "lexical_only", "random"]
FAST = ["compute.threads=1", "calibrate.bootstrap_reps=100", "calibrate.grid=12", "review.budget=12"]


def write_tables(bus: DataBus, pairs_per_query: int = 10, extra_candidates: int = 6, seed: int = 0) -> DataBus:
    """catalog, queries, judgments and candidates with the ESCI scale as metadata."""
    rng = np.random.default_rng(seed)
    items, queries, judgments = [], [], []
    q = 0
    for split, count in SPLITS:
        for _ in range(count):
            kind = KINDS[q % len(KINDS)]
            queries.append({"query_id": f"q{q:02d}", "query": f"{kind}", "split": split})
            for j in range(pairs_per_query):
                grade = int(rng.choice(4, p=[0.25, 0.15, 0.25, 0.35]))
                item_id = f"i{q:02d}-{j:02d}"
                title = f"{COLOURS[grade]} {kind}"
                items.append({"item_id": item_id, "title": title, "text": f"{title} | with cotton"})
                judgments.append({"query_id": f"q{q:02d}", "item_id": item_id, "grade": grade, "source": "human"})
            q += 1
    candidates = []
    all_items = [it["item_id"] for it in items]
    for query in queries:
        own = [j["item_id"] for j in judgments if j["query_id"] == query["query_id"]]
        others = [i for i in rng.choice(all_items, size=extra_candidates + len(own), replace=False) if i not in own]
        for n, item_id in enumerate(own + others[:extra_candidates]):
            candidates.append({"query_id": query["query_id"], "item_id": item_id,
                               "n_channels": int(rng.integers(0, 4)), "bucket": BUCKETS[n % len(BUCKETS)]})
    meta = {"grade_scale": ESCI.model_dump()}
    bus.write_table("catalog", pa.Table.from_pylist(items), metadata=meta)
    bus.write_table("queries", pa.Table.from_pylist(queries), metadata=meta)
    j = pa.Table.from_pylist(judgments)
    bus.write_table("judgments", j.set_column(2, "grade", j.column("grade").cast(pa.int8())), metadata=meta)
    c = pa.Table.from_pylist(candidates)
    bus.write_table("candidates", c.set_column(2, "n_channels", c.column("n_channels").cast(pa.int8())))
    return bus


def bi_encoder_tier(root: Path) -> Path:
    """A bi-encoder tier folder on the tiny bi-encoder: an ordered-logit map with hand-set cut points."""
    from relforge.finetune import save_bi_encoder
    from relforge.tiers import ProbeHead

    folder = root / "tier0-bi"
    if (folder / "relforge_tier.json").is_file():
        return folder
    base = _once(root / "bi-base", tiny_bi_encoder)
    head = ProbeHead("ordinal", np.array([0.5]), np.array([0.2]), np.array([[2.0]]), np.array([1.0, 0.3, -0.6]))
    return save_bi_encoder(folder, head, ESCI, str(base), max_length=32)


def _once(folder: Path, build) -> Path:
    """``build(folder)`` unless the folder holds a model already (rebuilding would change its version)."""
    return folder if (folder / "config.json").is_file() or (folder / "relforge_tier.json").is_file() else build(folder)


def build_tier_models(root: Path) -> dict[str, Path]:
    """The three tiny tier models, built under ``root`` once (a later call, in any process, reuses them)."""
    root.mkdir(parents=True, exist_ok=True)
    return {
        "tier0": bi_encoder_tier(root),
        "tier1": _once(root / "ce-a", lambda f: tiny_bert_cross_encoder(f, n_grades=4, head="softmax", seed=1)),
        "tier2": _once(root / "ce-b", lambda f: tiny_bert_cross_encoder(f, n_grades=4, head="ordinal", seed=2)),
    }


def run_config(models: dict[str, Path], cache: Path, *extra: str, tiers: tuple[str, ...] = ("tier0", "tier1", "tier2")
               ) -> RelforgeConfig:
    """A configuration with the tiny tiers (every tier from its folder), a private model cache, fast settings."""
    backends = {"tier0": "bi-encoder", "tier1": "cross-encoder", "tier2": "cross-encoder"}
    overrides = [f"tiers.names=[{', '.join(tiers)}]", f"models.cache_dir={cache}", *FAST]
    for name in tiers:
        overrides += [f"tiers.specs.{name}.model={models[name]}", f"tiers.specs.{name}.backend={backends[name]}",
                      f"tiers.specs.{name}.max_length=32", f"tiers.specs.{name}.batch_size=16"]
    return load_config(overrides=[*overrides, *extra])
