"""Step ``annotate``: every candidate through the calibrated cascade, in committed shards; the
cost ledger; the review queue.

- **Sharded and resumable.** The chosen candidates are cut into shards of
  ``annotate.shard_rows`` (:mod:`~relforge.annotate._candidates`); each shard's labels are
  committed on their own (:meth:`relforge.bus.DataBus.sharded_writer`), so a killed run resumes
  at the first shard not committed, with no label lost or duplicated. Memory holds one shard.
- **Failures.** A pair a tier failed to score is never labelled (:mod:`~relforge.annotate._cascade`).
  Its shard stays uncommitted; the pairs of that shard that were labelled are kept aside
  (``cache/annotate/<table fingerprint>/shard-NNNNN``) so the next run scores only the failed
  ones; the other shards go on; the step then ends with
  :class:`~relforge.errors.AnnotationIncompleteError` naming how many pairs failed, at which
  tier and why. A rerun retries them.
- **Budget.** ``annotate.max_budget`` (in the tiers' cost units) stops the run after the shard
  that reaches it, with the same error and the same resumability.
- **Ledger.** Before any scoring, the estimated cost (candidates x each tier's measured cost
  per pair x the calibrated routing's share reaching it); during and after, the actual seconds,
  cost and tokens per tier: ``reports/annotate-ledger.json`` (:mod:`~relforge.annotate._ledger`).
- **Labels.** Per pair: grade, calibrated probabilities, confidence, deciding tier (position and
  name), summed cost, model and model fingerprint, whether the threshold accepted it, bucket,
  tokens.
- **Review queue** (``review.enabled``): :mod:`~relforge.annotate._review`, once every shard is
  committed.
"""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

import numpy as np
import pyarrow as pa

from relforge.annotate._candidates import chosen_queries, count_shards, iter_shards
from relforge.annotate._cascade import Cascade, Labelled
from relforge.annotate._ledger import LEDGER, Ledger, estimate_cost
from relforge.annotate._review import QUEUE, build_queue, export_queue
from relforge.bus import DataBus
from relforge.calibrate import read_cascade
from relforge.compute import release_freed_memory
from relforge.config import RelforgeConfig
from relforge.errors import AnnotationIncompleteError, CalibrationGateError, InputError
from relforge.grades import GRADE_SCALE_KEY, read_grade_scale
from relforge.logs import get_logger, log_event, track
from relforge.tiers import Pair

log = get_logger("annotate")

LABELS = "labels"
PARTIAL = "cache/annotate"
REPORT_MD = "reports/annotate.md"
METRICS_JSON = "reports/annotate-metrics.json"


def _partial_name(fingerprint: str, shard: int) -> str:
    return f"{PARTIAL}/{fingerprint}/shard-{shard:05d}"


def _labels_table(candidates: pa.Table, out: Labelled, rows: np.ndarray, cascade: Cascade) -> pa.Table:
    """The ``labels`` rows of the labelled pairs ``rows`` (positions in ``candidates``)."""
    tiers = cascade.tiers
    tier = out.tier[rows].astype(np.int64)
    return pa.table({
        "query_id": candidates.column("query_id").take(pa.array(rows)),
        "item_id": candidates.column("item_id").take(pa.array(rows)),
        "grade": pa.array(out.grade[rows], pa.int8()),
        "probs": pa.array([p.tolist() for p in out.probs[rows]], pa.list_(pa.float32())),
        "confidence": pa.array(out.confidence[rows], pa.float32()),
        "tier": pa.array(tier, pa.int8()),
        "cost": pa.array(out.cost[rows], pa.float32()),
        "model": pa.array([tiers[t].ref for t in tier], pa.string()),
        "model_fingerprint": pa.array([tiers[t].fingerprint for t in tier], pa.string()),
        "tier_name": pa.array([tiers[t].name for t in tier], pa.string()),
        "accepted": pa.array(out.accepted[rows], pa.bool_()),
        "bucket": candidates.column("bucket").take(pa.array(rows)),
        "tokens": pa.array(out.tokens[rows], pa.int32()),
    })


def _pairs(candidates: pa.Table, query_text: dict[str, str], item_text: dict[str, str]) -> list[Pair]:
    return [Pair(query_text[q], item_text.get(i, "")) for q, i in
            zip(candidates.column("query_id").to_pylist(), candidates.column("item_id").to_pylist())]


