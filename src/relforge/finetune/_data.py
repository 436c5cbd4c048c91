"""Graded pairs for fine-tuning: the human judgments of a split joined with the catalog and queries.

Also the ways of cutting them that training and evaluation need: a per-query sample, the
held-out-pairs split within queries, and balanced class weights.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from relforge.bus import DataBus
from relforge.errors import InputError
from relforge.tiers import Pair


@dataclass
class GradedPairs:
    """Judged (query, item) pairs with their human grade, in a fixed order.

    Attributes:
        query_id, item_id: the pair's keys.
        query: the query text.
        text: the item text the models read (the catalog column chosen by ``item_field``).
        grade: int8, 0 = worst.
    """

    query_id: np.ndarray
    item_id: np.ndarray
    query: np.ndarray
    text: np.ndarray
    grade: np.ndarray

    def __len__(self) -> int:
        return len(self.grade)

    def subset(self, index: Sequence[int] | np.ndarray) -> GradedPairs:
        """The pairs at ``index`` (positions), in that order."""
        idx = np.asarray(index, dtype=np.int64)
        return GradedPairs(self.query_id[idx], self.item_id[idx], self.query[idx], self.text[idx], self.grade[idx])

    def pairs(self) -> list[Pair]:
        """The pairs as the tier scorers read them."""
        return [Pair(str(q), str(t)) for q, t in zip(self.query, self.text)]

    def class_counts(self, n_grades: int) -> np.ndarray:
        return np.bincount(self.grade.astype(np.int64), minlength=n_grades)

    @classmethod
    def concat(cls, parts: Sequence[GradedPairs]) -> GradedPairs:
        return cls(*(np.concatenate([getattr(p, f) for p in parts]) for f in ("query_id", "item_id", "query", "text", "grade")))


def load_graded_pairs(
    bus: DataBus, splits: str | Sequence[str], item_field: str = "text", n_grades: int | None = None
) -> GradedPairs:
    """The human judgments of the queries in ``splits``, joined with query and item text.

    Args:
        bus: the run's bus, with committed ``catalog``, ``queries`` and ``judgments``.
        splits: one split name or several (``train``, ``calib``, ``test``).
        item_field: the catalog column the models read (``text``, or e.g. ``title``).
        n_grades: when given, grades outside ``0..n_grades-1`` are an error.

    Returns:
        The pairs, ordered by query id then item id (deterministic).

    Raises:
        InputError: naming the table, row and field of a judgment whose query or item is
            unknown, an unknown ``item_field``, or a split without judged pairs.

    Example:
        >>> train = load_graded_pairs(DataBus("runs/esci"), "train")     # doctest: +SKIP
        >>> len(train), train.class_counts(4)                            # doctest: +SKIP
    """
    wanted = [splits] if isinstance(splits, str) else list(splits)
    catalog = bus.read_table("catalog")
    if item_field not in catalog.column_names:
        raise InputError(bus.uri("catalog"), None, item_field, f"no such column (columns: {catalog.column_names})")
    items = dict(zip(catalog.column("item_id").to_pylist(), catalog.column(item_field).to_pylist()))
    queries = bus.read_table("queries", columns=["query_id", "query", "split"]).to_pydict()
    query_text = dict(zip(queries["query_id"], queries["query"]))
    query_split = dict(zip(queries["query_id"], queries["split"]))
    judgments = bus.read_table("judgments", columns=["query_id", "item_id", "grade", "source"]).to_pydict()
    rows = []
    for row, (qid, iid, grade) in enumerate(zip(judgments["query_id"], judgments["item_id"], judgments["grade"]), 1):
        if qid not in query_split:
            raise InputError(bus.uri("judgments"), row, "query_id", f"{qid!r} is not in the queries table")
        if query_split[qid] not in wanted:
            continue
        if iid not in items:
            raise InputError(bus.uri("judgments"), row, "item_id", f"{iid!r} is not in the catalog")
        if n_grades is not None and not 0 <= grade < n_grades:
            raise InputError(bus.uri("judgments"), row, "grade", f"{grade} is outside 0..{n_grades - 1}")
        text = items[iid]
        rows.append((qid, iid, query_text[qid], "" if text is None else str(text), grade))
    if not rows:
        raise InputError(bus.uri("queries"), None, "split", f"no judged pair in split(s) {wanted}")
    rows.sort(key=lambda r: (r[0], r[1]))
    cols = list(zip(*rows))
    return GradedPairs(
        query_id=np.asarray(cols[0], dtype=object),
        item_id=np.asarray(cols[1], dtype=object),
        query=np.asarray(cols[2], dtype=object),
        text=np.asarray(cols[3], dtype=object),
        grade=np.asarray(cols[4], dtype=np.int8),
    )


def sample_per_query(pairs: GradedPairs, max_pairs: int | None, seed: int) -> GradedPairs:
    """At most ``max_pairs`` pairs in all, the same share from every query (seeded, order kept).

    Example:
        >>> small = sample_per_query(train, 1000, seed=13)              # doctest: +SKIP
    """
    if max_pairs is None or len(pairs) <= max_pairs:
        return pairs
    rng = np.random.default_rng(seed)
    fraction = max_pairs / len(pairs)
    keep: list[int] = []
    for qid in np.unique(pairs.query_id):
        idx = np.flatnonzero(pairs.query_id == qid)
        k = max(1, round(fraction * len(idx)))
        keep.extend(rng.choice(idx, size=min(k, len(idx)), replace=False).tolist())
    chosen = np.asarray(keep, dtype=np.int64)
    if len(chosen) > max_pairs:  # rounding up per query can overshoot by a few
        chosen = rng.choice(chosen, size=max_pairs, replace=False)
    return pairs.subset(np.sort(chosen))


def split_within_queries(pairs: GradedPairs, heldout: float, seed: int) -> tuple[GradedPairs, GradedPairs]:
    """Split every query's pairs into (train, held-out): the view where part of a query is labelled.

    Each query with at least two pairs keeps at least one pair on each side.

    Returns:
        ``(train_pairs, heldout_pairs)``.
    """
    if not 0 < heldout < 1:
        raise ValueError("heldout must be between 0 and 1")
    rng = np.random.default_rng(seed)
    train_idx: list[int] = []
    held_idx: list[int] = []
    for qid in np.unique(pairs.query_id):
        idx = rng.permutation(np.flatnonzero(pairs.query_id == qid))
        k = round(heldout * len(idx))
        k = min(max(k, 1), len(idx) - 1) if len(idx) >= 2 else 0
        held_idx.extend(idx[:k].tolist())
        train_idx.extend(idx[k:].tolist())
    return pairs.subset(np.sort(train_idx)), pairs.subset(np.sort(held_idx))


def balanced_class_weights(grades: np.ndarray, n_grades: int) -> np.ndarray:
    """``n / (K * count_k)`` per grade (sklearn's ``balanced``); a grade with no example gets 0.

    Example:
        >>> balanced_class_weights(np.array([0, 0, 0, 1]), 2).tolist()
        [0.6666666666666666, 2.0]
    """
    counts = np.bincount(np.asarray(grades, dtype=np.int64), minlength=n_grades).astype(np.float64)
    weights = np.zeros(n_grades)
    present = counts > 0
    weights[present] = counts.sum() / (present.sum() * counts[present])
    return weights
