"""The tiers on an ingested run, zero-shot and fine-tuned, against human labels.

Works on any ingested run (ESCI-150 by default): the grade scale, the number of grades and
the splits come from the run's tables; the models come from the configuration (``--config``,
``--set``, as for ``relforge``), and fine-tuning uses the same library functions and settings
as ``relforge finetune-tiers`` (no separate recipe).

Two views, each scored by accuracy, macro-F1 and quadratic-weighted kappa (QWK) with 95%
bootstrap CIs over queries (queries resampled with replacement, ``--reps`` replicates):

- ``unseen queries``: every judged pair of the test-split queries (the model never saw the
  query): the honest measure for labelling new queries;
- ``held-out pairs``: 20% of each train-split query's pairs, held out of training (the case
  of labelling more candidates of queries that are partly judged).

Every model is trained on the other 80% of the train-split pairs (all of them: no cap unless
``--max-train-pairs``), with early stopping / model selection on the calib split.

Rows: the majority class; the bi-encoder (cosine of the embedding model, cut into grades by
thresholds fitted on calib); the cross-encoder tier fine-tuned with a softmax and an ordinal
head; each causal-LM tier zero-shot (grade-token probabilities) and as a probe (softmax and
ordinal heads at the configured layer and pooling). A second table compares the probe's
layers, poolings and heads (from one pass over every layer). Throughput (pairs/s, tokens/s)
is measured in this run by the tier scorers themselves on ``--timed-pairs`` pairs of the
unseen-queries view; training seconds are measured in this run. A cache holds features and
fine-tuned models (``--cache``), never times: a row whose model came from the cache has no
training seconds.

Usage:
    python benchmarks/eval_tiers.py                          # ESCI-150, all tiers, full size
    python benchmarks/eval_tiers.py --tiers tier1 --max-train-pairs 800   # a quick look
    python benchmarks/eval_tiers.py --run runs/own --config my.yaml       # another data set
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
CACHE = Path(os.environ.get("RELFORGE_CACHE", "~/.cache/relforge")).expanduser() / "eval-tiers"


@dataclass
class Row:
    """One line of the results table."""

    view: str
    tier: str
    model: str
    method: str
    head: str
    train_pairs: int
    metrics: dict
    ci: dict
    pairs_per_s: float | None = None
    train_s: float | None = None
    note: str = ""
    extra: dict = field(default_factory=dict)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", default=str(CACHE / "run"), help="an ingested run (ESCI-150 is ingested here if it is empty)")
    p.add_argument("--config", default=None, help="relforge configuration YAML (models, finetune settings)")
    p.add_argument("--set", action="append", default=[], help="section.key=value override, as for relforge")
    p.add_argument("--cache", default=str(CACHE), help="features and fine-tuned models are cached here")
    p.add_argument("--out", default=str(HERE / "results" / "eval_tiers.md"), help="Markdown results (JSON beside it)")
    p.add_argument("--tiers", default=None, help="comma-separated tier names (default: tiers.names of the configuration)")
    p.add_argument("--reps", type=int, default=1000, help="bootstrap replicates")
    p.add_argument("--max-train-pairs", type=int, default=None, help="cap on training pairs, per query (default: all)")
    p.add_argument("--timed-pairs", type=int, default=300, help="unseen-queries pairs each scorer is timed on")
    p.add_argument("--heldout", type=float, default=0.2, help="share of each train query's pairs held out")
    return p.parse_args(argv)


def digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:12]


def score_row(view, tier, model, method, head, train_pairs, test, pred, k, reps, seed, **kw) -> Row:
    from relforge.finetune import bootstrap_by_query, grade_metrics

    pred = np.asarray(pred)
    ok = pred >= 0
    metrics = grade_metrics(test.grade[ok], pred[ok], k)
    ci = bootstrap_by_query(test.query_id[ok], test.grade[ok], pred[ok], k, reps=reps, seed=seed)
    if (~ok).any():
        kw["note"] = (kw.get("note", "") + f" {int((~ok).sum())} pairs failed").strip()
    return Row(view, tier, model, method, head, train_pairs, metrics, ci, **kw)


def fit_thresholds(scores: np.ndarray, grades: np.ndarray, k: int, metric: str = "qwk") -> np.ndarray:
    """``k - 1`` ascending cut points on a relevance score that maximise ``metric`` on (scores, grades)."""
    from itertools import combinations

    from relforge.finetune import metrics_from_confusion

    cuts = np.unique(np.quantile(scores, np.linspace(0.02, 0.98, 25 if k <= 4 else 12)))
    best, best_value = None, -np.inf
    for combo in combinations(cuts, k - 1):
        pred = np.searchsorted(np.asarray(combo), scores, side="right")
        cm = np.zeros((k, k))
        np.add.at(cm, (grades, pred), 1)
        value = metrics_from_confusion(cm)[metric]
        if value > best_value:
            best, best_value = np.asarray(combo), value
    return best


def timed(scorer, pairs) -> float:
    """Pairs/s of ``scorer`` on ``pairs``, measured now."""
    start = time.perf_counter()
    scorer.score(pairs)
    return len(pairs) / (time.perf_counter() - start)


class Eval:
    """The shared state of one evaluation (data, views, configuration, log)."""

    def __init__(self, args):
        from relforge.bus import DataBus
        from relforge.config import load_config
        from relforge.finetune import load_graded_pairs, sample_per_query, split_within_queries
        from relforge.grades import read_grade_scale

        self.args = args
        self.started = time.perf_counter()
        self.config = load_config(args.config, args.set)
        self.cfg = self.config.finetune
        self.seed = self.cfg.seed
        self.bus = DataBus(args.run, self.config.bus)
        if not self.bus.is_committed("judgments"):
            from relforge.ingest import ingest_esci

            self.log(f"ingesting ESCI-150 into {args.run}")
            ingest_esci(self.bus, self.config)
        self.scale = read_grade_scale(self.bus)
        self.k = self.scale.n
        item_field = self.cfg.item_field
        self.train_all = load_graded_pairs(self.bus, "train", item_field, self.k)
        self.calib_all = load_graded_pairs(self.bus, "calib", item_field, self.k)
        self.test_all = load_graded_pairs(self.bus, "test", item_field, self.k)
        train, held = split_within_queries(self.train_all, args.heldout, self.seed)
        self.train = sample_per_query(train, args.max_train_pairs, self.seed)
        self.calib = sample_per_query(self.calib_all, self.cfg.calib_max_pairs, self.seed)
        self.views = {"unseen queries": self.test_all, "held-out pairs": held}
        self.timed_pairs = sample_per_query(self.test_all, args.timed_pairs, self.seed).pairs()
        self.cache = Path(args.cache)
        self.cache.mkdir(parents=True, exist_ok=True)

    def log(self, msg: str) -> None:
        print(f"[{time.perf_counter() - self.started:7.0f}s] {msg}", file=sys.stderr, flush=True)

    def row(self, view, tier, model, method, head, train_pairs, pred, **kw) -> Row:
        return score_row(view, tier, model, method, head, train_pairs, self.views[view], pred, self.k,
                         self.args.reps, self.seed, **kw)


def majority_rows(ev: Eval) -> list[Row]:
    majority = int(np.bincount(ev.train.grade, minlength=ev.k).argmax())
    return [ev.row(view, "-", "-", f"majority class ({ev.scale.names[majority]})", "-", len(ev.train),
                   np.full(len(test), majority)) for view, test in ev.views.items()]


def bi_encoder_rows(ev: Eval, tier: str, ref: str) -> list[Row]:
    """Zero-shot: the embedding model's cosine, cut into grades by thresholds fitted on calib."""
    from sentence_transformers import SentenceTransformer

    from relforge.tiers import resolve_model_ref

    encoder = SentenceTransformer(str(resolve_model_ref(ref, ev.config.models)), device="cpu", local_files_only=True)
    encoder.max_seq_length = ev.cfg.ce_max_length

    def cosine(pairs):
        kw = {"batch_size": 64, "normalize_embeddings": True, "convert_to_numpy": True}
        return (encoder.encode([str(x) for x in pairs.query], **kw) * encoder.encode([str(x) for x in pairs.text], **kw)).sum(1)

    cuts = fit_thresholds(cosine(ev.calib), ev.calib.grade.astype(int), ev.k)
    rows = []
    for view, test in ev.views.items():
        start = time.perf_counter()
        pred = np.searchsorted(cuts, cosine(test), side="right")
        rate = len(test) / (time.perf_counter() - start)
        rows.append(ev.row(view, tier, ref, f"zero-shot: bi-encoder cosine + {ev.k - 1} calib thresholds", "-", 0, pred,
                           pairs_per_s=rate))
    return rows


