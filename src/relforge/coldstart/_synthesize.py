"""Step ``synthesize-queries``: a generator writes search queries for sampled catalog items.

1. **Sample** ``coldstart.items`` items, stratified over ``coldstart.stratify_by``
   (:func:`~relforge.coldstart.sample_items`).
2. **Generate** (resumable): the ``coldstart.generator`` tier's model (:func:`relforge.tiers.load_generator`)
   writes ``queries_per_item`` queries per item from the query-writer prompt file, with up to
   ``few_shot`` of the run's own queries as examples (:func:`~relforge.coldstart.few_shot_examples`);
   the item text is cut by field to ``item_max_tokens``, generation to ``max_new_tokens``.
   Items are generated in shards of ``items_per_shard``, each committed on its own to the
   sub-run's ``generated_queries`` (:meth:`relforge.bus.DataBus.sharded_writer`): a killed run
   resumes at the first shard not committed. A generation the server failed is recorded with
   its error, never filled in.
3. **Filter** (:mod:`relforge.coldstart._filters`): length, copy of the title, the round trip
   through ``coldstart.channel`` (the source item in its top ``round_trip_k``; the channel is
   built with :func:`relforge.mine.build_channel`), then exact and near duplicates. Every
   generated query is kept in the sub-run's ``synthetic_queries`` with the filter that removed it.
4. **Sub-run**: the kept queries become the sub-run's ``queries`` (split ``calib`` for a
   ``calib_share`` of them, by a seeded hash, else ``train``) beside a copy of the ``catalog``
   (:mod:`relforge.coldstart._subrun`).
5. **Report**: ``reports/coldstart-queries.md|json``: each filter's share, the sample per
   stratum, a sample of the queries with what happened to each.
"""

from __future__ import annotations

import hashlib
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from relforge.bus import DataBus
from relforge.coldstart._filters import (
    FILTERS,
    FilterSettings,
    duplicate_filters,
    filter_counts,
    round_trip_ranks,
    text_filters,
)
from relforge.coldstart._sample import few_shot_examples, sample_items, stable_hash
from relforge.coldstart._subrun import SUBRUN, coldstart_bus, settings_hash
from relforge.config import RelforgeConfig
from relforge.errors import InputError
from relforge.grades import GRADE_SCALE_KEY, read_grade_scale
from relforge.logs import get_logger, log_event, track
from relforge.tiers import Example, clean_query, fit_fields, load_generator, load_query_prompt

log = get_logger("coldstart.synthesize")

GENERATED = "generated_queries"
SYNTHETIC = "synthetic_queries"
REPORT_JSON = "reports/coldstart-queries.json"
REPORT_MD = "reports/coldstart-queries.md"


def query_id_for(item_id: str, number: int) -> str:
    """The id of the ``number``-th synthetic query written for ``item_id`` (stable across runs)."""
    return "syn-" + hashlib.sha256(f"{item_id}\x00{number}".encode()).hexdigest()[:16]


def synthetic_splits(query_ids: list[str], calib_share: float, seed: int) -> list[str]:
    """``calib`` for a ``calib_share`` of the queries (by a seeded hash of the id; at least one
    when the share is above 0 and there are two queries or more), ``train`` for the rest."""
    if not query_ids:
        return []
    position = np.array([stable_hash(seed, q) / 2.0**64 for q in query_ids])
    calib = position < calib_share
    if calib_share > 0 and not calib.any() and len(query_ids) >= 2:
        calib[int(position.argmin())] = True
    return ["calib" if c else "train" for c in calib]


def _generation_settings(config: RelforgeConfig) -> dict[str, Any]:
    cs = config.coldstart
    spec = config.tiers.spec(cs.generator)
    prompt = Path(cs.prompt).read_text(encoding="utf-8") if cs.prompt else "shipped:query-writer"
    return {
        "generator": spec.model_dump(mode="json", include={"backend", "model", "url", "served_model"}),
        "generator_model": spec.model or getattr(config.models, cs.generator, None),
        "prompt": hashlib.sha256(prompt.encode()).hexdigest()[:16],
        "item_field": config.finetune.item_field,
        **cs.model_dump(mode="json", include={"items", "stratify_by", "queries_per_item", "few_shot", "few_shot_judged",
                                              "item_max_tokens", "max_new_tokens", "temperature", "top_p", "seed"}),
    }


def _read_optional(bus: DataBus, name: str) -> pa.Table | None:
    return bus.read_table(name) if bus.is_committed(name) else None


