"""Training examples of one stage, in the column layout its loss reads.

- ``mnrl``, ``cached-mnrl``: ``anchor``, ``positive`` and ``negative_1..n`` (mined hard
  negatives of the same query that pass the false-negative filter; ``n = 0``: in-batch only);
- ``triplet``: ``anchor``, ``positive``, ``negative``;
- ``cosent``: ``sentence1`` (query), ``sentence2`` (item), ``score`` (the graded target);
- ``margin-mse``: ``query``, ``positive``, ``negative`` (a worse item of the same query),
  ``label`` (the difference of their targets).

Positives are rows with a grade of at least ``twotower.positive_grade``, negatives rows of at
most ``twotower.negative_grade``, both among the stage's levels. Where fewer than ``n``
negatives pass the filter, random catalog items the query has no label for fill the gap
(easy negatives; counted in the stats).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pyarrow as pa

from relforge.config import TrainingStage, TwoTowerConfig
from relforge.grades import GradeScale
from relforge.twotower._data import TrainingRows
from relforge.twotower._negatives import NegativeStats, choose_negatives

Encoder = Callable[[Sequence[str]], np.ndarray]
CONTRASTIVE = ("mnrl", "cached-mnrl", "triplet")


def resolve_grade(grade: int, n_grades: int) -> int:
    return n_grades + grade if grade < 0 else grade


def sample_per_query(query_id: np.ndarray, max_n: int | None, rng: np.random.Generator) -> np.ndarray:
    """Positions of at most ``max_n`` rows, the same share from every query (order kept)."""
    n = len(query_id)
    if max_n is None or n <= max_n:
        return np.arange(n)
    fraction = max_n / n
    keep: list[int] = []
    for q in np.unique(query_id):
        idx = np.flatnonzero(query_id == q)
        k = max(1, round(fraction * len(idx)))
        keep.extend(rng.choice(idx, size=min(k, len(idx)), replace=False).tolist())
    chosen = np.asarray(keep, dtype=np.int64)
    if len(chosen) > max_n:
        chosen = rng.choice(chosen, size=max_n, replace=False)
    return np.sort(chosen)


def groups(query_id: np.ndarray) -> dict[str, np.ndarray]:
    """Query id -> the positions of its rows (ascending), in one pass."""
    if len(query_id) == 0:
        return {}
    keys, inverse = np.unique(query_id.astype(str), return_inverse=True)
    order = np.argsort(inverse, kind="stable")
    bounds = np.searchsorted(inverse[order], np.arange(len(keys) + 1))
    return {k: order[bounds[i]:bounds[i + 1]] for i, k in enumerate(keys)}


def _scores(encode: Encoder, queries: np.ndarray, texts: np.ndarray) -> np.ndarray:
    """The model's cosine similarity of each (query, text) pair (texts encoded once each)."""
    uq, qi = np.unique(queries.astype(str), return_inverse=True)
    ut, ti = np.unique(texts.astype(str), return_inverse=True)
    qv, tv = encode(uq.tolist()), encode(ut.tolist())
    return np.einsum("ij,ij->i", qv[qi], tv[ti]).astype(np.float32)


def contrastive_examples(
    stage: TrainingRows, spec: TrainingStage, cfg: TwoTowerConfig, scale: GradeScale,
    encode: Encoder | None, catalog_texts: np.ndarray, rng: np.random.Generator,
) -> tuple[pa.Table, dict]:
    """(anchor, positive, negative_1..n) rows with filtered hard negatives (see the module docstring)."""
    n = 1 if spec.loss == "triplet" else spec.negatives
    pos_g, neg_g = resolve_grade(cfg.positive_grade, scale.n), resolve_grade(cfg.negative_grade, scale.n)
    positives = np.flatnonzero(stage.grade >= pos_g)
    positives = positives[sample_per_query(stage.query_id[positives], spec.max_examples, rng)]
    negatives = np.flatnonzero(stage.grade <= neg_g)
    stats = NegativeStats(positives=len(positives))
    columns: dict[str, list[str]] = {"anchor": stage.query[positives].tolist(), "positive": stage.text[positives].tolist()}
    if n == 0 or len(positives) == 0:
        return pa.table({k: pa.array(v, pa.string()) for k, v in columns.items()}), stats.as_dict()
    rows_of = groups(stage.query_id)
    is_negative = np.zeros(len(stage), dtype=bool)
    is_negative[negatives] = True
    by_query: dict[str, np.ndarray] = {}
    labelled: dict[str, set[str]] = {}
    for q in np.unique(stage.query_id[positives]).astype(str):
        mine = rows_of[q]
        labelled[q] = set(stage.text[mine].tolist())
        pos_texts = set(stage.text[mine[stage.grade[mine] >= pos_g]].tolist())
        pool = mine[is_negative[mine]]
        pool = pool[np.array([t not in pos_texts for t in stage.text[pool]], dtype=bool)] if len(pool) else pool
        if cfg.negative_pool is not None and len(pool) > cfg.negative_pool:
            pool = np.sort(rng.choice(pool, size=cfg.negative_pool, replace=False))
        by_query[q] = pool
    pool_rows = np.unique(np.concatenate([*by_query.values(), np.zeros(0, np.int64)]).astype(np.int64))
    if encode is not None and len(pool_rows):
        all_rows = np.concatenate([positives, pool_rows])
        scored = dict(zip(all_rows.tolist(), _scores(encode, stage.query[all_rows], stage.text[all_rows]).tolist()))
    else:  # no model to score with: every candidate passes (random choice)
        scored = {int(r): 0.0 for r in np.concatenate([positives, pool_rows])}
    chosen_cols: list[list[str]] = [[] for _ in range(n)]
    for p in positives:
        q = str(stage.query_id[p])
        pool = by_query.get(q, np.zeros(0, np.int64))
        picked = choose_negatives(
            scored[int(p)], pool, np.array([scored[int(r)] for r in pool], dtype=np.float32), n,
            relative_margin=cfg.relative_margin if encode is not None else None,
            absolute_margin=cfg.absolute_margin if encode is not None else None,
            strategy=cfg.negative_sampling if encode is not None else "random", rng=rng, stats=stats)
        texts = stage.text[picked].tolist()
        if len(texts) < n:
            stats.per_positive_short += 1
            texts += _random_fill(catalog_texts, labelled[q] | set(texts), n - len(texts), rng)
            stats.filled_random += n - len(picked)
        for j in range(n):
            chosen_cols[j].append(texts[j])
    if n == 1:
        columns["negative"] = chosen_cols[0]
    else:
        for j in range(n):
            columns[f"negative_{j + 1}"] = chosen_cols[j]
    return pa.table({k: pa.array(v, pa.string()) for k, v in columns.items()}), stats.as_dict()


