"""Which catalog items get synthetic queries, and which of the run's own queries show the style.

- :func:`sample_items`: ``n`` items, stratified over a category column where the catalog has
  one (each category gets its share of ``n`` by largest remainder, at least one item while
  there are fewer categories than ``n``), chosen within a category by a seeded hash of the
  item id: the same items for the same seed whatever the catalog's row order, and a larger
  ``n`` keeps the items of a smaller one within each category.
- :func:`few_shot_examples`: up to ``k`` of the run's queries outside the test split, each with
  its best-graded judged item where there are judgments (never a test-split judgment).
"""

from __future__ import annotations

import hashlib

import numpy as np
import pyarrow as pa

from relforge.tiers import Example, has_words


def stable_hash(seed: int, key: str) -> int:
    """A 64-bit hash of ``key`` under ``seed`` (the same on every machine and run)."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{key}".encode()).digest()[:8], "little")


def sample_items(catalog: pa.Table, n: int, stratify_by: str | None, seed: int) -> tuple[np.ndarray, dict]:
    """Catalog positions of the sampled items (in sample order) and how they were drawn.

    Items whose title has no letter or digit are never drawn. The order is by stratum, then
    by hash within it, interleaved round-robin over the strata, so that any prefix of the
    sample (a shard) is spread over the categories too.

    Returns:
        ``(positions, info)``: ``info`` has ``stratified_by`` (the column, or ``None``) and the
        items drawn per stratum.
    """
    ids = catalog.column("item_id").to_pylist()
    titles = catalog.column("title").to_pylist()
    eligible = [i for i, t in enumerate(titles) if t and has_words(str(t))]
    column = stratify_by if stratify_by and stratify_by in catalog.column_names else None
    if column is not None:
        values = catalog.column(column).to_pylist()
        strata_of = {i: str(values[i]) if values[i] not in (None, "") else "(none)" for i in eligible}
    else:
        strata_of = {i: "(all)" for i in eligible}
    strata: dict[str, list[int]] = {}
    for i in eligible:
        strata.setdefault(strata_of[i], []).append(i)
    for members in strata.values():
        members.sort(key=lambda i: stable_hash(seed, ids[i]))
    quota = _allocate({k: len(v) for k, v in strata.items()}, min(n, len(eligible)))
    chosen = {k: strata[k][: quota[k]] for k in sorted(strata)}
    order: list[int] = []
    for r in range(max((len(v) for v in chosen.values()), default=0)):
        order += [v[r] for v in chosen.values() if r < len(v)]
    info = {"stratified_by": column, "eligible_items": len(eligible), "per_stratum": {k: len(v) for k, v in chosen.items()}}
    return np.asarray(order, dtype=np.int64), info


def _allocate(sizes: dict[str, int], n: int) -> dict[str, int]:
    """``n`` draws shared over strata in proportion to their sizes (largest remainder), each
    stratum at least one while ``n`` allows, never more than its size."""
    total = sum(sizes.values())
    if total == 0 or n == 0:
        return dict.fromkeys(sizes, 0)
    keys = sorted(sizes, key=lambda k: (-sizes[k], k))
    quota = {k: 1 if n >= len(keys) else 0 for k in keys}
    if n < len(keys):  # fewer draws than strata: the largest strata get one each
        for k in keys[:n]:
            quota[k] = 1
        return quota
    left = n - len(keys)
    spare = {k: sizes[k] - 1 for k in keys}
    room = sum(spare.values())
    exact = {k: left * spare[k] / room if room else 0.0 for k in keys}
    for k in keys:
        quota[k] += min(spare[k], int(exact[k]))
    rest = n - sum(quota.values())
    for k in sorted(keys, key=lambda k: (-(exact[k] - int(exact[k])), -sizes[k], k)):
        if rest <= 0:
            break
        if quota[k] < sizes[k]:
            quota[k] += 1
            rest -= 1
    for k in keys:  # anything still left goes wherever there is room
        while rest > 0 and quota[k] < sizes[k]:
            quota[k] += 1
            rest -= 1
    return quota


def few_shot_examples(
    queries: pa.Table | None, judgments: pa.Table | None, item_text: dict[str, str], k: int, seed: int
) -> list[Example]:
    """Up to ``k`` of the run's queries as examples for the query writer.

    Queries of the ``test`` split are never used. Where judgments exist (of non-test queries),
    an example is a query with its best-graded item (the item the writer would have seen);
    otherwise the query alone (a style note). Chosen by a seeded hash of the query id.
    """
    if k <= 0 or queries is None or queries.num_rows == 0:
        return []
    rows = [r for r in queries.select(["query_id", "query", "split"]).to_pylist()
            if r["split"] != "test" and r["query"] and has_words(r["query"])]
    rows.sort(key=lambda r: stable_hash(seed, r["query_id"]))
    best: dict[str, tuple[int, str]] = {}
    if judgments is not None and judgments.num_rows:
        allowed = {r["query_id"] for r in rows}
        for j in judgments.select(["query_id", "item_id", "grade"]).to_pylist():
            if j["query_id"] in allowed and j["item_id"] in item_text:
                top = best.get(j["query_id"])
                if top is None or (j["grade"], j["item_id"]) > top:
                    best[j["query_id"]] = (j["grade"], j["item_id"])
    if best:
        top_grade = max(g for g, _ in best.values())
        paired = [r for r in rows if r["query_id"] in best and best[r["query_id"]][0] == top_grade]
        return [Example(r["query"], item_text[best[r["query_id"]][1]]) for r in paired[:k]]
    return [Example(r["query"]) for r in rows[:k]]
