"""Step ``evaluate``: every system on the test split's human judgments (see :mod:`relforge.evaluate`)."""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from relforge.bus import DataBus
from relforge.config import RelforgeConfig
from relforge.errors import InputError
from relforge.evaluate._cascade_labels import cascade_labels
from relforge.evaluate._evaluation import evaluate_systems
from relforge.evaluate._inputs import read_grades
from relforge.evaluate._metrics import MetricSettings
from relforge.evaluate._report import REPORT_MD, write_report
from relforge.evaluate._systems import gather_systems
from relforge.evaluate.rounds import REPORT_MD as ROUNDS_MD
from relforge.grades import read_grade_scale
from relforge.logs import get_logger

log = get_logger("evaluate")
PER_QUERY = "evaluation"


def run_evaluate(bus: DataBus, config: RelforgeConfig) -> dict[str, Any]:
    """Score every system (the run's retriever, BM25, the ablations, the second round) on the
    human judgments of ``evaluate.split``; write the report, its plots, the KFP metrics, the
    ablation table and the per-query metrics (table ``evaluation``).

    Raises:
        InputError: no judged query in the split, or no system to evaluate.
    """
    cfg = config.evaluate
    scale = read_grade_scale(bus)
    settings = MetricSettings(k=cfg.k, recall_k=cfg.recall_k)
    queries = bus.read_table("queries")
    split = dict(zip(queries.column("query_id").to_pylist(), queries.column("split").to_pylist()))
    text = dict(zip(queries.column("query_id").to_pylist(), queries.column("query").to_pylist()))
    judgments = bus.read_table("judgments", columns=["query_id", "item_id", "grade"])
    judgments = judgments.filter(pc.is_in(judgments.column("query_id"), value_set=pa.array(
        sorted(q for q, s in split.items() if s == cfg.split), pa.string())))
    if judgments.num_rows == 0:
        raise InputError(bus.uri("judgments"), None, "query_id", f"no human judgment of a `{cfg.split}` query")
    judged = read_grades(judgments, scale, "judgments")
    query_text = {q: text[q] for q in judged}
    depth = max(cfg.recall_k, cfg.k)
    systems = gather_systems(bus, config, query_text, depth)
    if not systems:
        raise InputError(bus.uri("retrieval"), None, None, "no system to evaluate: run `relforge export-index` "
                         "(or set evaluate.bm25: true)")
    model_labels, label_stats = (None, {})
    if cfg.ppi:
        model_labels, label_stats = cascade_labels(bus, config, scale, [s.run for s in systems], judged,
                                                   query_text, cfg.k)
    results, per_query = evaluate_systems(systems, judgments, queries, scale, cfg, model_labels)
    bus.write_table(PER_QUERY, per_query, metadata={"split": cfg.split, "systems": [s.name for s in systems]})
    summary: dict[str, Any] = {
        "split": cfg.split, "queries": len(judged), "judgments": judgments.num_rows,
        "judged_per_query": judgments.num_rows / max(len(judged), 1), "reference": cfg.reference,
        "systems": results, "cascade_labels": label_stats, "grades": scale.names, "dataset": scale.name,
        "labels_note": (f"Cascade labels: {label_stats.get('from_labels', 0):,} from `labels`, "
                        f"{label_stats.get('labelled_now', 0) + label_stats.get('reused', 0):,} made by this step, "
                        f"{label_stats.get('missing', 0):,} missing.") if label_stats else "",
        "second_round": ROUNDS_MD if bus.exists(ROUNDS_MD) else None,
    }
    write_report(bus, summary, settings)
    k = cfg.k
    head = next((r for r in results if r["name"] == cfg.reference), results[0])
    s = head["summary"][f"ndcg@{k}"]
    z = head["summary"][f"rating0@{k}"]
    return {"systems": [r["name"] for r in results], "queries": len(judged),
            "reference": {m: head["summary"][m]["mean"] for m in head["summary"]},
            "decided": f"{len(results)} system(s) on {len(judged)} {cfg.split} queries; {head['label']}: "
                       f"NDCG@{k} {s['mean']:.3f} [{s['low']:.3f}, {s['high']:.3f}], rating-0@{k} {z['mean']:.1%} "
                       f"(human labels); report {bus.uri(REPORT_MD)}"}
