"""The tiers on ESCI-150, zero-shot and fine-tuned, against human labels (issue 4, point 4).

Two views, both scored by accuracy, macro-F1 and quadratic-weighted kappa (QWK) with 95%
bootstrap CIs over queries (queries resampled with replacement, ``--reps`` replicates):

- ``unseen queries``: the model never saw the query (trained on train-split queries, tested
  on the test split): the honest measure for labelling new queries;
- ``held-out pairs``: the query's other pairs were in training (each train-split query's
  pairs are split 80/20; tested on the 20%): the case where part of a query is labelled.

One model per (tier, head) serves both views: it is trained on the 80% part of the
train-split queries, early-stopped / regularised on the calib split. Every row of a view is
scored on the same test pairs (a per-query sample of the split, ``--test-pairs`` and
``--heldout-pairs``), so rows compare directly.

Rows: the majority class of the training pairs; tier 1 MiniLM-L6 (zero-shot: the bi-encoder's
cosine similarity cut into grades by three thresholds fitted on calib; fine-tuned with
``CrossEncoderTrainer``, softmax and ordinal heads, plus the naive recipe as a reference);
tiers 2 and 3 (SmolLM2-135M-Instruct, gemma-3-270m: zero-shot = the grade tokens'
next-token probabilities; fine-tuned = the probe, softmax and ordinal heads, with the layer
and pooling chosen on calib); optionally one LoRA run on a small subset (``--lora-pairs``).
Throughput is pairs per second of scoring on this machine (for the LLMs, the forward pass
that gives both the zero-shot logits and the probe's features). A second table compares the
probe's layers, poolings, heads and class balance on the unseen-queries view.

Expensive results are cached (LLM features in ``<cache>/features``, fine-tuned cross-encoders
in ``<cache>/ce-*``), so an interrupted run resumes.

Usage:
    python benchmarks/eval_tiers.py                                  # all tiers, defaults
    python benchmarks/eval_tiers.py --tiers tier1 --ce-train 800     # a quick look
    python benchmarks/eval_tiers.py --threads 1                      # on a loaded machine
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
    pairs_per_s: float | None
    train_s: float | None = None
    note: str = ""
    extra: dict = field(default_factory=dict)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", default=str(CACHE / "run"), help="bus with ESCI-150 ingested (ingested here if missing)")
    p.add_argument("--cache", default=str(CACHE), help="features and fine-tuned models are cached here")
    p.add_argument("--out", default=str(HERE / "results" / "eval_tiers.md"), help="Markdown results (JSON beside it)")
    p.add_argument("--tiers", default="tier1,tier2,tier3")
    p.add_argument("--tier1", default="packaged:minilm-l6")
    p.add_argument("--tier2", default="packaged:smollm2-135m-instruct")
    p.add_argument("--tier3", default="packaged:gemma3-270m")
    p.add_argument("--seed", type=int, default=13)
    p.add_argument("--reps", type=int, default=1000, help="bootstrap replicates")
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--test-pairs", type=int, default=160, help="unseen-queries view: test-split pairs scored")
    p.add_argument("--heldout-pairs", type=int, default=180, help="held-out-pairs view: pairs scored")
    p.add_argument("--ce-train", type=int, default=800, help="cross-encoder training pairs (0: all of the 80%%)")
    p.add_argument("--ce-max-length", type=int, default=64)
    p.add_argument("--ce-epochs", type=float, default=2.0)
    p.add_argument("--ce-lr", type=float, default=5e-5)
    p.add_argument("--ce-eval-steps", type=int, default=20)
    p.add_argument("--ce-naive", action=argparse.BooleanOptionalAction, default=True,
                   help="also train the naive recipe (softmax, no class balance, lr 2e-5, last checkpoint)")
    p.add_argument("--calib-pairs", type=int, default=80, help="calib pairs for early stopping / selection")
    p.add_argument("--llm-train", type=int, default=320, help="probe training pairs (from the 80%%)")
    p.add_argument("--llm-max-length", type=int, default=128)
    p.add_argument("--llm-batch", type=int, default=8)
    p.add_argument("--lora-pairs", type=int, default=0, help="one LoRA run on tier2 with this many pairs (0: skip)")
    p.add_argument("--lora-test-pairs", type=int, default=100)
    p.add_argument("--data-dir", default=None, help="ESCI-150 folder (default: the checkout's data/)")
    return p.parse_args(argv)


# ----------------------------------------------------------------------------------------
def ensure_esci(run: str, data_dir: str | None):
    from relforge.bus import DataBus
    from relforge.config import load_config
    from relforge.ingest import ingest_esci

    bus = DataBus(run)
    if not bus.is_committed("judgments"):
        ingest_esci(bus, load_config(), data_dir)
    return bus


def score_row(view, tier, model, method, head, train_pairs, test, pred, reps, seed, k, **kw) -> Row:
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

    cuts = np.unique(np.quantile(scores, np.linspace(0.02, 0.98, 25)))
    best, best_value = None, -np.inf
    for combo in combinations(cuts, k - 1):
        pred = np.searchsorted(np.asarray(combo), scores, side="right")
        cm = np.zeros((k, k))
        np.add.at(cm, (grades, pred), 1)
        value = metrics_from_confusion(cm)[metric]
        if value > best_value:
            best, best_value = np.asarray(combo), value
    return best


def ce_settings(cfg) -> dict:
    """The settings that make a fine-tuned cross-encoder (its cache key)."""
    keys = ("head", "balance", "item_field", "select_metric", "early_stopping", "calib_max_pairs", "seed")
    return {k: v for k, v in cfg.model_dump(mode="json").items() if k in keys or k.startswith("ce_")}


def digest(obj) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:12]


# ----------------------------------------------------------------------------------------
def tier1_rows(args, ref, views, train, calib, k, log) -> tuple[list[Row], dict]:
    from sentence_transformers import SentenceTransformer

    from relforge.config import FinetuneConfig
    from relforge.finetune import finetune_cross_encoder
    from relforge.grades import ESCI
    from relforge.tiers import CrossEncoderScorer, resolve_model_ref

    base = resolve_model_ref(ref)
    rows: list[Row] = []
    info: dict = {}
    # zero-shot: the bi-encoder's cosine similarity, cut by thresholds fitted on calib
    encoder = SentenceTransformer(str(base), device="cpu", local_files_only=True)
    encoder.max_seq_length = args.ce_max_length

    def cosine(pairs):
        kw = {"batch_size": 64, "normalize_embeddings": True, "convert_to_numpy": True}
        q = encoder.encode([str(x) for x in pairs.query], **kw)
        t = encoder.encode([str(x) for x in pairs.text], **kw)
        return (q * t).sum(1)

    cuts = fit_thresholds(cosine(calib), calib.grade.astype(int), k)
    info["tier1_zero_shot_thresholds"] = cuts.round(4).tolist()
    for view, test in views.items():
        start = time.perf_counter()
        pred = np.searchsorted(cuts, cosine(test), side="right")
        rate = len(test) / (time.perf_counter() - start)
        rows.append(score_row(view, "tier1", "MiniLM-L6", "zero-shot: bi-encoder cosine + 3 calib thresholds", "-",
                              0, test, pred, args.reps, args.seed, k, pairs_per_s=rate))
    recipes = [("softmax", "fine-tuned", {}), ("ordinal", "fine-tuned", {})]
    if args.ce_naive:
        recipes.append(("softmax", "fine-tuned, naive recipe",
                        {"balance": "none", "ce_learning_rate": 2e-5, "early_stopping": False}))
    for head, method, overrides in recipes:
        cfg = FinetuneConfig(**{
            "head": head, "ce_max_length": args.ce_max_length, "ce_epochs": args.ce_epochs,
            "ce_learning_rate": args.ce_lr, "ce_eval_steps": args.ce_eval_steps,
            "calib_max_pairs": args.calib_pairs, "seed": args.seed, **overrides,
        })
        naive = "naive" in method
        key = digest({"base": str(base), "cfg": ce_settings(cfg), "train": list(train.item_id[:5]), "n": len(train),
                      "naive": naive})
        folder = Path(args.cache) / f"ce-{head}-{key}"
        report_path = folder / "eval_report.json"
        if report_path.is_file():
            report = json.loads(report_path.read_text())
            log(f"tier1 {method} {head}: reusing {folder}")
        else:
            log(f"tier1 {method} {head}: training on {len(train)} pairs")
            report = finetune_cross_encoder(base, train, calib, folder, ESCI, cfg, head=head, base_ref=ref)
            report_path.write_text(json.dumps(report, indent=2, default=str))
        scorer = CrossEncoderScorer(folder, ESCI, batch_size=32, max_length=args.ce_max_length)
        for view, test in views.items():
            start = time.perf_counter()
            scores = scorer.score(test.pairs())
            rate = len(test) / (time.perf_counter() - start)
            rows.append(score_row(
                view, "tier1", "MiniLM-L6", method, head, report["train_pairs"], test, scores.grades, args.reps,
                args.seed, k, pairs_per_s=rate, train_s=report["seconds"],
                note="no class balance, lr 2e-5, last checkpoint" if naive else "",
                extra={"best_step": report["best_step"], "steps": report["steps"]},
            ))
        del scorer
    return rows, info


# ----------------------------------------------------------------------------------------
def llm_rows(args, tier, name, ref, views, train, calib, k, log) -> tuple[list[Row], list[dict], dict]:
    from relforge.finetune import (
        FeatureCache,
        PromptEncoder,
        count_layers,
        feature_key,
        grade_metrics,
        select_probe_head,
    )
    from relforge.grades import ESCI
    from relforge.tiers import resolve_model_ref

    base = resolve_model_ref(ref)
    n_layers = count_layers(base)
    layers = sorted({n_layers // 2, (3 * n_layers) // 4, n_layers})
    encoder = PromptEncoder(base, ESCI, layers=layers, max_length=args.llm_max_length, batch_size=args.llm_batch)
    cache = FeatureCache(Path(args.cache) / "features")
    feats = {}
    for part, pairs in [("train", train), ("calib", calib), *views.items()]:
        log(f"{tier} {name}: features of {len(pairs)} {part} pairs")
        feats[part] = cache.get(encoder, pairs.pairs(), f"{name} {part}")
    rows: list[Row] = []
    rate = {v: len(views[v]) / float(feats[v]["seconds"].sum()) for v in views}
    train_rate = (len(train) + len(calib)) / float(feats["train"]["seconds"].sum() + feats["calib"]["seconds"].sum())
    for view, test in views.items():
        f = feats[view]
        pred = np.where(f["failed"], -1, np.nan_to_num(f["grade_logits"]).argmax(1))
        rows.append(score_row(view, tier, name, "zero-shot: grade-token probabilities", "-", 0, test, pred,
                              args.reps, args.seed, k, pairs_per_s=rate[view]))
    ok_t, ok_c = ~feats["train"]["failed"], ~feats["calib"]["failed"]
    ablation = []
    chosen = {}
    for head in ("softmax", "ordinal"):
        for balance in ("class-weights", "none"):
            for layer in layers:
                for pooling in ("last-token", "mean"):
                    key = feature_key(pooling, layer)
                    start = time.perf_counter()
                    fitted, rep = select_probe_head(
                        feats["train"][key][ok_t], train.grade[ok_t], feats["calib"][key][ok_c], calib.grade[ok_c],
                        k, head, [0.01, 0.1, 1.0, 10.0], balance, "qwk", args.seed,
                    )
                    fit_s = time.perf_counter() - start
                    entry = {"tier": tier, "model": name, "head": head, "balance": balance, "layer": layer,
                             "n_layers": n_layers, "pooling": pooling, "l2": rep["l2"], "calib": rep["calib_best"],
                             "fit_s": round(fit_s, 2)}
                    test = views["unseen queries"]
                    f = feats["unseen queries"]
                    pred = fitted.probs(np.nan_to_num(f[key])).argmax(1)
                    pred = np.where(f["failed"], -1, pred)
                    entry["test"] = grade_metrics(test.grade[pred >= 0], pred[pred >= 0], k)
                    ablation.append(entry)
                    if balance == "class-weights":
                        best = chosen.get(head)
                        if best is None or entry["calib"]["qwk"] > best[0]["calib"]["qwk"]:
                            chosen[head] = (entry, fitted, key)
    feature_train_s = float(feats["train"]["seconds"].sum() + feats["calib"]["seconds"].sum())
    for head, (entry, fitted, key) in chosen.items():
        for view, test in views.items():
            f = feats[view]
            pred = np.where(f["failed"], -1, fitted.probs(np.nan_to_num(f[key])).argmax(1))
            rows.append(score_row(
                view, tier, name, f"probe (layer {entry['layer']}/{n_layers}, {entry['pooling']})", head,
                int(ok_t.sum()), test, pred, args.reps, args.seed, k, pairs_per_s=rate[view],
                train_s=round(feature_train_s + entry["fit_s"], 1),
                extra={"l2": entry["l2"], "layer": entry["layer"], "pooling": entry["pooling"]},
            ))
    return rows, ablation, {f"{tier}_feature_rate_train": round(train_rate, 3), f"{tier}_layers": layers}


def lora_rows(args, ref, views, train, calib, k, log) -> tuple[list[Row], dict]:
    from relforge.config import FinetuneConfig
    from relforge.finetune import finetune_lora, sample_per_query
    from relforge.grades import ESCI
    from relforge.tiers import CausalLMScorer, resolve_model_ref

    base = resolve_model_ref(ref)
    small = sample_per_query(train, args.lora_pairs, args.seed)
    cfg = FinetuneConfig(llm_max_length=args.llm_max_length, lora_epochs=1, lora_batch_size=4, lora_grad_accum=4,
                         lora_eval_steps=max(1, len(small) // 32), calib_max_pairs=min(32, args.calib_pairs),
                         seed=args.seed)
    key = digest({"base": str(base), "cfg": cfg.model_dump(mode="json"), "n": len(small)})
    folder = Path(args.cache) / f"lora-{key}"
    report_path = folder / "eval_report.json"
    if report_path.is_file():
        report = json.loads(report_path.read_text())
    else:
        log(f"tier2 LoRA on {len(small)} pairs")
        report = finetune_lora(base, small, calib, folder, ESCI, cfg, base_ref=ref)
        report_path.write_text(json.dumps(report, indent=2))
    test = sample_per_query(views["unseen queries"], args.lora_test_pairs, args.seed)
    start = time.perf_counter()
    scores = CausalLMScorer(folder, ESCI, batch_size=args.llm_batch, max_length=args.llm_max_length).score(test.pairs())
    rate = len(test) / (time.perf_counter() - start)
    row = score_row("unseen queries", "tier2", "SmolLM2-135M", f"LoRA r={cfg.lora_r}, 1 epoch (subset)", "grade-tokens",
                    report["train_pairs"], test, scores.grades, args.reps, args.seed, k, pairs_per_s=rate,
                    train_s=report["seconds"], note=f"scored on {len(test)} of the view's pairs")
    return [row], {"lora": report}


# ----------------------------------------------------------------------------------------
def fmt_ci(m: dict, ci: dict, key: str) -> str:
    lo, hi = ci[key]
    return f"{m[key]:.3f} [{lo:.2f}, {hi:.2f}]"


def markdown(rows: list[Row], ablation: list[dict], meta: dict) -> str:
    out = [
        "# Tiers on ESCI-150: zero-shot and fine-tuned, against human labels",
        "",
        f"Command: `{meta['command']}`  ",
        (f"Machine: {meta['machine']}; torch threads {meta['threads']}; load average at start {meta['load_start']}, "
        f"at end {meta['load_end']}; wall time {meta['wall_min']:.1f} min."),
        "",
        f"Data: {meta['data']}",
        "",
        "Metrics with 95% bootstrap CIs over queries (" + str(meta["reps"]) + " replicates). "
        "Throughput: pairs scored per second on this machine (LLMs: the one forward pass that gives the "
        "zero-shot logits and the probe's features). Train s: fine-tuning wall seconds (probe: feature "
        "extraction of its train and calib pairs plus the fit).",
        "",
    ]
    for view in dict.fromkeys(r.view for r in rows):
        vrows = [r for r in rows if r.view == view]
        out += [f"## {view} ({meta['views'][view]})", "",
                "| tier | model | method | head | train pairs | accuracy | macro-F1 | QWK | pairs/s | train s |",
                "|---|---|---|---|---:|---|---|---|---:|---:|"]
        for r in vrows:
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
        out += ["## Probe choices (unseen-queries view; L2 chosen on calib by QWK)", "",
                "| model | head | class balance | layer | pooling | L2 | calib QWK | test acc | test macro-F1 | test QWK |",
                "|---|---|---|---:|---|---:|---:|---:|---:|---:|"]
        for a in ablation:
            out.append(
                f"| {a['model']} | {a['head']} | {a['balance']} | {a['layer']}/{a['n_layers']} | {a['pooling']} | "
                f"{a['l2']} | {a['calib']['qwk']:.3f} | {a['test']['accuracy']:.3f} | {a['test']['macro_f1']:.3f} | "
                f"{a['test']['qwk']:.3f} |"
            )
        out.append("")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    from relforge.finetune import load_graded_pairs, sample_per_query, split_within_queries
    from relforge.grades import read_grade_scale

    started = time.perf_counter()
    load_start = os.getloadavg()[0]

    def log(msg: str) -> None:
        print(f"[{time.perf_counter() - started:7.0f}s] {msg}", file=sys.stderr, flush=True)

    Path(args.cache).mkdir(parents=True, exist_ok=True)
    bus = ensure_esci(args.run, args.data_dir)
    scale = read_grade_scale(bus)
    k = scale.n
    train_all = load_graded_pairs(bus, "train", n_grades=k)
    calib_all = load_graded_pairs(bus, "calib", n_grades=k)
    test_all = load_graded_pairs(bus, "test", n_grades=k)
    train80, held20 = split_within_queries(train_all, 0.2, args.seed)
    calib = sample_per_query(calib_all, args.calib_pairs, args.seed)
    views = {
        "unseen queries": sample_per_query(test_all, args.test_pairs, args.seed),
        "held-out pairs": sample_per_query(held20, args.heldout_pairs, args.seed),
    }
    majority = int(np.bincount(train80.grade, minlength=k).argmax())
    rows: list[Row] = []
    for view, test in views.items():
        rows.append(score_row(view, "-", "-", f"majority class ({scale.names[majority]})", "-", len(train80), test,
                              np.full(len(test), majority), args.reps, args.seed, k, pairs_per_s=None))
    tiers = [t.strip() for t in args.tiers.split(",") if t.strip()]
    info: dict = {}
    ablation: list[dict] = []
    if "tier1" in tiers:
        ce_train = sample_per_query(train80, args.ce_train or None, args.seed)
        r, i = tier1_rows(args, args.tier1, views, ce_train, calib, k, log)
        rows += r
        info.update(i)
    llm_train = sample_per_query(train80, args.llm_train, args.seed)
    for tier, name, ref in (("tier2", "SmolLM2-135M", args.tier2), ("tier3", "gemma-3-270m", args.tier3)):
        if tier in tiers:
            r, a, i = llm_rows(args, tier, name, ref, views, llm_train, calib, k, log)
            rows += r
            ablation += a
            info.update(i)
    if args.lora_pairs:
        r, i = lora_rows(args, args.tier2, views, train80, calib, k, log)
        rows += r
        info.update(i)
    order = {"-": 0, "tier1": 1, "tier2": 2, "tier3": 3}
    rows.sort(key=lambda r: (list(views).index(r.view), order.get(r.tier, 9)))
    grade_counts = {v: np.bincount(t.grade, minlength=k).tolist() for v, t in views.items()}
    meta = {
        "command": "python benchmarks/eval_tiers.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}",
        "threads": torch.get_num_threads(),
        "load_start": round(load_start, 1),
        "load_end": round(os.getloadavg()[0], 1),
        "wall_min": (time.perf_counter() - started) / 60,
        "reps": args.reps,
        "data": (
            f"ESCI-150 ({k} grades {scale.names}); query-level split train {len(set(train_all.query_id))} / "
            f"calib {len(set(calib_all.query_id))} / test {len(set(test_all.query_id))} queries. Training pairs: "
            f"80% of each train query's pairs ({len(train80)} pairs; tier 1 used {args.ce_train or len(train80)}, "
            f"the probes {len(llm_train)}); calib: {len(calib)} pairs; cross-encoder max length "
            f"{args.ce_max_length} tokens, LLM prompts {args.llm_max_length} tokens (item text cut to fit)."
        ),
        "views": {
            "unseen queries": f"{len(views['unseen queries'])} pairs of the {len(set(test_all.query_id))} test-split "
                              f"queries, grades {grade_counts['unseen queries']}",
            "held-out pairs": f"{len(views['held-out pairs'])} held-out pairs of "
                              f"{len(set(views['held-out pairs'].query_id))} train-split queries, grades "
                              f"{grade_counts['held-out pairs']}",
        },
        **info,
    }
    text = markdown(rows, ablation, meta)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    payload = {"meta": meta, "rows": [r.__dict__ for r in rows], "ablation": ablation}
    out.with_suffix(".json").write_text(json.dumps(payload, indent=2, default=str), encoding="utf-8")
    print(text)
    log(f"wrote {out}")
    return payload


if __name__ == "__main__":
    main()
