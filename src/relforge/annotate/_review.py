"""The review queue: the pairs a human should judge next, and their export for annotation tools.

**How a pair is scored.** In the spirit of LARA (SIGIR 2025: ask humans where a label helps
the calibration of the model's relevance probabilities most), a labelled pair's priority is
the sampling variance of the calibrated accuracy estimate at its confidence::

    priority = c * (1 - c) / (n_bin + 1)

where ``c`` is the pair's calibrated confidence (the deciding tier's calibrated probability of
the grade it gave: its largest under ``calibrate.decision: most-probable``) and ``n_bin`` is the
number of calibration pairs whose calibrated confidence for that same tier fell into the same of
``review.bins`` equal-width confidence bins (``calibrators/cascade.json``). ``c (1 - c)`` is the
variance of one label's agreement at that confidence (largest near 0.5: the calibrated
probabilities are most uncertain), and dividing by ``n_bin + 1`` gives the variance of the bin's
accuracy estimate: high where the calib split covers that tier's confidence thinly. One more
human label there shrinks the calibration's uncertainty the most. In guaranteed mode, pairs no
tier accepted (``accepted = false``) come first (priority + 1). Ties are broken by the
normalised entropy of the calibrated probabilities, then by a seeded hash of the pair.

**Which pairs.** Labelled pairs of queries outside ``review.exclude_splits`` (default: the
test split, whose human grades are for evaluation only), not already judged by a human
(``judgments`` or ``reviews``). **Stratified** over (bucket, predicted grade): the budget is
shared evenly among the strata present, a stratum with fewer pairs than its share gives the
rest to the others, and each stratum contributes its highest-priority pairs. The labels are
streamed; memory holds at most ``budget`` pairs per stratum.

**Exports** (under ``review/`` on the bus): Label Studio tasks (``label-studio.json``, with the
cascade's grade as a prediction: ``model_version`` = the deciding tier, ``score`` = calibrated
confidence; and ``label-studio-config.xml``, the labelling interface), Argilla records
(``argilla.jsonl``, with a suggestion: ``score``, ``agent``), TREC qrels of the cascade's grades
(``qrels.txt``), and ``review.csv`` / ``review.jsonl`` with an empty ``grade`` column for the
human answer. ``review.blind`` hides the cascade's grade and confidence everywhere (no
predictions, no suggestions, no qrels): annotators who see a model's label agree with it more
(anchoring). The answers come back with ``relforge ingest reviews --file F --run R``.
"""

from __future__ import annotations

import csv
import hashlib
import heapq
import io
import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa

from relforge.bus import DataBus
from relforge.config import RelforgeConfig
from relforge.grades import GradeScale

QUEUE = "review_queue"
EXPORTS = "review"


def review_priority(confidence: np.ndarray, tier: np.ndarray, histograms: list[list[int]],
                    accepted: np.ndarray | None = None) -> np.ndarray:
    """``c (1 - c) / (n_bin + 1)`` per pair (see the module docstring); + 1 where not accepted.

    Example:
        >>> review_priority(np.array([0.5, 0.5, 0.95]), np.array([0, 1, 0]), [[0, 0, 10, 0], [0, 0, 0, 0]]).round(4).tolist()
        [0.0227, 0.25, 0.0475]
    """
    c = np.clip(np.asarray(confidence, dtype=np.float64), 0.0, 1.0)
    hist = np.asarray(histograms, dtype=np.float64)
    bins = hist.shape[1]
    b = np.minimum((c * bins).astype(np.int64), bins - 1)
    n_bin = hist[np.asarray(tier, dtype=np.int64), b]
    priority = c * (1.0 - c) / (n_bin + 1.0)
    if accepted is not None:
        priority = priority + (~np.asarray(accepted, dtype=bool)).astype(np.float64)
    return priority


def _entropy(probs: np.ndarray) -> np.ndarray:
    p = np.clip(probs, 1e-12, 1.0)
    return -(p * np.log(p)).sum(axis=1) / np.log(p.shape[1])


def _tie(seed: int, query_id: str, item_id: str) -> float:
    return int(hashlib.sha256(f"{seed}:{query_id}:{item_id}".encode()).hexdigest()[:12], 16) / 16**12


@dataclass(order=True)
class _Entry:
    key: tuple[float, float, float]
    row: dict[str, Any]


