"""Step ``export-index``: the catalog encoded by the trained model, an index built through
:mod:`relforge.index` (exact up to ``export.exact_max_items`` items, ANN above), its recall@10
against exact search measured on sampled queries, and, when the recall reaches
``export.min_recall``, the published export (index, item-id map, query encoder, manifest).

After publishing, the export is loaded back and the queries of ``export.retrieval_splits``
are searched into the ``retrieval`` table (what step ``evaluate`` scores), and the recall of
exact, HNSW and IVF-PQ search is measured against their speed for the report.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from relforge.bus import DataBus, fingerprint
from relforge.config import RelforgeConfig
from relforge.errors import RecallGateError
from relforge.logs import get_logger, log_event, track
from relforge.tiers import EmbeddingCache, has_words, load_encoder
from relforge.twotower._model import local_copy
from relforge.twotower._plots import plot_recall_qps
from relforge.twotower._retriever import EXPORT, EXPORT_DOC, Retriever, read_export

log = get_logger("twotower.export")

RETRIEVAL = "retrieval"
REPORT_JSON = "reports/index.json"
REPORT_MD = "reports/index.md"
METRICS_JSON = "reports/index-metrics.json"
FIGURES = "reports/index-figures"


def index_params(config: RelforgeConfig):
    """The :class:`relforge.index.IndexParams` of the export (``export`` section and its overrides)."""
    from relforge.index import IndexParams

    cfg = config.export
    return IndexParams().with_(served_exact_max_items=cfg.exact_max_items, served_ann_kind=cfg.ann_kind,
                               min_recall=cfg.min_recall, recall_sample=cfg.recall_sample, **cfg.index)


def _encode_items(encode, descriptor: dict, texts: list[str], config: RelforgeConfig) -> tuple[np.ndarray, np.ndarray]:
    """The catalog positions that have words and their vectors (cached per model version)."""
    cfg = config.export
    seq = descriptor["max_seq_length"]
    cache = EmbeddingCache(Path(config.models.cache_dir).expanduser() / "embeddings",
                           f"two-tower-{descriptor['version']}-{seq}")
    positions, key = cache.items_key(texts)
    vectors = cache.load(key)
    if vectors is None or len(vectors) != len(positions):
        chunk = max(cfg.batch_size * 16, 1024)
        kept = [texts[i] for i in positions]
        parts = [encode(kept[s:s + chunk]) for s in track(range(0, len(kept), chunk),
                                                          f"export: encoding {len(kept):,} items")]
        vectors = np.concatenate(parts) if parts else np.zeros((0, 1), np.float32)
        cache.save(key, vectors)
    return positions, vectors


def recall_qps_tradeoff(vectors: np.ndarray, queries: np.ndarray, params, n_single: int,
                        kinds: tuple[str, ...] = ("hnsw", "ivfpq")) -> list[dict[str, Any]]:
    """Recall@10 against exact search and single-query QPS of exact, HNSW (several ``ef_search``)
    and IVF-PQ (several ``nprobe``) on these vectors. A kind that cannot be built here (too few
    vectors to train IVF-PQ) is left out."""
    from relforge.index import ItemIndex, recall_at_k

    k = 10
    q = queries[:n_single]
    exact = ItemIndex.build(vectors, kind="exact", params=params)
    truth, _ = exact.search(q, k)

    def point(index: ItemIndex, kind: str, setting: str, build_s: float) -> dict[str, Any]:
        found, _ = index.search(q, k)
        start = time.perf_counter()
        for i in range(len(q)):
            index.search(q[i:i + 1], k)
        seconds = time.perf_counter() - start
        return {"kind": kind, "setting": setting, "recall_at_10": round(recall_at_k(found, truth, k), 4),
                "qps": round(len(q) / max(seconds, 1e-9), 1), "build_s": round(build_s, 3)}

    points = [point(exact, "exact", "", exact.build_s)]
    variants = (("hnsw", "hnsw_ef_search", "ef_search", (16, 32, 64, 128, 256)),
                ("ivfpq", "ivf_nprobe", "nprobe", (4, 16, 64)))
    for kind, field, short, values in variants:
        if kind not in kinds:
            continue
        try:
            built = ItemIndex.build(vectors, kind=kind, params=params)
        except Exception as exc:  # noqa: BLE001 - e.g. too few vectors to train IVF-PQ: leave the kind out
            log_event(log, "trade-off: kind left out", kind=kind, reason=str(exc)[:200])
            continue
        for value in values:
            searched = ItemIndex(built.index, built.item_ids, params.with_(**{field: value}), built.build_s)
            points.append(point(searched, kind, f"{short}={value}", built.build_s))
    return points


def export_fingerprint(bus: DataBus, config: RelforgeConfig, version: str) -> str:
    inputs = {"model": version, **bus.input_digests("catalog", "queries")}
    return fingerprint(inputs, config.section_hash("export"))


def _retrieval_table(retriever: Retriever, bus: DataBus, config: RelforgeConfig) -> pa.Table:
    cfg = config.export
    queries = bus.read_table("queries", columns=["query_id", "query", "split"]).to_pydict()
    chosen = [(q, t) for q, t, s in zip(queries["query_id"], queries["query"], queries["split"])
              if s in cfg.retrieval_splits]
    qid, item, rank, score = [], [], [], []
    for start in range(0, len(chosen), 1024):
        part = chosen[start:start + 1024]
        ids, scores = retriever.search([t for _, t in part], cfg.retrieval_depth)
        for (q, _), found, row in zip(part, ids, scores):
            qid += [q] * len(found)
            item += found
            rank += list(range(1, len(found) + 1))
            score += row[: len(found)].tolist()
    return pa.table({"query_id": pa.array(qid, pa.string()), "item_id": pa.array(item, pa.string()),
                     "rank": pa.array(rank, pa.int32()), "score": pa.array(score, pa.float32())})


def run_export_index(bus: DataBus, config: RelforgeConfig) -> dict[str, Any]:
    """Encode, index, measure, gate, publish, search (see the module docstring).

    Raises:
        RecallGateError: the index's recall@10 is under ``export.min_recall`` (nothing published;
            the report says what was measured).
        NotCommittedError: no trained model on the bus.
    """
    from relforge.index import build_for_serving, publish

    cfg = config.export
    cache_dir = Path(config.models.cache_dir).expanduser()
    model_dir, descriptor = local_copy(bus, cache_dir)
    version = descriptor["version"]
    fp = export_fingerprint(bus, config, version)
    existing = read_export(bus)
    if existing is not None and existing.get("fingerprint") == fp and bus.is_committed(RETRIEVAL) \
            and bus.manifest(RETRIEVAL).metadata.get("export") == fp:
        return {"fingerprint": fp, "reused": True, "decided": f"index of model {version} already exported"}
    started = time.perf_counter()
    field = descriptor["item_field"]
    catalog = bus.read_table("catalog", columns=["item_id", field])
    texts = ["" if t is None else str(t) for t in catalog.column(field).to_pylist()]
    ids = np.asarray(catalog.column("item_id").to_pylist(), dtype=object)
    encode = load_encoder(model_dir, batch_size=cfg.batch_size, max_seq_length=descriptor["max_seq_length"])
    positions, vectors = _encode_items(encode, descriptor, texts, config)
    encode_s = time.perf_counter() - started
    queries = bus.read_table("queries", columns=["query"]).column("query").to_pylist()
    rng = np.random.default_rng(config.twotower.seed)
    sample = [queries[i] for i in np.sort(rng.permutation(len(queries))[: cfg.recall_sample])]
    query_vectors = encode([q for q in sample if has_words(q)])
    params = index_params(config)
    index = build_for_serving(vectors, ids[positions].tolist(), params=params,
                              queries=query_vectors if len(query_vectors) else None)
    tradeoff = []
    if cfg.tradeoff and len(vectors) <= cfg.tradeoff_max_items and len(query_vectors):
        tradeoff = recall_qps_tradeoff(vectors, query_vectors, params, cfg.tradeoff_queries, tuple(cfg.tradeoff_kinds))
    report: dict[str, Any] = {
        "model_version": version, "fingerprint": fp, "items": len(vectors), "catalog": len(texts),
        "dimension": int(vectors.shape[1]), "kind": index.kind, "faiss_class": index.faiss_class,
        "plan": index.plan.to_dict() if index.plan else None, "recall": index.recall.to_dict() if index.recall else None,
        "min_recall": cfg.min_recall, "encode_s": round(encode_s, 1), "build_s": round(index.build_s, 3),
        "tradeoff": tradeoff,
    }
    with tempfile.TemporaryDirectory(prefix="relforge-export-") as tmp:
        local = Path(tmp) / "export"
        try:
            manifest = publish(index, local / "index", model_version=version, min_recall=cfg.min_recall)
        except RecallGateError as exc:
            report.update({"published": False, "refused": str(exc)})
            write_report(bus, report)
            raise
        shutil.copytree(model_dir, local / "query_encoder")
        doc = {"fingerprint": fp, "model_version": version, "dimension": manifest["dimension"],
               "metric": manifest["metric"], "kind": manifest["kind"], "items": manifest["item_count"],
               "recall_at_10": manifest["recall_at_10"], "recall_sample": manifest["recall_sample"],
               "min_recall": cfg.min_recall, "max_seq_length": descriptor["max_seq_length"], "item_field": field,
               "base_model": descriptor["base_model"], "created": manifest["created"]}
        (local / EXPORT_DOC).write_text(json.dumps(doc, indent=2), encoding="utf-8")
        bus.put_dir(local, EXPORT)
        retriever = Retriever(local, cfg.batch_size)
        table = _retrieval_table(retriever, bus, config)
        load_s = retriever.load_s
    bus.write_table(RETRIEVAL, table, metadata={"export": fp, "model_version": version, "depth": cfg.retrieval_depth,
                                                "splits": cfg.retrieval_splits},
                    inputs={"export": fp}, config_hash=config.section_hash("export"))
    report.update({"published": True, "export": doc, "load_s": round(load_s, 2), "retrieval_rows": table.num_rows,
                   "seconds": round(time.perf_counter() - started, 1)})
    write_report(bus, report)
    recall = report["recall"]["recall"] if report["recall"] else 1.0
    return {"fingerprint": fp, "kind": index.kind, "items": report["items"], "recall_at_10": recall,
            "seconds": report["seconds"],
            "decided": f"{index.kind} index of {report['items']:,} items, recall@10 {recall:.3f} "
                       f"(min {cfg.min_recall}), published; {table.num_rows:,} retrieval rows"}


def render_markdown(report: dict[str, Any]) -> str:
    rec = report.get("recall") or {}
    plan = report.get("plan") or {}
    status = ("**published**" if report.get("published") else
              f"**not published**: {report.get('refused', 'recall under the minimum')}")
    lines = ["# Exported index", "",
             (f"Model `{report['model_version']}`: {report['items']:,} of {report['catalog']:,} catalog items encoded "
              f"({report['dimension']}-d, {report['encode_s']} s), `{report['kind']}` index "
              f"({report['faiss_class']}; {plan.get('reason', '')}), built in {report['build_s']} s; "
              f"recall@10 against exact search {rec.get('recall', 1.0):.4f} on {rec.get('sample', 0)} sampled "
              f"queries ({rec.get('source', '')}); minimum {report['min_recall']}: {status}."), ""]
    if report.get("tradeoff"):
        lines += ["## Recall against speed", "", "| kind | setting | recall@10 | queries/s (single) | build s |",
                  "|---|---|---:|---:|---:|"]
        lines += [f"| {p['kind']} | {p['setting'] or '-'} | {p['recall_at_10']:.4f} | {p['qps']:,.0f} | {p['build_s']} |"
                  for p in report["tradeoff"]]
        lines += ["", "![recall against QPS](index-figures/recall-qps.png)"]
    if report.get("published"):
        lines += ["", f"`relforge search --run R \"query\"` answers from it (loaded in {report['load_s']} s)."]
    return "\n".join(lines) + "\n"


def write_report(bus: DataBus, report: dict[str, Any]) -> None:
    """``reports/index.json``, ``.md``, the KFP metrics and the recall/QPS figure."""
    bus.write_json(REPORT_JSON, report)
    bus.write_text(REPORT_MD, render_markdown(report))
    rec = report.get("recall") or {}
    exact_qps = next((p["qps"] for p in report.get("tradeoff", []) if p["kind"] == "exact"), None)
    bus.write_json(METRICS_JSON, {"recall_at_10": rec.get("recall", 1.0), "items": report["items"],
                                  "dimension": report["dimension"], "build_s": report["build_s"],
                                  "published": int(bool(report.get("published"))),
                                  **({"exact_qps": exact_qps} if exact_qps else {})})
    if report.get("tradeoff"):
        with tempfile.TemporaryDirectory(prefix="relforge-index-") as tmp:
            plot_recall_qps(report["tradeoff"], report["kind"], Path(tmp) / "recall-qps.png")
            bus.put_dir(tmp, FIGURES)
