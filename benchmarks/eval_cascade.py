"""The calibrated cascade on an ingested run (ESCI-150 by default), against human labels (issue 8, point 7).

What is measured, each with 95% bootstrap CIs over queries (``--reps`` replicates):

- each single tier, **zero-shot** and **fine-tuned**, with each calibration method (the product's
  per-class isotonic and the baselines: uncalibrated, temperature, top-label isotonic):
  accuracy, macro-F1, QWK; zero-shot means the base model with no training pair: the
  bi-encoder's cosine with its ordered-logit map fitted on the view's calibration pairs, the
  LLMs' grade-token probabilities; a cross-encoder base has no grade head (no row);
- a **majority vote** over the fine-tuned tiers (each tier's calibrated grade; ties go to the
  grade with the largest summed calibrated probability);
- the **cascade** of the fine-tuned tiers with per-class isotonic calibrators and thresholds
  chosen on the calibration pairs, at two operating points: the configured target accuracy
  (``calibrate.target_accuracy``) and the issue's goal (the best single tier's accuracy on the
  calibration pairs minus 0.5 point, at the least compute); its compute relative to sending
  every pair to the top tier, and the share of pairs each tier decides;
- per-class isotonic against the best other calibration of each fine-tuned tier, with a
  paired bootstrap over queries and an exact McNemar test;
- one **decomposition** table: the top tier zero-shot and uncalibrated, then what fine-tuning,
  calibration and cascading each add to accuracy and to compute.

**Two views**, and which calibration data serves which:

- *unseen queries*: the tiers fine-tuned on the train split by ``finetune-tiers``; calibrators
  and thresholds fitted on the **calib split** (other unseen queries, like the test queries);
  evaluated on every judged pair of the **test split**;
- *held-out pairs of train-split queries* (labelling mined candidates of queries the tiers
  saw): each train query's pairs are split (``--heldout``, default 20% held out); the tiers are
  fine-tuned again on the other pairs only (``finetune-tiers`` on a copy of the run whose
  judgments lack the held-out pairs); the held-out pairs are split **by query** in two halves:
  calibrators and thresholds fitted on one half (held-out pairs of seen queries, the view's
  own kind of pair), evaluation on the other.

Every pair is scored in this run (no score cache): the compute figures are the tier scorers'
measured seconds per pair, in the same run as the quality figures. Writes Markdown and JSON
(``--out``).

Usage:
    python benchmarks/eval_cascade.py                                    # ESCI-150, the default tiers
    python benchmarks/eval_cascade.py --config configs/demo.yaml         # the demo's tiers and caps
    python benchmarks/eval_cascade.py --tiny --out /tmp/eval.md          # a tiny synthetic check
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import platform
import shutil
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO))  # tests.tiny_models for --tiny
CACHE = Path(os.environ.get("RELFORGE_CACHE", "~/.cache/relforge")).expanduser() / "eval-cascade"
METHODS = ("per-class-isotonic", "none", "temperature", "top-label-isotonic")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", default=str(CACHE / "run"), help="an ingested run (ESCI-150 is ingested here if empty)")
    p.add_argument("--config", default=None, help="relforge configuration YAML (tiers, models, fine-tuning)")
    p.add_argument("--set", action="append", default=[], help="section.key=value override, as for relforge")
    p.add_argument("--tiers", default=None, help="comma-separated tier names (default: tiers.names)")
    p.add_argument("--heldout", type=float, default=0.2, help="share of each train query's pairs held out")
    p.add_argument("--calib-pairs", type=int, default=None, help="cap on calibration pairs, per query (default: all)")
    p.add_argument("--eval-pairs", type=int, default=None, help="cap on evaluation pairs, per query (default: all)")
    p.add_argument("--reps", type=int, default=1000, help="bootstrap replicates")
    p.add_argument("--views", default="unseen,heldout", help="unseen and/or heldout")
    p.add_argument("--out", default=str(HERE / "results" / "eval_cascade.md"), help="Markdown (JSON beside it)")
    p.add_argument("--tiny", action="store_true", help="a tiny synthetic run with tiny models (checks the script)")
    return p.parse_args(argv)


STARTED = time.perf_counter()


def log(msg: str) -> None:
    print(f"[{time.perf_counter() - STARTED:7.0f}s] {msg}", file=sys.stderr, flush=True)


# -- runs ----------------------------------------------------------------------------------------

def tiny_setup(root: Path) -> tuple[str, list[str]]:
    """A learnable synthetic run (the grade is the item's colour) and tiny base models; returns the
    run's URI and the ``--set`` overrides that point the tiers at the tiny models."""
    from tests.finetune.conftest import write_synthetic_bus
    from tests.tiny_models import tiny_bert_cross_encoder, tiny_bi_encoder, tiny_llama

    from relforge.bus import DataBus

    models = root / "models"
    if not (models / "llm" / "config.json").is_file():
        tiny_bi_encoder(models / "bi")
        tiny_bert_cross_encoder(models / "bert", n_grades=4, head="softmax")
        tiny_llama(models / "llm")
    run = root / "run"
    if not DataBus(run).is_committed("judgments"):
        write_synthetic_bus(DataBus(run), pairs_per_query=16)
    overrides = [
        "tiers.names=[tier0, tier1, tier2]", f"models.cache_dir={root / 'cache'}", "compute.threads=1",
        f"tiers.specs.tier0.model={models / 'bi'}", "tiers.specs.tier0.max_length=32",
        f"tiers.specs.tier1.model={models / 'bert'}", "tiers.specs.tier1.max_length=32",
        f"tiers.specs.tier2.model={models / 'llm'}", "tiers.specs.tier2.max_length=96",
        "finetune.ce_epochs=1", "finetune.ce_max_length=32", "finetune.llm_max_length=96", "finetune.probe_l2=[0.1]",
        "finetune.ce_eval_steps=4",
    ]
    return str(run), overrides


def heldout_run(bus, config, heldout: float, folder: Path):
    """A copy of the run whose judgments lack each train query's held-out pairs; returns (bus, held-out pairs)."""
    import pyarrow as pa

    from relforge.bus import DataBus
    from relforge.finetune import load_graded_pairs, split_within_queries

    scale_n = len(bus.manifest("judgments").metadata["grade_scale"]["names"])
    train = load_graded_pairs(bus, "train", config.finetune.item_field, scale_n)
    _, held = split_within_queries(train, heldout, config.finetune.seed)
    out = DataBus(folder, config.bus)
    drop = set(zip(held.query_id.tolist(), held.item_id.tolist()))
    for name in ("catalog", "queries", "judgments"):
        table = bus.read_table(name)
        meta = bus.manifest(name).metadata
        if name == "judgments":
            keys = zip(table.column("query_id").to_pylist(), table.column("item_id").to_pylist())
            table = table.filter(pa.array([k not in drop for k in keys]))
        if not out.is_committed(name) or out.manifest(name).rows != table.num_rows:
            out.write_table(name, table.replace_schema_metadata(None), metadata=meta,
                            inputs={"source": bus.manifest(name).digest(), "heldout": str(heldout)})
    return out, held


def finetune(bus, config) -> None:
    from relforge.steps import run_step

    record = run_step("finetune-tiers", bus.root, config)
    log(f"finetune-tiers on {bus.root}: {record['decided']} ({record['seconds']:.0f} s)")


# -- scoring -------------------------------------------------------------------------------------

class Scored:
    """One tier variant's scores of the calibration and evaluation pairs (scored now, timed now)."""

    def __init__(self, name: str, kind: str, model: str, calib: np.ndarray, evals: np.ndarray, calib_cost: np.ndarray,
                 eval_cost: np.ndarray, train_pairs: int):
        self.name, self.kind, self.model = name, kind, model
        self.calib, self.eval, self.calib_cost, self.eval_cost = calib, evals, calib_cost, eval_cost
        self.train_pairs = train_pairs


def score_with(scorer, pairs, catalog_texts) -> tuple[np.ndarray, np.ndarray]:
    scorer.prepare_items(catalog_texts, encode=[p.text for p in pairs.pairs()])  # as calibrate: items apart
    scores = scorer.score(pairs.pairs())
    if scores.failed.any():
        raise SystemExit(f"{scorer.name}: {int(scores.failed.sum())} pairs failed: {next(e for e in scores.errors if e)}")
    probs = scores.probs.astype(np.float64)
    return probs / probs.sum(axis=1, keepdims=True), scores.cost.astype(np.float64)


def fine_tuned(bus, config, name, scale, calib, evals, catalog_texts) -> Scored:
    from relforge.calibrate import resolve_tier

    tier = resolve_tier(bus, config, name)
    scorer = tier.scorer(scale, config)
    try:
        c, cc = score_with(scorer, calib, catalog_texts)
        e, ec = score_with(scorer, evals, catalog_texts)
    finally:
        scorer.close()
    report = bus.read_json(f"models/{name}/finetune.json") if bus.exists(f"models/{name}/finetune.json") else {}
    return Scored(name, "fine-tuned", tier.ref, c, e, cc, ec, int(report.get("train_pairs") or 0))


def zero_shot(config, name, scale, calib, evals, catalog_texts) -> Scored | None:
    """The tier's base model with no training pair (``None`` for a cross-encoder base: no grade head)."""
    from relforge.finetune import select_probe_head
    from relforge.finetune._base import base_reference
    from relforge.tiers import BiEncoder, load_scorer, resolve_model_ref

    spec = config.tiers.spec(name)
    base = base_reference(config, name)  # tiers.specs.<tier>.model, else models.<tier>
    if spec.backend == "cross-encoder":
        return None
    folder = resolve_model_ref(base, config.models, config.bus)
    if spec.backend == "bi-encoder":
        enc = BiEncoder(folder, max_length=spec.max_length, cache_dir=Path(config.models.cache_dir) / "embeddings")
        enc.prepare_items(catalog_texts, encode=[p.text for p in [*calib.pairs(), *evals.pairs()]])
        start = time.perf_counter()
        cc = enc.cosines(calib.pairs())
        c_cost = np.full(len(calib), (time.perf_counter() - start) / max(len(calib), 1))
        head, _ = select_probe_head(cc[:, None], calib.grade, cc[:, None], calib.grade, scale.n, "ordinal",
                                    config.finetune.probe_l2, config.finetune.balance, config.finetune.select_metric)
        start = time.perf_counter()
        ec = enc.cosines(evals.pairs())
        e_cost = np.full(len(evals), (time.perf_counter() - start) / max(len(evals), 1))
        return Scored(name, "zero-shot", str(base), head.probs(cc[:, None]), head.probs(ec[:, None]), c_cost, e_cost, 0)
    if spec.backend in ("causal-lm",):
        scorer = load_scorer(spec.model_copy(update={"model": str(folder)}), scale, config.models)
        try:
            c, cc = score_with(scorer, calib, catalog_texts)
            e, ec = score_with(scorer, evals, catalog_texts)
        finally:
            scorer.close()
        return Scored(name, "zero-shot", str(base), c, e, cc, ec, 0)
    return None


# -- measuring -----------------------------------------------------------------------------------

def metrics_row(evals, pred, k, reps, seed) -> dict:
    from relforge.finetune import bootstrap_by_query, grade_metrics

    y = evals.grade.astype(np.int64)
    m = grade_metrics(y, pred, k)
    ci = bootstrap_by_query(evals.query_id, y, pred, k, reps=reps, seed=seed)
    return {**m, "ci": {key: list(v) for key, v in ci.items()}}


def evaluate_view(view: str, tiers: list[Scored], zero: list[Scored], calib, evals, scale, config, reps) -> dict:
    from relforge.calibrate import (
        DECISIONS,
        calibrator_factory,
        compare_to_best_baseline,
        decided_grade,
        route,
        search_thresholds,
    )

    k, seed = scale.n, config.calibrate.seed
    yc, ye = calib.grade.astype(np.int64), evals.grade.astype(np.int64)
    cfg = config.calibrate
    factory = {m: calibrator_factory(m, min_positives=cfg.min_positives, floor=cfg.floor) for m in METHODS}
    out: dict = {"view": view, "calib_pairs": len(calib), "calib_queries": len(set(calib.query_id)),
                 "eval_pairs": len(evals), "eval_queries": len(set(evals.query_id)),
                 "eval_grades": np.bincount(ye, minlength=k).tolist(), "single": [], "comparison": {}}
    majority = int(np.bincount(yc, minlength=k).argmax())
    out["majority"] = {"grade": scale.names[majority], **metrics_row(evals, np.full(len(ye), majority), k, reps, seed)}
    calibrated: dict[str, dict[str, np.ndarray]] = {}
    for s in [*zero, *tiers]:
        per_method = {}
        for m in METHODS:
            cal = factory[m]().fit(s.calib, yc)
            per_method[m] = cal.transform(s.eval)
            out["single"].append({"tier": s.name, "kind": s.kind, "model": s.model, "method": m,
                                  "train_pairs": s.train_pairs, "seconds_per_pair": float(s.eval_cost.mean()),
                                  **metrics_row(evals, per_method[m].argmax(axis=1), k, reps, seed)})
        calibrated[f"{s.kind}:{s.name}"] = per_method
        if s.kind == "fine-tuned":
            cmp = compare_to_best_baseline(evals.query_id, ye, per_method, reps=max(reps, 1000), seed=seed)
            out["comparison"][s.name] = cmp.as_dict()
    # majority vote over the fine-tuned tiers' calibrated grades
    probs = [calibrated[f"fine-tuned:{s.name}"]["per-class-isotonic"] for s in tiers]
    votes = np.stack([np.eye(k)[p.argmax(axis=1)] for p in probs]).sum(axis=0)
    vote = (votes + 1e-6 * np.stack(probs).sum(axis=0)).argmax(axis=1)
    out["vote"] = {**metrics_row(evals, vote, k, reps, seed),
                   "seconds_per_pair": float(sum(s.eval_cost.mean() for s in tiers))}
    # the cascade: calibrators and thresholds from the calibration pairs, applied to the evaluation pairs
    cals = [factory["per-class-isotonic"]().fit(s.calib, yc) for s in tiers]
    cal_c = [c.transform(s.calib) for c, s in zip(cals, tiers)]
    cal_e = [c.transform(s.eval) for c, s in zip(cals, tiers)]
    costs_c = [s.calib_cost for s in tiers]
    costs_e = [s.eval_cost for s in tiers]
    best_single = max(float((p.argmax(axis=1) == yc).mean()) for p in cal_c)
    top_cost = float(costs_e[-1].mean())
    out["cascade"] = {}
    for label, target in (("configured target", cfg.target_accuracy), ("goal: best single tier - 0.5 point",
                                                                         best_single - 0.005)):
        choice = search_thresholds(cal_c, costs_c, yc, mode="target-accuracy", target=target, n_grid=cfg.grid)
        r = route(cal_e, costs_e, choice.thresholds)
        shares = np.bincount(r.tier, minlength=len(tiers)) / len(ye)
        out["cascade"][label] = {
            "target": target, "feasible_on_calib": choice.feasible,
            "thresholds": [None if np.isinf(t) else t for t in choice.thresholds],
            **metrics_row(evals, r.grade, k, reps, seed),
            "seconds_per_pair": float(r.cost.mean()), "relative_compute": float(r.cost.mean()) / top_cost,
            "shares": dict(zip([s.name for s in tiers], shares.tolist())),
        }
    # the decision rule (calibrate.decision): each fine-tuned tier's per-class isotonic probabilities turned
    # into grades by each rule, and the cascade at the configured target under each rule
    out["decision"] = []
    for s in tiers:
        p = calibrated[f"fine-tuned:{s.name}"]["per-class-isotonic"]
        for rule in DECISIONS:
            out["decision"].append({"system": s.name, "rule": rule, "seconds_per_pair": float(s.eval_cost.mean()),
                                    **metrics_row(evals, decided_grade(p, rule), k, reps, seed)})
    for rule in DECISIONS:
        choice = search_thresholds(cal_c, costs_c, yc, mode="target-accuracy", target=cfg.target_accuracy,
                                   n_grid=cfg.grid, decision=rule)
        r = route(cal_e, costs_e, choice.thresholds, rule)
        shares = np.bincount(r.tier, minlength=len(tiers)) / len(ye)
        out["decision"].append({
            "system": f"cascade at the configured target ({cfg.target_accuracy:.3f}); decided: "
                      + ", ".join(f"{t.name} {v:.0%}" for t, v in zip(tiers, shares)),
            "rule": rule, "feasible_on_calib": choice.feasible, "seconds_per_pair": float(r.cost.mean()),
            "relative_compute": float(r.cost.mean()) / top_cost, **metrics_row(evals, r.grade, k, reps, seed)})
    # decomposition: the top tier zero-shot -> fine-tuned -> calibrated -> the cascade
    top = tiers[-1].name
    rows = []
    z = next((r for r in out["single"] if r["tier"] == top and r["kind"] == "zero-shot" and r["method"] == "none"), None)
    if z is not None:
        rows.append({"step": f"{top} zero-shot, uncalibrated", **_dec(z, top_cost)})
    f = next(r for r in out["single"] if r["tier"] == top and r["kind"] == "fine-tuned" and r["method"] == "none")
    rows.append({"step": "+ fine-tuning", **_dec(f, top_cost)})
    c = next(r for r in out["single"] if r["tier"] == top and r["kind"] == "fine-tuned" and r["method"] == "per-class-isotonic")
    rows.append({"step": "+ per-class isotonic calibration", **_dec(c, top_cost)})
    g = out["cascade"]["goal: best single tier - 0.5 point"]
    rows.append({"step": "+ cascading (goal operating point)", "accuracy": g["accuracy"], "qwk": g["qwk"],
                 "relative_compute": g["relative_compute"]})
    for prev, row in itertools.pairwise(rows):
        row["accuracy_gain"] = row["accuracy"] - prev["accuracy"]
        row["compute_change"] = row["relative_compute"] - prev["relative_compute"]
    out["decomposition"] = rows
    best = max((r for r in out["single"] if r["kind"] == "fine-tuned"), key=lambda r: r["accuracy"])
    out["goal"] = {
        "best_single": {k2: best[k2] for k2 in ("tier", "method", "accuracy", "qwk")},
        "accuracy_within_half_point": g["accuracy"] >= best["accuracy"] - 0.005,
        "qwk_inside_best_ci": best["ci"]["qwk"][0] <= g["qwk"] <= best["ci"]["qwk"][1] or g["qwk"] >= best["qwk"],
        "compute_at_most_0.35": g["relative_compute"] <= 0.35,
    }
    return out


def _dec(row: dict, top_cost: float) -> dict:
    return {"accuracy": row["accuracy"], "qwk": row["qwk"], "relative_compute": row["seconds_per_pair"] / top_cost}


# -- report --------------------------------------------------------------------------------------

def _ci(row: dict, key: str) -> str:
    lo, hi = row["ci"][key]
    return f"{row[key]:.3f} [{lo:.2f}, {hi:.2f}]"


def markdown(results: dict) -> str:
    lines = ["# The calibrated cascade on ESCI-150" if results["meta"]["data"] == "esci" else "# The calibrated cascade", "",
             (f"Generated by `benchmarks/eval_cascade.py` in {results['meta']['seconds']:.0f} s on "
             f"{results['meta']['machine']}; tiers {results['meta']['tiers']}. 95% bootstrap CIs over queries "
             f"({results['meta']['reps']} replicates). Compute: the tier scorers' measured seconds per pair, in this run."),
             ""]
    for view in results["views"]:
        lines += [f"## {view['view']}", "",
                  (f"Calibration: {view['calib_pairs']} pairs of {view['calib_queries']} queries ({view['calibration']}). "
                  f"Evaluation: {view['eval_pairs']} pairs of {view['eval_queries']} queries, grades {view['eval_grades']}."),
                  "", "| tier | model | method | train pairs | accuracy | macro-F1 | QWK | s / pair |",
                  "|---|---|---|---:|---|---|---|---:|"]
        m = view["majority"]
        lines.append(f"| - | majority class ({m['grade']}) | - | - | {_ci(m, 'accuracy')} | {_ci(m, 'macro_f1')} | "
                     f"{_ci(m, 'qwk')} | - |")
        for r in view["single"]:
            lines.append(f"| {r['tier']} | {r['kind']}: {r['model']} | {r['method']} | {r['train_pairs']} | "
                         f"{_ci(r, 'accuracy')} | {_ci(r, 'macro_f1')} | {_ci(r, 'qwk')} | {r['seconds_per_pair']:.4f} |")
        v = view["vote"]
        lines.append(f"| all | majority vote of the fine-tuned tiers | per-class-isotonic | - | {_ci(v, 'accuracy')} | "
                     f"{_ci(v, 'macro_f1')} | {_ci(v, 'qwk')} | {v['seconds_per_pair']:.4f} |")
        for label, c in view["cascade"].items():
            shares = ", ".join(f"{t} {s:.0%}" for t, s in c["shares"].items())
            lines.append(f"| cascade | {label} (target {c['target']:.3f}); decided: {shares} | per-class-isotonic | - | "
                         f"{_ci(c, 'accuracy')} | {_ci(c, 'macro_f1')} | {_ci(c, 'qwk')} | {c['seconds_per_pair']:.4f} "
                         f"(x{c['relative_compute']:.2f} of the top tier) |")
        lines += ["", ("The decision rule (`calibrate.decision`) on the same per-class isotonic probabilities: "
                       "`most-probable` (the argmax) against `expected-grade` (the grade nearest the expected grade, "
                       "the least expected squared grade error):"), "",
                  "| system | rule | accuracy | macro-F1 | QWK | s / pair |", "|---|---|---|---|---|---:|"]
        for r in view.get("decision", []):
            rel = f" (x{r['relative_compute']:.2f} of the top tier)" if "relative_compute" in r else ""
            lines.append(f"| {r['system']} | {r['rule']} | {_ci(r, 'accuracy')} | {_ci(r, 'macro_f1')} | "
                         f"{_ci(r, 'qwk')} | {r['seconds_per_pair']:.4f}{rel} |")
        lines += ["", "Per-class isotonic against the best other calibration (lowest NLL), same evaluation pairs:", "",
                  "| tier | best baseline | accuracy difference | NLL difference | McNemar |", "|---|---|---|---|---|"]
        for tier, c in view["comparison"].items():
            a, n, mc = c["accuracy"], c["nll"], c["mcnemar"]
            lines.append(f"| {tier} | {c['baseline']} | {a['difference']:+.4f} [{a['ci'][0]:.3f}, {a['ci'][1]:.3f}] "
                         f"p={a['p_value']:.3f} | {n['difference']:+.4f} [{n['ci'][0]:.3f}, {n['ci'][1]:.3f}] "
                         f"p={n['p_value']:.3f} | {mc['candidate_only']} / {mc['baseline_only']} p={mc['p_value']:.3f} |")
        lines += ["", "What each step adds (top tier; compute relative to sending every pair to the top tier):", "",
                  "| step | accuracy | gain | QWK | compute | change |", "|---|---:|---:|---:|---:|---:|"]
        for r in view["decomposition"]:
            lines.append(f"| {r['step']} | {r['accuracy']:.3f} | {r.get('accuracy_gain', 0):+.3f} | {r['qwk']:.3f} | "
                         f"{r['relative_compute']:.2f} | {r.get('compute_change', 0):+.2f} |")
        g = view["goal"]
        lines += ["", (f"Goal (cascade within 0.5 point of the best single tier's accuracy, QWK inside its CI, at <= 0.35x "
                  f"the top tier's compute): accuracy {'met' if g['accuracy_within_half_point'] else 'MISSED'}, QWK "
                  f"{'met' if g['qwk_inside_best_ci'] else 'MISSED'}, compute {'met' if g['compute_at_most_0.35'] else 'MISSED'} "
                  f"(best single tier: {g['best_single']['tier']} {g['best_single']['method']}, accuracy "
                  f"{g['best_single']['accuracy']:.3f})."), ""]
    return "\n".join(lines)


def main(argv=None) -> dict:
    args = parse_args(argv)
    from relforge.bus import DataBus
    from relforge.config import load_config
    from relforge.finetune import load_graded_pairs, sample_per_query
    from relforge.grades import read_grade_scale

    started = time.perf_counter()
    overrides = list(args.set)
    run = args.run
    if args.tiny:
        run, tiny = tiny_setup(Path(args.run) if args.run != str(CACHE / "run") else CACHE / "tiny")
        overrides = tiny + overrides
    if args.tiers:
        overrides.append(f"tiers.names=[{args.tiers}]")
    config = load_config(args.config, overrides)
    from relforge import compute

    compute.configure(config.compute)
    bus = DataBus(run, config.bus)
    if not bus.is_committed("judgments"):
        from relforge.ingest import ingest_esci

        log(f"ingesting ESCI-150 into {run}")
        ingest_esci(bus, config)
    scale = read_grade_scale(bus)
    field = config.finetune.item_field
    catalog_texts = ["" if t is None else str(t) for t in bus.read_table("catalog", columns=[field]).column(field).to_pylist()]
    names = config.tiers.names
    views = []
    seed = config.calibrate.seed
    if "unseen" in args.views:
        finetune(bus, config)
        calib = sample_per_query(load_graded_pairs(bus, "calib", field, scale.n), args.calib_pairs, seed)
        evals = sample_per_query(load_graded_pairs(bus, "test", field, scale.n), args.eval_pairs, seed)
        log(f"unseen queries: scoring {len(calib)} calib and {len(evals)} test pairs with {names}")
        tiers = [fine_tuned(bus, config, n, scale, calib, evals, catalog_texts) for n in names]
        zero = [z for n in names if (z := zero_shot(config, n, scale, calib, evals, catalog_texts)) is not None]
        view = evaluate_view("unseen queries (test split)", tiers, zero, calib, evals, scale, config, args.reps)
        view["calibration"] = "the calib split: unseen queries, like the test queries"
        views.append(view)
    if "heldout" in args.views:
        hbus, held = heldout_run(bus, config, args.heldout, Path(str(run).rstrip("/") + "-heldout"))
        finetune(hbus, config)
        queries = np.unique(held.query_id)
        rng = np.random.default_rng(seed)
        half = set(rng.permutation(queries)[: len(queries) // 2].tolist())
        in_half = np.array([q in half for q in held.query_id])
        calib = sample_per_query(held.subset(np.flatnonzero(in_half)), args.calib_pairs, seed)
        evals = sample_per_query(held.subset(np.flatnonzero(~in_half)), args.eval_pairs, seed)
        log(f"held-out pairs: scoring {len(calib)} calibration and {len(evals)} evaluation pairs with {names}")
        tiers = [fine_tuned(hbus, config, n, scale, calib, evals, catalog_texts) for n in names]
        zero = [z for n in names if (z := zero_shot(config, n, scale, calib, evals, catalog_texts)) is not None]
        view = evaluate_view("held-out pairs of train-split queries", tiers, zero, calib, evals, scale, config, args.reps)
        view["calibration"] = ("held-out pairs of half the train-split queries (the view's own kind of pair); the "
                               "evaluation pairs are the other half's")
        views.append(view)
    results = {
        "meta": {"tiers": names, "reps": args.reps, "seconds": time.perf_counter() - started,
                 "data": "tiny" if args.tiny else "esci" if bus.manifest("catalog").metadata.get("origin") == "esci-us-150"
                 else "run", "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}",
                 "run": str(run)},
        "views": views,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(markdown(results))
    out.with_suffix(".json").write_text(json.dumps(results, indent=2, default=str))
    log(f"wrote {out} and {out.with_suffix('.json')}")
    if args.tiny and args.run == str(CACHE / "run"):
        shutil.rmtree(CACHE / "tiny-heldout", ignore_errors=True)
    return results


if __name__ == "__main__":
    main()