def cross_encoder_rows(ev: Eval, tier: str, ref: str) -> list[Row]:
    from relforge.finetune import finetune_cross_encoder
    from relforge.tiers import CrossEncoderScorer, resolve_model_ref

    base = resolve_model_ref(ref, ev.config.models)
    rows = []
    for head in ("softmax", "ordinal"):
        cfg = ev.cfg.model_copy(update={"head": head})
        key = digest({"base": str(base), "cfg": cfg.model_dump(mode="json"), "train": ev.train.item_id.tolist(),
                      "scale": ev.scale.model_dump()})
        folder = ev.cache / f"ce-{head}-{key}"
        report_path = folder / "eval_report.json"
        train_s = None
        if report_path.is_file():
            report = json.loads(report_path.read_text())
            ev.log(f"{tier} cross-encoder {head}: reusing {folder} (its training time is not measured in this run)")
        else:
            ev.log(f"{tier} cross-encoder {head}: training on {len(ev.train)} pairs")
            report = finetune_cross_encoder(base, ev.train, ev.calib, folder, ev.scale, cfg, head=head, base_ref=ref)
            report_path.write_text(json.dumps(report, indent=2, default=str))
            train_s = report["seconds"]
        scorer = CrossEncoderScorer(folder, ev.scale, batch_size=32)
        rate = timed(scorer, ev.timed_pairs)
        note = "" if report["calib_best"]["qwk"] >= report["calib_before"]["qwk"] else "WARNING: calib QWK below its start"
        for view, test in ev.views.items():
            scores = scorer.score(test.pairs())
            rows.append(ev.row(
                view, tier, ref, "fine-tuned", head, report["train_pairs"], scores.grades, pairs_per_s=rate,
                train_s=train_s, note=note,
                extra={"steps": report["steps"], "planned_steps": report.get("planned_steps"),
                       "best_step": report["best_step"], "calib_best": report["calib_best"]},
            ))
    return rows