def _check_gate(bus: DataBus, cascade: dict[str, Any]) -> None:
    gate = cascade.get("gate") or {}
    if gate.get("enabled", True) and not gate.get("passed", False):
        raise CalibrationGateError(
            f"the calibrated cascade failed its gate ({'; '.join(gate.get('reasons') or ['no verdict'])}); no label is "
            f"made from it. See {bus.uri('reports/calibration.md')}"
        )


def _fingerprint_inputs(bus: DataBus, config: RelforgeConfig, cascade: dict[str, Any]) -> tuple[dict[str, str], str]:
    inputs = bus.input_digests("candidates", "catalog", "queries")
    inputs["cascade"] = hashlib.sha256(json.dumps(
        {k: cascade[k] for k in ("tiers", "thresholds", "guaranteed_thresholds", "mode", "method")},
        sort_keys=True, default=str).encode()).hexdigest()[:16]
    settings = config.annotate.model_dump(mode="json", exclude={"max_budget"})
    settings["item_field"] = config.finetune.item_field
    return inputs, hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]


def run_annotate(bus: DataBus, config: RelforgeConfig) -> dict[str, Any]:
    """Label the chosen candidates with the calibrated cascade (see the module docstring).

    Args:
        bus: the run's bus (``candidates``, ``catalog``, ``queries``, ``calibrators/``, ``models/``).
        config: the run's configuration (sections ``annotate``, ``review``, ``tiers``, ``models``).

    Returns:
        A summary (rows, shares per tier, the ledger, the review queue) with a ``decided`` line.

    Raises:
        CalibrationGateError: the cascade on the bus failed its gate.
        AnnotationIncompleteError: pairs failed to score, or ``max_budget`` was reached; the
            committed shards are kept and a rerun resumes.
        InputError: no candidate for the chosen queries.
    """
    started = time.perf_counter()
    cfg = config.annotate
    scale = read_grade_scale(bus)
    cascade_doc = read_cascade(bus)
    _check_gate(bus, cascade_doc)
    queries = bus.read_table("queries", columns=["query_id", "query", "split"])
    chosen = chosen_queries(queries, cfg)
    shards = count_shards(bus, chosen, cfg.shard_rows)
    if shards.rows == 0:
        raise InputError(bus.uri("candidates"), None, "query_id", "no candidate for the chosen queries "
                         f"(annotate.splits={cfg.splits}, annotate.max_queries={cfg.max_queries})")
    inputs, config_hash = _fingerprint_inputs(bus, config, cascade_doc)
    metadata = {GRADE_SCALE_KEY: scale.model_dump(), "cascade": {k: cascade_doc[k] for k in ("mode", "method", "thresholds")},
                "tiers": [{k: t[k] for k in ("name", "backend", "model", "model_fingerprint")} for t in cascade_doc["tiers"]]}
    failures: dict[str, int] = {}
    first_errors: dict[str, str] = {}
    with bus.sharded_writer(LABELS, shards.n_shards, metadata=metadata, inputs=inputs, config_hash=config_hash) as writer:
        pending = writer.pending()
        estimate = estimate_cost(round(shards.rows * len(pending) / shards.n_shards), cascade_doc["tiers"],
                                 cascade_doc["crossfit"]["shares"])
        ledger = Ledger([t["name"] for t in cascade_doc["tiers"]], estimate, cfg.max_budget, shards.n_shards,
                        shards.n_shards - len(pending))
        bus.write_json(LEDGER, ledger.as_dict())
        if pending:
            log_event(log, "annotating", candidates=shards.rows, shards=shards.n_shards, pending=len(pending),
                      estimated_cost=round(estimate["cost"], 3))
            if cfg.max_budget is not None and estimate["cost"] > cfg.max_budget:
                log_event(log, f"the estimated cost {estimate['cost']:.4g} exceeds annotate.max_budget "
                          f"{cfg.max_budget:.4g}: the run will stop when the budget is spent (resumable)", level=30)
            query_text = dict(zip(queries.column("query_id").to_pylist(), queries.column("query").to_pylist()))
            field = config.finetune.item_field
            catalog = bus.read_table("catalog", columns=["item_id", field])
            texts = ["" if t is None else str(t) for t in catalog.column(field).to_pylist()]
            item_text = dict(zip(catalog.column("item_id").to_pylist(), texts))
            del catalog
            cascade = Cascade(bus, config, cascade_doc, scale, catalog_texts=texts)
            try:
                stream = iter_shards(bus, chosen, cfg.shard_rows, set(pending))
                for shard, candidates in track(stream, f"annotate: {len(pending)} shard(s) of {cfg.shard_rows}",
                                               total=len(pending)):
                    _label_shard(bus, writer, cascade, shard, candidates, query_text, item_text, ledger,
                                 failures, first_errors)
                    bus.write_json(LEDGER, ledger.as_dict())
                    release_freed_memory()  # freed heap pages back to the OS (glibc), shard after shard
                    if ledger.budget_reached and len(writer.pending()) > 0:
                        ledger.stopped = f"budget: spent {ledger.cost:.4g} of annotate.max_budget {cfg.max_budget:.4g}"
                        break
            finally:
                cascade.close()
        left = writer.pending()
        if left:
            ledger.stopped = ledger.stopped or f"{sum(failures.values())} pair(s) failed"
            bus.write_json(LEDGER, ledger.as_dict())
            raise AnnotationIncompleteError(_incomplete_message(bus, ledger, left, shards.n_shards, failures,
                                                                first_errors))
    ledger.stopped = None
    bus.write_json(LEDGER, ledger.as_dict())
    manifest = bus.manifest(LABELS)
    summary: dict[str, Any] = {"labels": manifest.rows, "shards": shards.n_shards, "ledger": ledger.as_dict(),
                               "seconds": round(time.perf_counter() - started, 1)}
    tiers = bus.read_table(LABELS, columns=["tier"]).column("tier").to_numpy()
    shares = np.bincount(tiers.astype(np.int64), minlength=len(cascade_doc["tiers"])) / max(len(tiers), 1)
    summary["shares"] = {t["name"]: float(s) for t, s in zip(cascade_doc["tiers"], shares)}
    if config.review.enabled:
        queue = build_queue(bus, config, cascade_doc, scale)
        bus.write_table(QUEUE, queue, metadata={GRADE_SCALE_KEY: scale.model_dump(), "blind": config.review.blind},
                        inputs={"labels": manifest.digest()}, config_hash=config.section_hash("review"))
        summary["review"] = {"pairs": queue.num_rows, "exports": export_queue(bus, queue, config, scale)}
    write_report(bus, summary, cascade_doc)
    split = ", ".join(f"{n} {s:.0%}" for n, s in summary["shares"].items())
    summary["decided"] = (f"{manifest.rows:,} labels (decided: {split}); cost {ledger.cost:.4g} this run "
                          f"(estimated {ledger.estimate['cost']:.4g})"
                          + (f"; review queue {summary['review']['pairs']} pairs" if "review" in summary else ""))
    return summary


