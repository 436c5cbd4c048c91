"""The deterministic query-level split: train / calib / test for judged queries, ``unlabeled`` else.

Queries are ordered by ``sha256(f"{seed}:{query_id}")`` and cut by the configured fractions,
so a query's split depends only on the seed and the set of judged query ids, never on the
order of the input rows.
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Iterable

from relforge.config import SplitConfig

SPLITS = ("train", "calib", "test")
UNLABELED = "unlabeled"


def normalize_query(text: str) -> str:
    """The form two queries must share to count as the same: NFKC, case-folded, single spaces."""
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def query_id_for(text: str) -> str:
    """A stable id for a query without one: ``q`` + 16 hex digits of the SHA-1 of its normal form.

    Example:
        >>> query_id_for("Red  Shoes") == query_id_for("red shoes")
        True
    """
    return "q" + hashlib.sha1(normalize_query(text).encode("utf-8")).hexdigest()[:16]


def split_queries(
    query_ids: Iterable[str], judged: Iterable[str], config: SplitConfig | None = None
) -> dict[str, str]:
    """Assign every query id a split.

    Args:
        query_ids: all query ids.
        judged: the ids of queries with at least one judgment; the others are ``unlabeled``.
        config: the fractions and the seed (default 60/20/20, seed 13).

    Returns:
        ``{query_id: "train" | "calib" | "test" | "unlabeled"}``.

    Example:
        >>> s = split_queries([f"q{i}" for i in range(10)], [f"q{i}" for i in range(5)])
        >>> sorted(s.values()).count("unlabeled")
        5
    """
    config = config or SplitConfig()
    ids = list(dict.fromkeys(query_ids))
    judged_set = set(judged)
    labeled = sorted(
        (q for q in ids if q in judged_set),
        key=lambda q: (hashlib.sha256(f"{config.seed}:{q}".encode()).hexdigest(), q),
    )
    n = len(labeled)
    cut_train = round(n * config.train)
    cut_calib = min(n, cut_train + round(n * config.calib))
    out = {q: UNLABELED for q in ids}
    for i, q in enumerate(labeled):
        out[q] = "train" if i < cut_train else "calib" if i < cut_calib else "test"
    return out