def run_synthesize_queries(bus: DataBus, config: RelforgeConfig) -> dict[str, Any]:
    """Write synthetic queries for sampled catalog items and make them the cold-start sub-run's
    queries (see the module docstring).

    Args:
        bus: the run's bus (``catalog``; ``queries`` and ``judgments`` for few-shot examples
            where there are any).
        config: the run's configuration (sections ``coldstart``, ``tiers``, ``models``, ``mine``).

    Returns:
        A summary: generated, kept, each filter's count, the sub-run, with a ``decided`` line.

    Raises:
        InputError: an empty catalog, or a catalog without the item field.
        ConfigError: a generator tier that cannot generate, an unknown channel.

    Example:
        >>> run_synthesize_queries(DataBus("runs/shop"), load_config())        # doctest: +SKIP
    """
    cs = config.coldstart
    started = time.perf_counter()
    scale = read_grade_scale(bus)
    field = config.finetune.item_field
    catalog = bus.read_table("catalog")
    if catalog.num_rows == 0:
        raise InputError(bus.uri("catalog"), None, None, "the catalog is empty: no item to write queries for")
    if field not in catalog.column_names:
        raise InputError(bus.uri("catalog"), None, field, f"no such column (columns: {catalog.column_names})")
    positions, sampling = sample_items(catalog, cs.items, cs.stratify_by, cs.seed)
    if len(positions) == 0:
        raise InputError(bus.uri("catalog"), None, "title", "no item has a title with a letter or digit")
    sub = coldstart_bus(bus)
    inputs = bus.input_digests("catalog")
    for optional in ("queries", "judgments") if cs.few_shot_judged else ("queries",):
        if cs.few_shot and bus.is_committed(optional):
            inputs[optional] = bus.manifest(optional).digest()
    n_shards = max(1, math.ceil(len(positions) / cs.items_per_shard))
    metadata = {GRADE_SCALE_KEY: scale.model_dump(), "sampling": sampling, "settings": _generation_settings(config)}
    gen_seconds = 0.0
    with sub.sharded_writer(GENERATED, n_shards, metadata=metadata, inputs=inputs,
                            config_hash=settings_hash(_generation_settings(config))) as writer:
        pending = writer.pending()
        if pending:
            gen_seconds = _generate_shards(bus, config, writer, pending, catalog, positions)
    generated = sub.read_table(GENERATED)
    kept, counts = _filter_and_write(bus, sub, config, catalog, generated)
    _write_subrun(bus, sub, config, catalog, kept, scale)
    summary = {
        "sampled_items": len(positions), "sampling": sampling, "generated": generated.num_rows,
        "kept": kept.num_rows, "filters": counts, "generation_seconds": round(gen_seconds, 1),
        "generation_cost": float(np.nansum(generated.column("cost").to_numpy(zero_copy_only=False)))
        if "cost" in generated.column_names else None,
        "subrun": sub.root, "seconds": round(time.perf_counter() - started, 1),
    }
    _write_report(bus, summary, sub.read_table(SYNTHETIC), catalog, config)
    if kept.num_rows == 0:
        raise InputError(sub.uri(SYNTHETIC), None, "removed_by",
                         f"none of the {generated.num_rows:,} generated queries passed the filters; see "
                         f"{bus.uri(REPORT_MD)} for what removed them (the generator, its prompt, or the thresholds)")
    removed = ", ".join(f"{name} {counts[name]['share_of_generated']:.0%}" for name in FILTERS if counts[name]["removed"])
    summary["decided"] = (f"{generated.num_rows:,} queries written for {len(positions):,} items; kept {kept.num_rows:,} "
                          f"({counts['kept']['share_of_generated']:.0%}) as {SUBRUN}/queries"
                          + (f"; removed: {removed}" if removed else ""))
    return summary