def _label_shard(bus, writer, cascade: Cascade, shard: int, candidates: pa.Table, query_text, item_text,
                 ledger: Ledger, failures: dict[str, int], first_errors: dict[str, str]) -> None:
    """Label one shard; commit it, or keep its labelled pairs aside when some pair failed."""
    partial_name = _partial_name(writer.fingerprint, shard)
    done: pa.Table | None = bus.read_table(partial_name) if bus.is_committed(partial_name) else None
    positions = np.arange(candidates.num_rows)
    todo = positions
    if done is not None:
        have = set(zip(done.column("query_id").to_pylist(), done.column("item_id").to_pylist()))
        keys = list(zip(candidates.column("query_id").to_pylist(), candidates.column("item_id").to_pylist()))
        todo = np.array([i for i in positions if keys[i] not in have], dtype=np.int64)
    subset = candidates.take(pa.array(todo)) if len(todo) != candidates.num_rows else candidates
    out = cascade.label(_pairs(subset, query_text, item_text), ledger)
    ok = np.flatnonzero(~out.failed)
    table = _labels_table(subset, out, ok, cascade)
    if done is not None:
        table = pa.concat_tables([done.select(table.column_names).cast(table.schema), table])
        order = {k: i for i, k in enumerate(zip(candidates.column("query_id").to_pylist(),
                                                 candidates.column("item_id").to_pylist()))}
        ranks = [order[k] for k in zip(table.column("query_id").to_pylist(), table.column("item_id").to_pylist())]
        table = table.take(pa.array(np.argsort(ranks, kind="stable")))
    n_failed = int(out.failed.sum())
    ledger.failed += n_failed
    if n_failed:
        for i in np.flatnonzero(out.failed):
            tier = (out.errors[i] or "?").split(":", 1)[0]
            failures[tier] = failures.get(tier, 0) + 1
            first_errors.setdefault(tier, out.errors[i] or "")
        bus.write_table(partial_name, table)
        log_event(log, "shard kept open: pairs failed", level=30, shard=shard, failed=n_failed, labelled=table.num_rows)
        return
    writer.write(shard, table)
    ledger.shards_committed += 1
    ledger.labelled += table.num_rows
    counts = np.bincount(out.tier[ok].astype(np.int64), minlength=len(cascade.tiers))
    log_event(log, "shard committed", shard=shard, pairs=table.num_rows,
              **{t.name: int(c) for t, c in zip(cascade.tiers, counts)})


