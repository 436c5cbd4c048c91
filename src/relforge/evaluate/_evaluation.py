"""Every system scored on the test split's human judgments with this package's metrics: means
and bootstrap intervals (over queries, per segment where the data has segments), paired tests
against the reference system, both unjudged conventions, and the prediction-powered nDCG."""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from relforge.config import EvaluateConfig
from relforge.errors import InputError
from relforge.evaluate._metrics import MetricSettings, per_query_metrics
from relforge.evaluate._ppi import ppi_ndcg
from relforge.evaluate._segments import metrics_by_segment
from relforge.evaluate._stats import compare_systems
from relforge.evaluate._systems import System
from relforge.grades import GradeScale
from relforge.logs import get_logger, log_event

log = get_logger("evaluate")


def headline_metrics(settings: MetricSettings) -> list[str]:
    """nDCG@k, rating-0@k and Recall@recall_k, unjudged items counted as irrelevant."""
    return [f"ndcg@{settings.k}", f"rating0@{settings.k}", f"recall@{settings.recall_k}"]


def evaluate_systems(
    systems: list[System],
    judgments: pa.Table,
    queries: pa.Table,
    scale: GradeScale,
    cfg: EvaluateConfig,
    model_labels: pa.Table | None,
) -> tuple[list[dict[str, Any]], pa.Table]:
    """Metrics, intervals, paired tests and the prediction-powered estimate of each system.

    Args:
        systems: the systems, the reference (``cfg.reference``) among them or first.
        judgments: human judgments of the evaluated queries.
        queries: the ``queries`` table (its ``segment`` column, when there is one).
        scale: the grade scale (gains).
        cfg: the ``evaluate`` section.
        model_labels: the cascade's labels for the prediction-powered estimate (``None``: skipped).

    Returns:
        One result per system, and every system's per-query metrics in one table (``system`` column).
    """
    settings = MetricSettings(k=cfg.k, recall_k=cfg.recall_k)
    names = settings.names()
    boot = {"confidence": cfg.confidence, "n_resamples": cfg.bootstrap_reps, "seed": cfg.seed}
    per_query = {s.name: per_query_metrics(s.run, judgments, scale, settings) for s in systems}
    reference = next((s for s in systems if s.name == cfg.reference), systems[0] if systems else None)
    results, tables = [], []
    for system in systems:
        table = per_query[system.name]
        by_segment = metrics_by_segment(table, queries, names, **boot)
        result: dict[str, Any] = {
            "name": system.name, "label": system.label, "trained_on": system.trained_on,
            "circular": system.circular, "uri": system.uri, "queries": table.num_rows,
            "summary": {m: v.to_dict() for m, v in by_segment["all"].items()},
            "segments": {seg: {m: v.to_dict() for m, v in vals.items()} for seg, vals in by_segment.items()
                         if seg != "all"},
        }
        if reference is not None and system is not reference:
            result["paired"] = {}
            for metric in names:
                try:
                    cmp = compare_systems(table, per_query[reference.name], metric, confidence=cfg.confidence,
                                          n_resamples=cfg.paired_reps, seed=cfg.seed)
                    result["paired"][metric] = cmp.to_dict()
                except InputError as exc:
                    result["paired"][metric] = {"error": str(exc)}
        if model_labels is not None:
            try:
                est = ppi_ndcg(system.run, judgments, model_labels, scale, k=cfg.k, confidence=cfg.confidence,
                               n_resamples=cfg.bootstrap_reps, seed=cfg.seed)
                result["ppi"] = est.to_dict()
            except InputError as exc:
                result["ppi"] = {"error": str(exc)}
        results.append(result)
        tables.append(table.append_column("system", pa.array([system.name] * table.num_rows, pa.string())))
        s = result["summary"][names[0]]
        log_event(log, "system evaluated", system=system.name, ndcg=round(s["mean"], 4), queries=table.num_rows)
    combined = pa.concat_tables(tables) if tables else pa.table({"system": pa.array([], pa.string())})
    return results, combined
