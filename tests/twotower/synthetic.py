"""A small synthetic run for the retriever's tests: catalog, queries (train / calib / test /
unlabeled), human judgments, mined candidates with buckets, and cascade labels, all committed
on a bus as the earlier steps would commit them. Texts use the tiny models' vocabulary
(tests/tiny_models.py), so the tiny bi-encoder reads real tokens.

Every query has a product group; its group's items are relevant (grade 3 or 2), a neighbour
group's items are complements (1), the rest irrelevant (0). Test-split queries have labels and
candidates like every other query, so a leak into training would be visible.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from relforge.bus import DataBus
from relforge.grades import ESCI, GRADE_SCALE_KEY

GROUPS = {
    "shoes": ["red running shoes", "trail running shoe", "black running shoes", "kids running shoes"],
    "shirt": ["cotton shirt white", "blue cotton shirt", "kids shirt green", "summer shirt small"],
    "bottle": ["steel water bottle", "glass water bottle", "kids water bottle", "large water bottle"],
    "headphones": ["wireless headphones black", "usb headphones", "kids headphones", "headphones with case"],
    "coffee": ["coffee maker steel", "coffee maker small", "coffee mug large", "coffee maker with mug"],
    "lamp": ["desk lamp led", "led light lamp", "small desk lamp", "lamp with battery"],
    "camera": ["camera lens", "camera tripod", "camera bag", "camera battery pack"],
    "book": ["book novel", "paper notebook", "notebook and pen", "book for kids"],
    "toy": ["toy car", "toy doll", "puzzle game", "kids toy car"],
    "jacket": ["rain jacket", "winter jacket women", "jacket for men", "kids winter jacket"],
}
NEIGHBOUR = {"shoes": "shirt", "shirt": "jacket", "bottle": "coffee", "headphones": "camera", "coffee": "bottle",
             "lamp": "desk", "camera": "headphones", "book": "toy", "toy": "book", "jacket": "shirt"}
#: The bucket of a query's n-th candidate: its group's four items first, then other items; the rest random.
BUCKETS = ["consensus", "consensus", "lexical_only", "partial", "single", "single", "partial", "single",
           "lexical_only", "single"]
#: (query_id, text, group, split)
QUERIES = [
    ("q01", "running shoes", "shoes", "train"), ("q02", "cotton shirt", "shirt", "train"),
    ("q03", "water bottle", "bottle", "train"), ("q04", "wireless headphones", "headphones", "train"),
    ("q05", "coffee maker", "coffee", "train"), ("q06", "desk lamp", "lamp", "train"),
    ("q07", "camera tripod", "camera", "calib"), ("q08", "paper notebook", "book", "calib"),
    ("q09", "toy car", "toy", "test"), ("q10", "winter jacket", "jacket", "test"),
    ("q11", "kids shoes", "shoes", "test"), ("q12", "led light", "lamp", "unlabeled"),
]


def catalog() -> pa.Table:
    ids, titles = [], []
    for g, names in GROUPS.items():
        for j, name in enumerate(names):
            ids.append(f"{g}-{j}")
            titles.append(name)
    return pa.table({"item_id": ids, "title": titles, "text": [f"{t} | brand new" for t in titles]})


def _grade(query_group: str, item: str, j: int) -> int:
    group = item.split("-")[0]
    if group == query_group:
        return 3 if j % 2 == 0 else 2
    if NEIGHBOUR.get(query_group) == group:
        return 1
    return 0


def tables(seed: int = 0) -> dict[str, pa.Table]:
    """catalog, queries, judgments, candidates, labels."""
    rng = np.random.default_rng(seed)
    cat = catalog()
    items = cat.column("item_id").to_pylist()
    q = pa.table({"query_id": [x[0] for x in QUERIES], "query": [x[1] for x in QUERIES],
                  "split": [x[3] for x in QUERIES]})
    j_rows, c_rows, l_rows = [], [], []
    for qid, _text, group, split in QUERIES:
        mine = [i for i in items if i.startswith(group + "-")]
        others = [i for i in items if not i.startswith(group + "-")]
        picked = mine + list(rng.choice(others, size=8, replace=False))
        for n, item in enumerate(picked):
            grade = _grade(group, item, int(item.split("-")[1]))
            if split != "unlabeled" and n < 9:
                j_rows.append((qid, item, grade))
            bucket = BUCKETS[n] if n < len(BUCKETS) else "random"
            c_rows.append((qid, item, bucket))
            probs = np.full(4, 0.05)
            probs[grade] = 0.85
            confidence = 0.3 if n == 5 else 0.85
            l_rows.append((qid, item, grade, (probs / probs.sum()).tolist(), confidence))
    judgments = pa.table({"query_id": [r[0] for r in j_rows], "item_id": [r[1] for r in j_rows],
                          "grade": pa.array([r[2] for r in j_rows], pa.int8()), "source": ["human"] * len(j_rows)})
    n = len(c_rows)
    candidates = pa.table({"query_id": [r[0] for r in c_rows], "item_id": [r[1] for r in c_rows],
                           "n_channels": pa.array([3] * n, pa.int8()), "bucket": [r[2] for r in c_rows],
                           "rank_bm25": pa.array(list(range(1, n + 1)), pa.int32()),
                           "score_bm25": pa.array(np.linspace(1, 0, n), pa.float32())})
    labels = pa.table({
        "query_id": [r[0] for r in l_rows], "item_id": [r[1] for r in l_rows],
        "grade": pa.array([r[2] for r in l_rows], pa.int8()),
        "probs": pa.array([r[3] for r in l_rows], pa.list_(pa.float32())),
        "confidence": pa.array([r[4] for r in l_rows], pa.float32()),
        "tier": pa.array([0] * n, pa.int8()), "cost": pa.array([0.001] * n, pa.float32()),
        "model": ["tier0"] * n, "model_fingerprint": ["f"] * n,
    })
    return {"catalog": cat, "queries": q, "judgments": judgments, "candidates": candidates, "labels": labels}


def write_run(bus: DataBus, seed: int = 0, skip: tuple[str, ...] = ()) -> dict[str, pa.Table]:
    """Commit the synthetic tables on ``bus`` (the grade scale in their metadata, as ingest does)."""
    meta = {GRADE_SCALE_KEY: ESCI.model_dump()}
    out = tables(seed)
    for name, table in out.items():
        if name not in skip:
            bus.write_table(name, table, metadata=meta)
    return out


def test_query_ids() -> set[str]:
    return {x[0] for x in QUERIES if x[3] == "test"}


test_query_ids.__test__ = False  # a helper, not a pytest test


def query_text(qid: str) -> str:
    return next(x[1] for x in QUERIES if x[0] == qid)
