"""Per-query retrieval metrics on human judgments, computed by ir-measures (pytrec_eval).

Metrics, per query, at cutoffs ``k`` (10) and ``recall_k`` (100):

- ``ndcg@k``: nDCG with the grade scale's own gains (ESCI: 0, 0.01, 0.1, 1), unjudged
  retrieved items counted as irrelevant (gain 0); ``ndcg@k_judged``: the same on the
  condensed list (unjudged items removed before the cutoff; ir-measures' ``judged_only``).
  The ideal DCG is that of the query's judged items. pytrec_eval takes integer relevance
  only, so the gains are scaled by a power of ten to integers (nDCG is a ratio of two
  sums of gains and does not change; see :func:`integer_gains`).
- ``recall@recall_k`` / ``recall@recall_k_judged``: the share of the query's relevant judged
  items (grade ``>= relevant_grade``) in the top ``recall_k``, of the full / condensed list.
- ``rating0@k``: the share of grade-0 items in the top ``k`` (of ``min(k, retrieved)``),
  unjudged items counted as grade 0 (``1 - Judged@k`` over the items judged better than 0);
  ``rating0@k_judged``: the share of grade-0 items in the first ``k`` judged items.
- ``judged@k``: the share of the top ``k`` that humans judged (ir-measures' ``Judged@k``).

Undefined values are NaN and left out of means: nDCG for a query without a judged item of
positive gain, recall without a relevant judged item, the ``judged``/``rating0`` shares of
an empty list. A judged query the run has no results for scores 0 (nDCG, recall).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import ir_measures
import pyarrow as pa
from ir_measures import Judged, R, nDCG

from relforge.errors import ConfigError
from relforge.evaluate._inputs import Run, read_grades, read_run
from relforge.grades import GradeScale
from relforge.logs import get_logger, log_event

log = get_logger("evaluate")
_INT_MAX = 2**31 - 1


@dataclass(frozen=True)
class MetricSettings:
    """The cutoffs and the relevance threshold.

    Args:
        k: the cutoff of nDCG, rating-0 and the judged share.
        recall_k: the cutoff of recall.
        relevant_grade: the least grade that counts as relevant for recall (default:
            :func:`default_relevant_grade` of the scale).
    """

    k: int = 10
    recall_k: int = 100
    relevant_grade: int | None = None

    def names(self) -> list[str]:
        """The metric columns, in order."""
        k, rk = self.k, self.recall_k
        return [f"ndcg@{k}", f"ndcg@{k}_judged", f"recall@{rk}", f"recall@{rk}_judged",
                f"rating0@{k}", f"rating0@{k}_judged", f"judged@{k}"]


def default_relevant_grade(scale: GradeScale) -> int:
    """The least grade whose gain is at least half the top gain (ESCI: Exact; a 0/1/2
    scale: 1).

    Example:
        >>> from relforge.grades import ESCI
        >>> default_relevant_grade(ESCI)
        3
    """
    top = max(scale.gains)
    return next(g for g, gain in enumerate(scale.gains) if gain >= top / 2)


def integer_gains(scale: GradeScale) -> tuple[dict[int, int], int]:
    """The scale's gains times the least power of ten that makes them integers.

    pytrec_eval (ir-measures' provider for nDCG with custom gains) refuses non-integer
    relevance ("Expected relevance to be integer"); multiplying every gain by the same
    factor leaves nDCG unchanged. Gains with more decimals than fit are rounded at the
    largest factor that keeps them under 2**31 (a warning says how much they moved).

    Returns:
        ``({grade: integer gain}, factor)``.

    Example:
        >>> from relforge.grades import ESCI
        >>> integer_gains(ESCI)
        ({0: 0, 1: 1, 2: 10, 3: 100}, 100)
    """
    gains = [float(g) for g in scale.gains]
    if any(g < 0 for g in gains):
        raise ConfigError(f"grade scale {scale.name}: negative gains {gains} are not supported by nDCG")
    top = max(gains) or 1.0
    factor = 1
    while factor <= 10**9 and top * factor <= _INT_MAX:
        if all(abs(g * factor - round(g * factor)) <= 1e-6 for g in gains):
            return {i: round(g * factor) for i, g in enumerate(gains)}, factor
        factor *= 10
    factor //= 10
    scaled = {i: round(g * factor) for i, g in enumerate(gains)}
    moved = max(abs(scaled[i] / factor - g) / (g or 1.0) for i, g in enumerate(gains))
    log_event(log, "gains rounded for pytrec_eval", level=30, scale=scale.name, factor=factor, max_rel_error=moved)
    return scaled, factor


def per_query_metrics(
    run: pa.Table | Run,
    judgments: pa.Table,
    scale: GradeScale,
    settings: MetricSettings | None = None,
) -> pa.Table:
    """The metrics of every judged query (see the module docstring for their definitions).

    Args:
        run: ``query_id``, ``item_id`` and ``rank`` (1 = best) or ``score``; or a :class:`Run`.
        judgments: human ``query_id``, ``item_id``, ``grade`` (the queries evaluated are
            the judged ones; filter it to the test split first).
        scale: the grade scale (names, gains).
        settings: cutoffs and relevance threshold.

    Returns:
        One row per judged query: ``query_id``, ``retrieved`` (list length) and one
        float64 column per metric (:meth:`MetricSettings.names`).

    Example:
        >>> run = pa.table({"query_id": ["q"] * 2, "item_id": ["a", "b"], "rank": [1, 2]})
        >>> judged = pa.table({"query_id": ["q", "q"], "item_id": ["a", "b"], "grade": [1, 3]})
        >>> from relforge.grades import ESCI
        >>> round(per_query_metrics(run, judged, ESCI)["ndcg@10"][0].as_py(), 4)
        0.6369
    """
    settings = settings or MetricSettings()
    run = run if isinstance(run, Run) else read_run(run)
    qrels = read_grades(judgments, scale, "judgments")
    k, rk = settings.k, settings.recall_k
    relevant = default_relevant_grade(scale) if settings.relevant_grade is None else settings.relevant_grade
    if not 0 <= relevant < scale.n:
        raise ConfigError(f"relevant_grade {relevant} is not a grade of the {scale.name} scale")
    gains, _factor = integer_gains(scale)
    names = settings.names()
    measures = {
        nDCG(cutoff=k, gains=gains): names[0],
        nDCG(cutoff=k, gains=gains, judged_only=True): names[1],
        R(cutoff=rk, rel=relevant): names[2],
        R(cutoff=rk, rel=relevant, judged_only=True): names[3],
        Judged @ k: names[6],
    }
    full_run = run.ir_measures_run()
    values: dict[str, dict[str, float]] = {q: {} for q in qrels}
    for metric in ir_measures.iter_calc(list(measures), qrels, full_run):
        if metric.query_id in values:
            values[metric.query_id][measures[metric.measure]] = float(metric.value)
    # rating-0: the Judged@k share over the subset of items of interest
    better = {q: {i: 1 for i, g in items.items() if g >= 1} for q, items in qrels.items()}
    share_better = _judged_share(better, full_run, k)
    zero = {q: {i: 1 for i, g in items.items() if g == 0} for q, items in qrels.items()}
    condensed = {q: {i: s for i, s in full_run.get(q, {}).items() if i in qrels[q]} for q in qrels}
    condensed = {q: dict(sorted(d.items(), key=lambda x: -x[1])[:k]) for q, d in condensed.items() if d}
    share_zero = _judged_share(zero, condensed, k)

    rows: dict[str, list[object]] = {"query_id": [], "retrieved": [], **{n: [] for n in names}}
    for q, judged in qrels.items():
        v = values[q]
        n_retrieved = len(run.ranking.get(q, ()))
        has_gain = any(scale.gains[g] > 0 for g in judged.values())
        has_relevant = any(g >= relevant for g in judged.values())
        out = {
            names[0]: v.get(names[0], 0.0) if has_gain else math.nan,
            names[1]: v.get(names[1], 0.0) if has_gain else math.nan,
            names[2]: v.get(names[2], 0.0) if has_relevant else math.nan,
            names[3]: v.get(names[3], 0.0) if has_relevant else math.nan,
            names[4]: 1.0 - share_better.get(q, 0.0) if n_retrieved else math.nan,
            names[5]: share_zero.get(q, 0.0) if q in condensed else math.nan,
            names[6]: v.get(names[6], 0.0) if n_retrieved else math.nan,
        }
        rows["query_id"].append(q)
        rows["retrieved"].append(n_retrieved)
        for name in names:
            rows[name].append(out[name])
    unjudged_queries = len(set(run.ranking) - set(qrels))
    log_event(log, "per-query metrics", queries=len(qrels), run_queries_without_judgments=unjudged_queries,
              relevant_grade=relevant)
    schema = pa.schema([("query_id", pa.string()), ("retrieved", pa.int32())] + [(n, pa.float64()) for n in names])
    return pa.table(rows, schema=schema)


def _judged_share(subset: dict[str, dict[str, int]], run: dict[str, dict[str, float]], k: int) -> dict[str, float]:
    """ir-measures' ``Judged@k`` with ``subset`` as the "judged" items: the share of the
    top ``min(k, list length)`` that is in ``subset``, per query (absent: none of it)."""
    subset = {q: items for q, items in subset.items() if items}
    return {m.query_id: float(m.value) for m in ir_measures.iter_calc([Judged @ k], subset, run)}