def _incomplete_message(bus: DataBus, ledger: Ledger, left: list[int], total: int, failures: dict[str, int],
                        first_errors: dict[str, str]) -> str:
    done = total - len(left)
    parts = [f"{bus.uri(LABELS)}: {done} of {total} shard(s) committed, {len(left)} left"]
    if failures:
        detail = "; ".join(f"{n} at tier {t} (first: {first_errors[t][:300]})" for t, n in failures.items())
        parts.append(f"{sum(failures.values())} pair(s) could not be scored and were not labelled: {detail}")
    if ledger.stopped and ledger.stopped.startswith("budget"):
        parts.append(f"stopped at the {ledger.stopped}")
    parts.append("the committed shards are kept; rerun `relforge annotate` to retry and resume "
                 f"(ledger: {bus.uri(LEDGER)})")
    return ". ".join(parts)


def write_report(bus: DataBus, summary: dict[str, Any], cascade: dict[str, Any]) -> None:
    """``reports/annotate.md`` (shares, the ledger, the review queue) and its KFP ``Metrics`` numbers."""
    ledger = summary["ledger"]
    estimate, actual = ledger["estimate"], ledger["actual"]
    lines = [
        "# Annotation", "",
        (f"{summary['labels']:,} labels in {summary['shards']} committed shard(s); routing `{cascade['mode']}` with "
        f"`{cascade['method']}` calibrators (see reports/calibration.md). This run: {ledger['shards']['committed_now']} "
        f"shard(s) labelled, {ledger['shards']['committed_before']} already committed."), "",
        ("| tier | share of labels | expected share (calib) | pairs scored | seconds | pairs/s | cost | tokens |"
        " estimated pairs | estimated cost |"),
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for i, t in enumerate(cascade["tiers"]):
        a = actual["tiers"].get(t["name"], {})
        e = estimate["tiers"].get(t["name"], {})
        pps = a.get("pairs_per_second")
        lines.append(
            f"| {t['name']} ({t['backend']}) | {summary['shares'].get(t['name'], 0):.1%} | "
            f"{cascade['crossfit']['shares'][i]:.1%} | {a.get('pairs', 0):,} | {a.get('seconds', 0):.1f} | "
            f"{'-' if pps is None else f'{pps:.1f}'} | {a.get('cost', 0):.4g} | {a.get('tokens', 0):,} | "
            f"{e.get('pairs', 0):,.0f} | {e.get('cost', 0):.4g} |"
        )
    lines += ["", (f"Cost this run: {actual['cost']:.4g} (estimated before the run: {estimate['cost']:.4g}); "
              f"wall {actual['seconds']:.1f} s. Ledger: reports/annotate-ledger.json."), ""]
    if "review" in summary:
        lines += [(f"Review queue: {summary['review']['pairs']} pairs (table `review_queue`; exports under `review/`: "
                  "Label Studio, Argilla, TREC qrels, CSV, JSONL). Send the answers back with "
                  "`relforge ingest reviews --file F --run R`; the next `calibrate` uses them."), ""]
    bus.write_text(REPORT_MD, "\n".join(lines))
    bus.write_json(METRICS_JSON, {
        "labels": summary["labels"], "cost": actual["cost"], "estimated_cost": estimate["cost"],
        "seconds": actual["seconds"], "shares": summary["shares"],
        "review_pairs": summary.get("review", {}).get("pairs", 0),
    })