def allocate(sizes: dict[Any, int], budget: int) -> dict[Any, int]:
    """Share ``budget`` evenly among strata; a stratum smaller than its share gives the rest away.

    Example:
        >>> allocate({"a": 1, "b": 10, "c": 10}, 9)
        {'a': 1, 'b': 4, 'c': 4}
    """
    quota = {k: 0 for k in sizes}
    left = min(budget, sum(sizes.values()))
    open_ = sorted(k for k, v in sizes.items() if v > 0)
    while left > 0 and open_:
        share = max(1, left // len(open_))
        for k in list(open_):
            take = min(share, sizes[k] - quota[k], left)
            quota[k] += take
            left -= take
            if quota[k] >= sizes[k]:
                open_.remove(k)
            if left == 0:
                break
    return quota


def build_queue(bus: DataBus, config: RelforgeConfig, cascade: dict[str, Any], scale: GradeScale) -> pa.Table:
    """The review queue from the committed ``labels`` (see the module docstring), by priority."""
    cfg = config.review
    histograms = [t["confidence_histogram"] for t in cascade["tiers"]]
    if any(len(h) != cfg.bins for h in histograms):
        histograms = [_rebin(h, cfg.bins) for h in histograms]
    queries = bus.read_table("queries", columns=["query_id", "split"]).to_pydict()
    excluded = {q for q, s in zip(queries["query_id"], queries["split"]) if s in cfg.exclude_splits}
    judged: set[tuple[str, str]] = set()
    for table in ("judgments", "reviews"):
        if bus.is_committed(table):
            t = bus.read_table(table, columns=["query_id", "item_id"]).to_pydict()
            judged.update(zip(t["query_id"], t["item_id"]))
    columns = ["query_id", "item_id", "grade", "probs", "confidence", "tier", "tier_name", "model", "accepted", "bucket"]
    heaps: dict[tuple[str, int], list[_Entry]] = {}
    sizes: dict[tuple[str, int], int] = {}
    for batch in bus.scan("labels", columns, batch_rows=50_000):
        d = batch.to_pydict()
        probs = np.asarray(d["probs"], dtype=np.float64)
        if len(probs) == 0:
            continue
        priority = review_priority(np.asarray(d["confidence"]), np.asarray(d["tier"]), histograms,
                                   np.asarray(d["accepted"], dtype=bool))
        entropy = _entropy(probs)
        for i in range(len(probs)):
            q, item = d["query_id"][i], d["item_id"][i]
            if q in excluded or (q, item) in judged:
                continue
            stratum = (d["bucket"][i] or "", int(d["grade"][i]))
            sizes[stratum] = sizes.get(stratum, 0) + 1
            row = {k: d[k][i] for k in columns if k != "probs"}
            row["priority"] = float(priority[i])
            entry = _Entry((float(priority[i]), float(entropy[i]), _tie(cfg.seed, q, item)), row)
            heap = heaps.setdefault(stratum, [])
            if len(heap) < cfg.budget:
                heapq.heappush(heap, entry)
            elif heap and entry > heap[0]:
                heapq.heapreplace(heap, entry)
    quota = allocate({k: min(v, len(heaps.get(k, []))) for k, v in sizes.items()}, cfg.budget)
    chosen: list[_Entry] = []
    for stratum, n in quota.items():
        chosen += heapq.nlargest(n, heaps.get(stratum, []))
    chosen.sort(reverse=True)
    rows = [e.row for e in chosen]
    return pa.table({
        "query_id": pa.array([r["query_id"] for r in rows], pa.string()),
        "item_id": pa.array([r["item_id"] for r in rows], pa.string()),
        "grade": pa.array([r["grade"] for r in rows], pa.int8()),
        "confidence": pa.array([r["confidence"] for r in rows], pa.float32()),
        "tier": pa.array([r["tier"] for r in rows], pa.int8()),
        "priority": pa.array([r["priority"] for r in rows], pa.float64()),
        "bucket": pa.array([r["bucket"] or "" for r in rows], pa.string()),
        "tier_name": pa.array([r["tier_name"] for r in rows], pa.string()),
        "model": pa.array([r["model"] for r in rows], pa.string()),
        "accepted": pa.array([bool(r["accepted"]) for r in rows], pa.bool_()),
    })


def _rebin(hist: list[int], bins: int) -> list[int]:
    """A histogram of equal-width bins over [0, 1] re-cut into ``bins`` bins (counts spread evenly)."""
    src = np.asarray(hist, dtype=np.float64)
    edges = np.linspace(0, 1, len(src) + 1)
    cum = np.concatenate([[0.0], np.cumsum(src)])
    new_edges = np.linspace(0, 1, bins + 1)
    return np.diff(np.interp(new_edges, edges, cum)).round().astype(int).tolist()


def label_studio_config(scale: GradeScale) -> str:
    """The Label Studio labelling interface for the queue's tasks (one choice per grade)."""
    choices = "\n".join(f'    <Choice value="{name}"/>' for name in scale.names)
    return (
        "<View>\n"
        '  <Header value="Query"/>\n  <Text name="query" value="$query"/>\n'
        '  <Header value="Product"/>\n  <Text name="item" value="$item"/>\n'
        '  <Choices name="grade" toName="item" choice="single" showInline="true" required="true">\n'
        f"{choices}\n  </Choices>\n</View>\n"
    )


def export_queue(bus: DataBus, queue: pa.Table, config: RelforgeConfig, scale: GradeScale) -> dict[str, str]:
    """Write the queue for annotators (see the module docstring); returns the URIs written."""
    blind = config.review.blind
    rows = queue.to_pylist()
    ids = {r["query_id"] for r in rows}
    items = {r["item_id"] for r in rows}
    q = bus.read_table("queries", columns=["query_id", "query"]).to_pydict()
    query_text = {k: v for k, v in zip(q["query_id"], q["query"]) if k in ids}
    field = config.finetune.item_field
    c = bus.read_table("catalog", columns=["item_id", "title", field] if field != "title" else ["item_id", "title"])
    cd = c.to_pydict()
    item_text = {k: (v or "") for k, v in zip(cd["item_id"], cd[field]) if k in items}
    titles = {k: v for k, v in zip(cd["item_id"], cd["title"]) if k in items}

    tasks, records, qrels, flat = [], [], [], []
    for n, r in enumerate(rows, start=1):
        grade_name = scale.names[r["grade"]]
        data = {"query_id": r["query_id"], "item_id": r["item_id"], "query": query_text.get(r["query_id"], ""),
                "title": titles.get(r["item_id"], ""), "item": item_text.get(r["item_id"], ""), "bucket": r["bucket"]}
        task: dict[str, Any] = {"id": n, "data": data}
        if not blind:
            task["predictions"] = [{
                "model_version": r["tier_name"], "score": round(float(r["confidence"]), 6),
                "result": [{"from_name": "grade", "to_name": "item", "type": "choices",
                            "value": {"choices": [grade_name]}}],
            }]
        tasks.append(task)
        record: dict[str, Any] = {
            "id": f"{r['query_id']}::{r['item_id']}",
            "fields": {"query": data["query"], "item": data["item"]},
            "metadata": {"query_id": r["query_id"], "item_id": r["item_id"], "bucket": r["bucket"],
                         "priority": r["priority"]},
        }
        if not blind:
            record["suggestions"] = [{"question_name": "grade", "value": grade_name,
                                      "score": round(float(r["confidence"]), 6),
                                      "agent": f"relforge {r['tier_name']} ({r['model']})"}]
        records.append(record)
        qrels.append(f"{r['query_id']} 0 {r['item_id']} {r['grade']}")
        flat.append({**{k: data[k] for k in ("query_id", "item_id", "query", "title", "item", "bucket")},
                     **({} if blind else {"cascade_grade": grade_name, "cascade_confidence": round(float(r["confidence"]), 6),
                                          "cascade_tier": r["tier_name"]}),
                     "grade": ""})
    written = {
        "label-studio": bus.write_text(f"{EXPORTS}/label-studio.json", json.dumps(tasks, indent=1, ensure_ascii=False)),
        "label-studio-config": bus.write_text(f"{EXPORTS}/label-studio-config.xml", label_studio_config(scale)),
        "argilla": bus.write_text(f"{EXPORTS}/argilla.jsonl",
                                  "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)),
        "jsonl": bus.write_text(f"{EXPORTS}/review.jsonl", "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in flat)),
    }
    buffer = io.StringIO()
    header = list(flat[0]) if flat else ["query_id", "item_id", "query", "title", "item", "bucket", "grade"]
    writer = csv.DictWriter(buffer, fieldnames=header)
    writer.writeheader()
    writer.writerows(flat)
    written["csv"] = bus.write_text(f"{EXPORTS}/review.csv", buffer.getvalue())
    if not blind:
        written["qrels"] = bus.write_text(f"{EXPORTS}/qrels.txt", "".join(line + "\n" for line in qrels))
    elif bus.exists(f"{EXPORTS}/qrels.txt"):  # a blind export leaves no model grade behind
        bus.write_text(f"{EXPORTS}/qrels.txt", "")
    return written
