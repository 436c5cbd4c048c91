"""The query-level split: deterministic, seeded, independent of row order."""

from __future__ import annotations

import random
from collections import Counter

from hypothesis import given, settings
from hypothesis import strategies as st

from relforge.bus import DataBus
from relforge.config import SplitConfig, load_config
from relforge.ingest import ingest_files, split_queries
from tests.ingest.conftest import write_csv

IDS = [f"q{i:04d}" for i in range(150)]


def test_sizes_and_unlabeled():
    split = split_queries(IDS + ["u1", "u2"], IDS)
    assert Counter(split.values()) == {"train": 90, "calib": 30, "test": 30, "unlabeled": 2}
    assert split["u1"] == split["u2"] == "unlabeled"


def test_deterministic_and_seeded():
    assert split_queries(IDS, IDS) == split_queries(IDS, IDS)
    other = split_queries(IDS, IDS, SplitConfig(seed=14))
    assert other != split_queries(IDS, IDS)
    assert Counter(other.values()) == Counter(split_queries(IDS, IDS).values())


def test_other_fractions():
    split = split_queries(IDS[:100], IDS[:100], SplitConfig(train=0.5, calib=0.3, test=0.2))
    assert Counter(split.values()) == {"train": 50, "calib": 30, "test": 20}


@settings(max_examples=60, deadline=None)
@given(
    ids=st.sets(st.text(min_size=1, max_size=8), max_size=60),
    seed=st.integers(0, 2**31),
    order=st.randoms(use_true_random=False),
)
def test_independent_of_order(ids, seed, order):
    ids = sorted(ids)
    judged = ids[::2]
    shuffled, shuffled_judged = ids[:], judged[:]
    order.shuffle(shuffled)
    order.shuffle(shuffled_judged)
    config = SplitConfig(seed=seed)
    a = split_queries(ids, judged, config)
    b = split_queries(shuffled, shuffled_judged, config)
    assert a == b
    counts = Counter(v for v in a.values() if v != "unlabeled")
    n = len(judged)
    assert sum(counts.values()) == n
    assert abs(counts["train"] - 0.6 * n) <= 1 and abs(counts["calib"] - 0.2 * n) <= 1


def test_unjudged_queries_do_not_move_the_others():
    base = split_queries(IDS, IDS)
    more = split_queries(IDS + [f"new{i}" for i in range(20)], IDS)
    assert {q: more[q] for q in IDS} == base


def test_ingest_split_ignores_row_order(tmp_path):
    rng = random.Random(3)
    catalog = [{"item_id": f"i{i}", "title": f"item {i}"} for i in range(30)]
    queries = [{"query": f"query {i}"} for i in range(40)]
    judgments = [
        {"query": f"query {q}", "item_id": f"i{(q * 7 + k) % 30}", "grade": str(k % 3)}
        for q in range(32) for k in range(3)
    ]
    config = load_config()
    splits = []
    for run in range(2):
        if run:
            for rows in (catalog, queries, judgments):
                rng.shuffle(rows)
        folder = tmp_path / f"run{run}"
        folder.mkdir()
        bus = DataBus(folder / "bus")
        ingest_files(
            bus, config,
            catalog=write_csv(folder / "c.csv", catalog), queries=write_csv(folder / "q.csv", queries),
            judgments=write_csv(folder / "j.csv", judgments), grades=["a", "b", "c"],
        )
        table = bus.read_table("queries")
        splits.append(dict(zip(table.column("query").to_pylist(), table.column("split").to_pylist())))
    assert splits[0] == splits[1]
    assert Counter(splits[0].values()) == {"train": 19, "calib": 6, "test": 7, "unlabeled": 8}