def _random_fill(catalog_texts: np.ndarray, exclude: set[str], k: int, rng: np.random.Generator) -> list[str]:
    out: list[str] = []
    for _ in range(50 * k + 50):
        if len(out) == k or len(catalog_texts) == 0:
            break
        t = str(catalog_texts[rng.integers(len(catalog_texts))])
        if t and t not in exclude and t not in out:
            out.append(t)
    while len(out) < k:  # a catalog with nothing else: repeat what there is
        out.append(str(catalog_texts[rng.integers(len(catalog_texts))]) if len(catalog_texts) else "")
    return out


def cosent_examples(stage: TrainingRows, spec: TrainingStage, rng: np.random.Generator) -> tuple[pa.Table, dict]:
    """(query, item, graded target) for every row of the stage (capped per query)."""
    idx = sample_per_query(stage.query_id, spec.max_examples, rng)
    table = pa.table({"sentence1": pa.array(stage.query[idx].tolist(), pa.string()),
                      "sentence2": pa.array(stage.text[idx].tolist(), pa.string()),
                      "score": pa.array(stage.target[idx], pa.float32())})
    return table, {"pairs": len(idx), "targets": sorted({round(float(t), 4) for t in stage.target[idx]})[:20]}


def margin_examples(stage: TrainingRows, spec: TrainingStage, rng: np.random.Generator) -> tuple[pa.Table, dict]:
    """(query, better item, worse item, target margin) within each query."""
    n = max(1, spec.negatives)
    idx = sample_per_query(stage.query_id, spec.max_examples, rng)
    q_col, p_col, n_col, label = [], [], [], []
    rows_of = groups(stage.query_id)
    for i in idx:
        mine = rows_of[str(stage.query_id[i])]
        same = mine[stage.target[mine] < stage.target[i] - 1e-6]
        for j in rng.permutation(same)[:n]:
            q_col.append(stage.query[i])
            p_col.append(stage.text[i])
            n_col.append(stage.text[j])
            label.append(float(stage.target[i] - stage.target[j]))
    table = pa.table({"query": pa.array(q_col, pa.string()), "positive": pa.array(p_col, pa.string()),
                      "negative": pa.array(n_col, pa.string()), "label": pa.array(label, pa.float32())})
    return table, {"triples": table.num_rows}


def stage_examples(
    rows: TrainingRows, levels: Sequence[int], spec: TrainingStage, cfg: TwoTowerConfig, scale: GradeScale,
    encode: Encoder | None, catalog_texts: np.ndarray,
) -> tuple[pa.Table, dict]:
    """The examples of stage ``spec`` (rows of ``levels``) for its loss, and what was done.

    Args:
        rows: every training row.
        levels: the curriculum levels of the stage.
        spec: the stage's loss and caps.
        cfg: the ``twotower`` section (grades, margins, sampling).
        scale: the grade scale.
        encode: the stage's starting model (texts -> normalised vectors), for the filter.
        catalog_texts: item texts random fill-in negatives are drawn from.
    """
    rng = np.random.default_rng([cfg.seed, spec.stage])
    stage = rows.subset(np.isin(rows.level, list(levels)))
    if spec.loss in CONTRASTIVE:
        table, stats = contrastive_examples(stage, spec, cfg, scale, encode, catalog_texts, rng)
    elif spec.loss == "cosent":
        table, stats = cosent_examples(stage, spec, rng)
    else:
        table, stats = margin_examples(stage, spec, rng)
    stats.update({"rows": len(stage), "examples": table.num_rows, "levels": list(levels), "loss": spec.loss,
                  "queries": len(np.unique(stage.query_id))})
    return table, stats
