"""The filters a generated query must pass, in order, and the rule of each.

1. ``failed``: the generator returned nothing for the item (a server's error); never filled in.
2. ``length``: fewer than ``min_words`` or more than ``max_words`` words (words: runs of letters
   and digits), or nothing left after cleaning. Generation is bounded by ``max_new_tokens``
   too, so a query cut there is long and goes here.
3. ``copy``: the query merely copies the title: it adds no word that is not in the title and
   holds at least ``copy_share`` of the title's distinct words (stemmed, lower case). "nike
   pegasus 38" for "Nike Air Zoom Pegasus 38 Men's Running Shoe" (3 of 9 words) is kept;
   "nike air zoom pegasus 38 men's running shoe" is a copy, as is the title itself.
4. ``round-trip``: the source item is not in the channel's top ``round_trip_k`` for the query
   (:func:`relforge.coldstart.round_trip_ranks`): a query that does not find its own item is a
   poor query for it, or too vague to label against it. It comes before the duplicate filters,
   so that a query is only ever a duplicate of a query that is kept.
5. ``duplicate``: the same words in the same order as a query kept before it (lower case,
   punctuation and spacing ignored).
6. ``near-duplicate``: the set of its stemmed content words (English stop words dropped) has
   a Jaccard similarity of at least ``near_duplicate_jaccard`` with that of a query kept
   before it ("running shoes red" after "red running shoe").

"Before" is the generation order (sample order, then the query's number for its item), so
the first of two duplicates is kept. The removed queries stay in ``synthetic_queries`` with the
filter that removed them (``removed_by``); the report counts each filter's share.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

#: The filters, in the order they apply.
FILTERS = ("failed", "length", "copy", "round-trip", "duplicate", "near-duplicate")
_WORD = re.compile(r"\w+", re.UNICODE)


def words(text: str) -> list[str]:
    """Lower-cased runs of letters and digits.

    Example:
        >>> words("Men's  Running-Shoes, 2x!")
        ['men', 's', 'running', 'shoes', '2x']
    """
    return _WORD.findall(text.lower())


@lru_cache(maxsize=1)
def _stemmer():
    import Stemmer

    return Stemmer.Stemmer("english")


@lru_cache(maxsize=1)
def _stopwords() -> frozenset[str]:
    from bm25s.stopwords import STOPWORDS_EN

    return frozenset(STOPWORDS_EN)


def stems(text: str, drop_stopwords: bool = False) -> set[str]:
    """The distinct Snowball-stemmed words of ``text`` (one-letter words dropped; with
    ``drop_stopwords``, English stop words too).

    Example:
        >>> sorted(stems("Red running shoes for men", drop_stopwords=True))
        ['men', 'red', 'run', 'shoe']
    """
    stop = _stopwords() if drop_stopwords else frozenset()
    kept = [w for w in words(text) if len(w) > 1 and w not in stop]
    return set(_stemmer().stemWords(kept))


def is_copy(query: str, title: str, share: float) -> bool:
    """Whether ``query`` merely copies ``title`` (rule 3 of the module docstring)."""
    q, t = stems(query), stems(title)
    if not q or not t:
        return False
    return q <= t and len(q) / len(t) >= share


def jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a or b else 1.0


@dataclass(frozen=True)
class FilterSettings:
    """The filters' thresholds (``coldstart.*`` of the configuration)."""

    min_words: int = 1
    max_words: int = 12
    copy_share: float = 0.7
    near_duplicate_jaccard: float = 0.8
    round_trip_k: int = 20


def text_filters(
    queries: Sequence[str], titles: Sequence[str], failed: Sequence[bool], settings: FilterSettings
) -> list[str | None]:
    """Filters 1-3 (``failed``, ``length``, ``copy``): per query, the filter that removed it, or
    ``None`` when it passed them."""
    removed: list[str | None] = [None] * len(queries)
    for i, (query, title, bad) in enumerate(zip(queries, titles, failed)):
        n = len(words(query))
        if bad:
            removed[i] = "failed"
        elif n < settings.min_words or n > settings.max_words:
            removed[i] = "length"
        elif is_copy(query, title, settings.copy_share):
            removed[i] = "copy"
    return removed


def duplicate_filters(queries: Sequence[str], removed: list[str | None], settings: FilterSettings) -> list[str | None]:
    """Filters 5-6 (``duplicate``, ``near-duplicate``) over the queries still in (``removed`` is
    ``None``), in generation order; returns ``removed`` with their verdicts added."""
    out = list(removed)
    seen: set[str] = set()
    kept_sets: list[set[str]] = []
    by_stem: dict[str, list[int]] = {}  # stem -> positions in kept_sets holding it
    for i, query in enumerate(queries):
        if out[i] is not None:
            continue
        key = " ".join(words(query))
        if key in seen:
            out[i] = "duplicate"
            continue
        mine = stems(query, drop_stopwords=True) or stems(query)
        others = {j for s in mine for j in by_stem.get(s, ())}
        if any(jaccard(mine, kept_sets[j]) >= settings.near_duplicate_jaccard for j in others):
            out[i] = "near-duplicate"
            continue
        seen.add(key)
        for s in mine:
            by_stem.setdefault(s, []).append(len(kept_sets))
        kept_sets.append(mine)
    return out


def round_trip_ranks(item_index: np.ndarray, source: np.ndarray) -> np.ndarray:
    """The rank (1-based) of each query's source item in its channel results, 0 where absent.

    Args:
        item_index: ``(n, k)`` catalog positions per query, best first, ``-1`` past the end
            (:meth:`relforge.mine.Channel.search`).
        source: ``(n,)`` the catalog position of each query's source item.

    Example:
        >>> round_trip_ranks(np.array([[4, 7, -1], [1, 2, 3]]), np.array([7, 9])).tolist()
        [2, 0]
    """
    hit = item_index == np.asarray(source)[:, None]
    return np.where(hit.any(axis=1), hit.argmax(axis=1) + 1, 0).astype(np.int32)


def filter_counts(removed: Sequence[str | None]) -> dict[str, dict[str, float]]:
    """Per filter: the queries it removed, their share of all generated queries, and their share
    of the queries that reached it; plus ``kept``."""
    total = len(removed)
    left = total
    out: dict[str, dict[str, float]] = {}
    for name in FILTERS:
        n = sum(1 for r in removed if r == name)
        out[name] = {"removed": n, "share_of_generated": n / total if total else 0.0,
                     "share_of_reaching": n / left if left else 0.0, "reaching": left}
        left -= n
    out["kept"] = {"removed": 0, "share_of_generated": left / total if total else 0.0,
                   "share_of_reaching": 1.0, "reaching": left}
    return out