def llm_rows(ev: Eval, tier: str, ref: str) -> tuple[list[Row], list[dict]]:
    """Zero-shot grade tokens, the probe (softmax, ordinal) at the configured layer, and the layer table."""
    from relforge.finetune import FeatureCache, grade_metrics, select_probe_head
    from relforge.finetune._probe import save_probe
    from relforge.tiers import (
        CausalLMScorer,
        ProbeScorer,
        PromptEncoder,
        count_layers,
        feature_key,
        layer_index,
        resolve_model_ref,
    )

    cfg = ev.cfg
    base = resolve_model_ref(ref, ev.config.models)
    n_layers = count_layers(base)
    chosen_layer = layer_index(cfg.probe_layer, n_layers)
    layers = sorted({max(1, n_layers // 4), chosen_layer, (3 * n_layers) // 4, n_layers})
    encoder = PromptEncoder(base, ev.scale, layers=layers, max_length=cfg.llm_max_length, batch_size=cfg.llm_batch_size)
    cache = FeatureCache(ev.cache / "features")
    start = time.perf_counter()
    feats = {}
    for part, pairs in [("train", ev.train), ("calib", ev.calib), *ev.views.items()]:
        ev.log(f"{tier} {ref}: features of {len(pairs)} {part} pairs")
        feats[part] = cache.get(encoder, pairs.pairs(), f"{tier} {part}")
    feature_s = time.perf_counter() - start  # includes reading any cached features: not a training time
    rows: list[Row] = []
    zero_shot = CausalLMScorer(base, ev.scale, batch_size=cfg.llm_batch_size, max_length=cfg.llm_max_length)
    zs_rate = timed(zero_shot, ev.timed_pairs)
    del zero_shot
    for view in ev.views:
        f = feats[view]
        pred = np.where(f["failed"], -1, np.nan_to_num(f["grade_logits"]).argmax(1))
        rows.append(ev.row(view, tier, ref, "zero-shot: grade-token probabilities", "-", 0, pred, pairs_per_s=zs_rate))
    ok_t, ok_c = ~feats["train"]["failed"], ~feats["calib"]["failed"]
    ablation, chosen = [], {}
    for head in ("softmax", "ordinal"):
        for layer in layers:
            for pooling in ("last-token", "mean"):
                key = feature_key(pooling, layer)
                fit_start = time.perf_counter()
                fitted, rep = select_probe_head(
                    feats["train"][key][ok_t], ev.train.grade[ok_t], feats["calib"][key][ok_c], ev.calib.grade[ok_c],
                    ev.k, head, cfg.probe_l2, cfg.balance, cfg.select_metric, ev.seed,
                )
                fit_s = time.perf_counter() - fit_start
                f = feats["unseen queries"]
                pred = np.where(f["failed"], -1, fitted.probs(np.nan_to_num(f[key])).argmax(1))
                test = ev.views["unseen queries"]
                entry = {"tier": tier, "model": ref, "head": head, "layer": layer, "n_layers": n_layers,
                         "pooling": pooling, "l2": rep["l2"], "calib": rep["calib_best"], "fit_s": round(fit_s, 2),
                         "test": grade_metrics(test.grade[pred >= 0], pred[pred >= 0], ev.k)}
                ablation.append(entry)
                if layer == chosen_layer and pooling == cfg.probe_pooling:
                    chosen[head] = (entry, fitted, key)
    for head, (entry, fitted, key) in chosen.items():
        folder = ev.cache / f"probe-{tier}-{head}-{digest(entry)}"
        save_probe(folder, fitted, ev.scale, str(base), chosen_layer, n_layers, cfg.probe_pooling, cfg.llm_max_length,
                   cfg.llm_batch_size)
        scorer = ProbeScorer(folder, ev.scale, base=base)
        rate = timed(scorer, ev.timed_pairs)
        del scorer
        for view in ev.views:
            f = feats[view]
            pred = np.where(f["failed"], -1, fitted.probs(np.nan_to_num(f[key])).argmax(1))
            rows.append(ev.row(
                view, tier, ref, f"probe (layer {chosen_layer}/{n_layers}, {cfg.probe_pooling})", head, int(ok_t.sum()),
                pred, pairs_per_s=rate, extra={"l2": entry["l2"], "calib_best": entry["calib"],
                                               "features_s_incl_cache_reads": round(feature_s, 1)},
            ))
    return rows, ablation


def fmt_ci(m: dict, ci: dict, key: str) -> str:
    lo, hi = ci[key]
    return f"{m[key]:.3f} [{lo:.2f}, {hi:.2f}]"


def markdown(rows: list[Row], ablation: list[dict], meta: dict) -> str:
    out = [
        f"# Tiers on {meta['data_name']}: zero-shot and fine-tuned, against human labels",
        "",
        f"Command: `{meta['command']}`  ",
        (f"Machine: {meta['machine']}; CPU flags {meta['cpu_flags']}; compute {meta['compute']}; load average at "
         f"start {meta['load_start']}, at end {meta['load_end']}; wall time {meta['wall_min']:.1f} min."),
        "",
        f"Data: {meta['data']}",
        "",
        (f"Metrics with 95% bootstrap CIs over queries ({meta['reps']} replicates). Pairs/s: the tier's scorer on "
         f"{meta['timed_pairs']} unseen-query pairs, measured in this run. Train s: fine-tuning wall seconds in this "
         "run ('-': the model came from the cache, or no training)."),
        "",
    ]
    for view in dict.fromkeys(r.view for r in rows):
        out += [f"## {view} ({meta['views'][view]})", "",
                "| tier | model | method | head | train pairs | accuracy | macro-F1 | QWK | pairs/s | train s |",
                "|---|---|---|---|---:|---|---|---|---:|---:|"]
        for r in (r for r in rows if r.view == view):
            rate = f"{r.pairs_per_s:.1f}" if r.pairs_per_s else "-"
            train_s = f"{r.train_s:.0f}" if r.train_s else "-"
            note = f" ({r.note})" if r.note else ""
            out.append(
                f"| {r.tier} | {r.model} | {r.method}{note} | {r.head} | {r.train_pairs} | "
                f"{fmt_ci(r.metrics, r.ci, 'accuracy')} | {fmt_ci(r.metrics, r.ci, 'macro_f1')} | "
                f"{fmt_ci(r.metrics, r.ci, 'qwk')} | {rate} | {train_s} |"
            )
        out.append("")
    if ablation:
        out += ["## Probe choices (unseen-queries view; L2 chosen on calib)", "",
                "| tier | head | layer | pooling | L2 | calib QWK | test acc | test macro-F1 | test QWK |",
                "|---|---|---:|---|---:|---:|---:|---:|---:|"]
        for a in ablation:
            out.append(
                f"| {a['tier']} | {a['head']} | {a['layer']}/{a['n_layers']} | {a['pooling']} | {a['l2']} | "
                f"{a['calib']['qwk']:.3f} | {a['test']['accuracy']:.3f} | {a['test']['macro_f1']:.3f} | "
                f"{a['test']['qwk']:.3f} |"
            )
        out.append("")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    import torch

    from relforge import compute

    load_start = os.getloadavg()[0]
    ev = Eval(args)
    compute.configure(ev.config.compute)
    settings = compute.current()
    rows = majority_rows(ev)
    ablation: list[dict] = []
    names = [t.strip() for t in (args.tiers.split(",") if args.tiers else ev.config.tiers.names) if t.strip()]
    for tier in names:
        spec = ev.config.tiers.spec(tier)
        ref = spec.model or getattr(ev.config.models, tier)
        if spec.backend == "bi-encoder":
            rows += bi_encoder_rows(ev, tier, ref)
        elif spec.backend == "cross-encoder":
            rows += bi_encoder_rows(ev, f"{tier} (bi-encoder)", ref) + cross_encoder_rows(ev, tier, ref)
        else:
            r, a = llm_rows(ev, tier, ref)
            rows += r
            ablation += a
    order = {name: i for i, name in enumerate(["-", *names])}
    rows.sort(key=lambda r: (list(ev.views).index(r.view), order.get(r.tier.split(" ")[0], 99)))
    counts = {v: np.bincount(t.grade, minlength=ev.k).tolist() for v, t in ev.views.items()}
    from relforge.compute import cpu_flags

    flags = sorted(cpu_flags() & {"avx2", "avx512f", "avx512_bf16", "amx_bf16", "bf16"})
    meta = {
        "command": "python benchmarks/eval_tiers.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}",
        "cpu_flags": ", ".join(flags) or "none of avx2/avx512/bf16",
        "compute": f"{settings.device}, {settings.dtype}, {settings.threads} threads",
        "load_start": round(load_start, 1),
        "load_end": round(os.getloadavg()[0], 1),
        "wall_min": (time.perf_counter() - ev.started) / 60,
        "reps": args.reps,
        "timed_pairs": len(ev.timed_pairs),
        "data_name": ev.bus.manifest("catalog").metadata.get("origin", ev.bus.root),
        "data": (
            f"{ev.k} grades {ev.scale.names}; query-level split train {len(set(ev.train_all.query_id))} / calib "
            f"{len(set(ev.calib_all.query_id))} / test {len(set(ev.test_all.query_id))} queries. Training pairs: "
            f"{len(ev.train)} ({100 - round(100 * args.heldout)}% of each train query's pairs"
            + (f", capped at {args.max_train_pairs}" if args.max_train_pairs else "") + f"); calib for selection: "
            f"{len(ev.calib)} pairs; cross-encoder {ev.cfg.ce_max_length} tokens per pair, LLM prompts "
            f"{ev.cfg.llm_max_length} tokens (the shared prefix included; item text cut by field)."
        ),
        "views": {
            "unseen queries": f"{len(ev.views['unseen queries'])} pairs of {len(set(ev.test_all.query_id))} "
                              f"test-split queries, grades {counts['unseen queries']}",
            "held-out pairs": f"{len(ev.views['held-out pairs'])} held-out pairs of "
                              f"{len(set(ev.views['held-out pairs'].query_id))} train-split queries, grades "
                              f"{counts['held-out pairs']}",
        },
    }
    text = markdown(rows, ablation, meta)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    payload = {"meta": meta, "rows": [r.__dict__ for r in rows], "ablation": ablation}
    out.with_suffix(".json").write_text(json.dumps(payload, indent=2, default=str), encoding="utf-8")
    print(text)
    ev.log(f"wrote {out}")
    return payload


if __name__ == "__main__":
    main()