def _generate_shards(bus: DataBus, config: RelforgeConfig, writer, pending: list[int], catalog: pa.Table,
                     positions: np.ndarray) -> float:
    """Generate and commit the pending shards; returns the generation's wall seconds."""
    cs = config.coldstart
    field = config.finetune.item_field
    item_ids = catalog.column("item_id").to_pylist()
    texts = ["" if t is None else str(t) for t in catalog.column(field).to_pylist()]
    categories = (catalog.column(cs.stratify_by).to_pylist()
                  if cs.stratify_by and cs.stratify_by in catalog.column_names else None)
    item_text = dict(zip(item_ids, texts))
    judgments = _read_optional(bus, "judgments") if cs.few_shot_judged else None
    examples = few_shot_examples(_read_optional(bus, "queries"), judgments, item_text, cs.few_shot, cs.seed)
    prompt = load_query_prompt(cs.prompt)
    seconds = 0.0
    log_event(log, "writing queries", items=len(positions), shards=len(pending), examples=len(examples),
              generator=cs.generator)
    with load_generator(config.tiers.spec(cs.generator), config.models, bus=config.bus,
                        max_new_tokens=cs.max_new_tokens, temperature=cs.temperature, top_p=cs.top_p,
                        batch_size=cs.batch_size) as generator:
        tok = generator.tokenizer
        shots = [Example(e.query, fit_fields(tok, e.item, cs.item_max_tokens // 2) if e.item else None) for e in examples]
        for shard in track(pending, f"synthesize-queries: {len(pending)} shard(s)"):
            chosen = positions[shard * cs.items_per_shard:(shard + 1) * cs.items_per_shard]
            chats = [prompt.messages(fit_fields(tok, texts[p], cs.item_max_tokens), shots) for p in chosen]
            out = generator.generate(chats, n=cs.queries_per_item, seed=cs.seed * 1000 + shard)
            seconds += out.seconds
            rows = []
            for j, p in enumerate(chosen):
                for r in range(cs.queries_per_item):
                    text = out.texts[j][r] if not out.failed[j] and r < len(out.texts[j]) else ""
                    rows.append({
                        "query_id": query_id_for(item_ids[p], r), "item_id": item_ids[p], "query": clean_query(text),
                        "error": out.errors[j] if out.failed[j] else None,
                        "category": None if categories is None or categories[p] is None else str(categories[p]),
                        "cost": float(out.cost[j]) / cs.queries_per_item,
                    })
            schema = pa.schema([("query_id", pa.string()), ("item_id", pa.string()), ("query", pa.string()),
                                ("error", pa.string()), ("category", pa.string()), ("cost", pa.float32())])
            writer.write(shard, pa.Table.from_pylist(rows, schema=schema))
            log_event(log, "shard", shard=shard, items=len(chosen), failed=int(out.failed.sum()),
                      s=round(out.seconds, 1))
    return seconds


def _filter_and_write(bus: DataBus, sub: DataBus, config: RelforgeConfig, catalog: pa.Table,
                      generated: pa.Table) -> tuple[pa.Table, dict]:
    """Apply the filters in order; write ``synthetic_queries``; return the kept rows and the counts."""
    from relforge.mine import build_channel

    cs = config.coldstart
    settings = FilterSettings(cs.min_words, cs.max_words, cs.copy_share, cs.near_duplicate_jaccard, cs.round_trip_k)
    channel_settings = config.mine.model_dump(mode="json", include={"bm25_k1", "bm25_b", "ngram_range", "ngram_features",
                                                                    "dense_model", "dense_max_seq_length"})
    fp_settings = {"filters": settings.__dict__, "channel": cs.channel, "channel_settings": channel_settings,
                   "item_field": config.finetune.item_field}
    inputs = {"generated_queries": sub.manifest(GENERATED).digest(), "catalog": bus.manifest("catalog").digest()}
    from relforge.bus import fingerprint

    fp = fingerprint(inputs, settings_hash(fp_settings))
    done = sub.committed_with(SYNTHETIC, fp)
    if done is not None:
        table = sub.read_table(SYNTHETIC)
    else:
        item_ids = catalog.column("item_id").to_pylist()
        position = {iid: i for i, iid in enumerate(item_ids)}
        titles = catalog.column("title").to_pylist()
        queries = generated.column("query").to_pylist()
        sources = generated.column("item_id").to_pylist()
        errors = generated.column("error").to_pylist() if "error" in generated.column_names else [None] * len(queries)
        removed = text_filters(queries, [str(titles[position[s]] or "") for s in sources],
                               [e is not None for e in errors], settings)
        survivors = [i for i, r in enumerate(removed) if r is None]
        ranks: list[int | None] = [None] * len(queries)
        if survivors:
            field = config.finetune.item_field
            channel = build_channel(cs.channel, config)
            channel.expect_queries(len(survivors))
            channel.index(["" if t is None else str(t) for t in catalog.column(field).to_pylist()], item_ids)
            found, _ = channel.search([queries[i] for i in survivors], cs.round_trip_k)
            rank = round_trip_ranks(found, np.array([position[sources[i]] for i in survivors]))
            for i, r in zip(survivors, rank.tolist()):
                ranks[i] = r
                if r == 0:
                    removed[i] = "round-trip"
        removed = duplicate_filters(queries, removed, settings)
        table = pa.table({
            "query_id": generated.column("query_id"), "item_id": generated.column("item_id"),
            "query": generated.column("query"), "removed_by": pa.array(removed, pa.string()),
            "rank_source": pa.array(ranks, pa.int32()),
            "category": generated.column("category") if "category" in generated.column_names
            else pa.nulls(generated.num_rows, pa.string()),
        })
        sub.write_table(SYNTHETIC, table, metadata={"filters": list(FILTERS), "settings": fp_settings}, inputs=inputs,
                        config_hash=settings_hash(fp_settings))
    removed_by = table.column("removed_by").to_pylist()
    counts = filter_counts(removed_by)
    keep = np.flatnonzero(np.array([r is None for r in removed_by], dtype=bool))
    return table.take(pa.array(keep, pa.int64())), counts


def _write_subrun(bus: DataBus, sub: DataBus, config: RelforgeConfig, catalog: pa.Table, kept: pa.Table, scale) -> None:
    """The sub-run's ``catalog`` (a copy) and ``queries`` (the kept synthetic queries, split)."""
    from relforge.bus import fingerprint

    meta = {GRADE_SCALE_KEY: scale.model_dump(), "origin": "synthetic", "parent_run": bus.root}
    cat_inputs = {"catalog": bus.manifest("catalog").digest()}
    if sub.committed_with("catalog", fingerprint(cat_inputs, "copy")) is None:
        sub.write_table("catalog", catalog, metadata={**meta, "origin": f"copy of {bus.uri('catalog')}"},
                        inputs=cat_inputs, config_hash="copy")
    cs = config.coldstart
    q_inputs = {"synthetic_queries": sub.manifest(SYNTHETIC).digest()}
    q_hash = settings_hash({"calib_share": cs.calib_share, "seed": cs.seed})
    if sub.committed_with("queries", fingerprint(q_inputs, q_hash)) is None:
        ids = kept.column("query_id").to_pylist()
        queries = pa.table({
            "query_id": kept.column("query_id"), "query": kept.column("query"),
            "split": pa.array(synthetic_splits(ids, cs.calib_share, cs.seed), pa.string()),
            "source_item_id": kept.column("item_id"),
        })
        sub.write_table("queries", queries, metadata=meta, inputs=q_inputs, config_hash=q_hash)


def _write_report(bus: DataBus, summary: dict, table: pa.Table, catalog: pa.Table, config: RelforgeConfig,
                  sample: int = 20) -> None:
    """``reports/coldstart-queries.json`` and ``.md``: the filters' shares and a sample of queries."""
    titles = dict(zip(catalog.column("item_id").to_pylist(), catalog.column("title").to_pylist()))
    rows = table.to_pylist()
    rng = np.random.default_rng(config.coldstart.seed)
    shown = [rows[i] for i in sorted(rng.choice(len(rows), size=min(sample, len(rows)), replace=False))] if rows else []
    doc = {**summary, "sample": [{**r, "title": titles.get(r["item_id"])} for r in shown]}
    bus.write_json(REPORT_JSON, doc)
    counts = summary["filters"]
    cs = config.coldstart
    lines = [
        "# Synthetic queries (cold start)", "",
        (f"{summary['sampled_items']:,} catalog items sampled (stratified by `{summary['sampling']['stratified_by']}`)"
         if summary["sampling"]["stratified_by"] else f"{summary['sampled_items']:,} catalog items sampled (no category column)")
        + f"; {summary['generated']:,} queries written by tier `{cs.generator}` ({summary['generation_seconds']} s this run); "
        f"{summary['kept']:,} kept as `{SUBRUN}/queries`.", "",
        "Filters, in order (a query removed by one is not seen by the next):", "",
        "| filter | removed | share of generated | share of those reaching it |",
        "|---|---:|---:|---:|",
    ]
    for name in (*FILTERS, "kept"):
        c = counts[name]
        if name == "kept":
            lines.append(f"| **kept** | {c['reaching']:,} | {c['share_of_generated']:.1%} | |")
        else:
            lines.append(f"| {name} | {c['removed']:,} | {c['share_of_generated']:.1%} | {c['share_of_reaching']:.1%} |")
    lines += ["", (f"Rules: length {cs.min_words}-{cs.max_words} words; copy: no word outside the title and at least "
              f"{cs.copy_share:.0%} of its words; near duplicate: stemmed-word Jaccard >= {cs.near_duplicate_jaccard}; "
              f"round trip: the source item in `{cs.channel}`'s top {cs.round_trip_k}."), "",
              f"A sample of {len(shown)} generated queries:", "",
              "| query | source item's title | removed by | source rank |", "|---|---|---|---:|"]
    for r in doc["sample"]:
        title = (r["title"] or "").replace("|", "/")[:90]
        query = (r["query"] or "").replace("|", "/")
        rank = "" if r["rank_source"] is None else r["rank_source"]
        lines.append(f"| {query} | {title} | {r['removed_by'] or 'kept'} | {rank} |")
    bus.write_text(REPORT_MD, "\n".join(lines) + "\n")
