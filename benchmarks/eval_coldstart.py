"""Cold start on an ingested run (ESCI-150 by default): a distilled labeler against its teacher.

Human judgments are used **only to evaluate** (and, where a row says so, to calibrate): the
queries are written by the generator from catalog items (the run's own train / calib queries
shown as a style guide, without their judged items: ``coldstart.few_shot_judged=false``), the
pairs graded by the teacher used zero-shot (the run must not hold a teacher fine-tuned or
calibrated on its human labels), and the student trained on the teacher's labels, through the same library steps as ``relforge
synthesize-queries``, ``coldstart-candidates``, ``teacher-label`` and ``distill``.

Measured on the test split's human judgments (pairs sampled per query, ``--test-pairs``), each
model scored in this run on the same pairs:

- the **teacher** (``--teacher``, a tier: its configured model, zero-shot), the **students**
  distilled from it with soft targets and with hard targets, and the **same student trained on
  the human train split** (the same recipe and number of pairs, ``--human-train-pairs``), plus
  the majority class;
- each raw (its own argmax) and calibrated (per-class isotonic fitted on ``--calib-pairs``
  human calib pairs, each model its own calibrator: "calibrated on whatever human judgments
  exist");
- accuracy, macro-F1 and QWK with 95% bootstrap CIs over queries, and each student against
  the teacher: a paired bootstrap over queries of the difference (CI, two-sided p) and the
  exact McNemar test on per-pair correctness;
- throughput (pairs/s on the test pairs, this machine, this run) and the cost per 1,000 pairs
  (seconds of this machine, and dollars at ``--usd-per-hour``);
- the synthetic queries: each filter's share and a sample.

Usage:
    python benchmarks/eval_coldstart.py                                  # ESCI-150, full size
    python benchmarks/eval_coldstart.py --items 20 --test-pairs 40 --calib-pairs 40 --reps 200   # a quick look
    python benchmarks/eval_coldstart.py --run runs/own --config my.yaml --teacher tier3   # another data set
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
CACHE = Path(os.environ.get("RELFORGE_CACHE", "~/.cache/relforge")).expanduser() / "eval-coldstart"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--run", default=str(CACHE / "run"), help="an ingested run (ESCI-150 is ingested here if it is empty)")
    p.add_argument("--config", default=None, help="relforge configuration YAML")
    p.add_argument("--set", action="append", default=[], help="section.key=value override, as for relforge")
    p.add_argument("--out", default=str(HERE / "results" / "eval_coldstart.md"), help="Markdown results (JSON beside it)")
    p.add_argument("--items", type=int, default=500, help="catalog items the generator writes queries for")
    p.add_argument("--teacher", default="tier3", help="the teacher tier (zero-shot); must be in tiers.names")
    p.add_argument("--student", default="tier1", help="the tier the student is made like")
    p.add_argument("--test-pairs", type=int, default=None, help="test pairs, sampled per query (default: all)")
    p.add_argument("--calib-pairs", type=int, default=400, help="human calib pairs the calibrators are fitted on")
    p.add_argument("--human-train-pairs", default="same",
                   help="pairs of the human-trained student: `same` (as many as the synthetic student), `all`, or N")
    p.add_argument("--reps", type=int, default=1000, help="bootstrap replicates")
    p.add_argument("--usd-per-hour", type=float, default=0.10,
                   help="price of this machine per hour, for the cost column (default: a 2-vCPU cloud VM)")
    return p.parse_args(argv)


@dataclass
class Row:
    """One model's scores on the test pairs."""

    model: str
    role: str
    trained_on: str
    train_pairs: int | None
    probs: np.ndarray
    seconds: float | None
    cost_units: float | None = None
    failed: int = 0
    calib_probs: np.ndarray | None = None


def log(started: float, msg: str) -> None:
    print(f"[{time.perf_counter() - started:7.0f}s] {msg}", file=sys.stderr, flush=True)


def metrics_ci(query_ids, y, pred, k, reps, seed) -> tuple[dict, dict]:
    from relforge.finetune import bootstrap_by_query, grade_metrics

    return grade_metrics(y, pred, k), bootstrap_by_query(query_ids, y, pred, k, reps=reps, seed=seed)


def paired_difference(query_ids, y, pred_a, pred_b, k, reps, seed) -> dict:
    """Paired bootstrap over queries of ``metric(a) - metric(b)`` for accuracy, macro-F1 and QWK."""
    from relforge.finetune import metrics_from_confusion

    _, inverse = np.unique(np.asarray(query_ids), return_inverse=True)
    n_q = int(inverse.max()) + 1
    cm_a, cm_b = np.zeros((n_q, k, k)), np.zeros((n_q, k, k))
    np.add.at(cm_a, (inverse, y, pred_a), 1.0)
    np.add.at(cm_b, (inverse, y, pred_b), 1.0)
    point_a, point_b = metrics_from_confusion(cm_a.sum(0)), metrics_from_confusion(cm_b.sum(0))
    rng = np.random.default_rng(seed)
    draws = {m: np.empty(reps) for m in ("accuracy", "macro_f1", "qwk")}
    for r in range(reps):
        counts = np.bincount(rng.integers(0, n_q, n_q), minlength=n_q)[:, None, None]
        a, b = metrics_from_confusion((cm_a * counts).sum(0)), metrics_from_confusion((cm_b * counts).sum(0))
        for m, values in draws.items():
            values[r] = a[m] - b[m]
    out = {}
    for m, d in draws.items():
        below, above = int((d <= 0).sum()), int((d >= 0).sum())
        out[m] = {"difference": point_a[m] - point_b[m], "ci": [float(np.quantile(d, 0.025)), float(np.quantile(d, 0.975))],
                  "p": float(min(1.0, 2.0 * (min(below, above) + 1) / (reps + 1)))}
    return out


def score(scorer, pairs) -> tuple[np.ndarray, float, float, int]:
    """Probabilities, wall seconds, summed cost units and failures of ``scorer`` on ``pairs``."""
    start = time.perf_counter()
    out = scorer.score(pairs)
    return out.probs, time.perf_counter() - start, float(out.cost.sum()), int(out.failed.sum())


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    started = time.perf_counter()
    from relforge import compute
    from relforge.bus import DataBus
    from relforge.calibrate import calibrator_factory, mcnemar_exact, resolve_tier
    from relforge.coldstart import (
        run_coldstart_candidates,
        run_distill,
        run_synthesize_queries,
        run_teacher_label,
    )
    from relforge.config import load_config
    from relforge.finetune import (
        base_reference,
        finetune_cross_encoder,
        load_graded_pairs,
        sample_per_query,
    )
    from relforge.grades import read_grade_scale
    from relforge.tiers import load_scorer, resolve_model_ref

    # human judgments only evaluate: the few-shot examples are the run's queries alone (no judged item)
    overrides = [*args.set, f"coldstart.items={args.items}", f"coldstart.teacher={args.teacher}",
                 f"coldstart.student={args.student}", "coldstart.few_shot_judged=false"]
    config = load_config(args.config, overrides)
    compute.configure(config.compute)
    if args.teacher not in config.tiers.names:
        sys.exit(f"--teacher {args.teacher} is not in tiers.names {config.tiers.names}")
    bus = DataBus(args.run, config.bus)
    if not bus.is_committed("judgments"):
        from relforge.ingest import ingest_esci

        log(started, f"ingesting ESCI-150 into {args.run}")
        ingest_esci(bus, config)
    if bus.exists(f"models/{args.teacher}/manifest.json") or bus.exists(f"calibrators/{args.teacher}/manifest.json"):
        sys.exit(f"{bus.uri('models/' + args.teacher)} (or its calibrator) is on the run: a teacher fine-tuned or "
                 "calibrated on the human labels would leak them; use a run without it (--run)")
    scale = read_grade_scale(bus)
    k, seed, ft = scale.n, config.coldstart.seed, config.finetune

    # 1-3: synthetic queries, candidates, teacher labels (the library steps; committed work is reused)
    steps = {}
    for name, step in (("synthesize-queries", run_synthesize_queries), ("coldstart-candidates", run_coldstart_candidates),
                       ("teacher-label", run_teacher_label)):
        log(started, f"{name} ...")
        t0 = time.perf_counter()
        steps[name] = {**step(bus, config), "wall_s": round(time.perf_counter() - t0, 1)}
        log(started, f"{name}: {steps[name]['decided']}")
    # 4: the students, soft and hard targets (each its own tier folder)
    students = {}
    for targets in ("soft", "hard"):
        name = f"distilled-{targets}"
        cfg = config.model_copy(update={"coldstart": config.coldstart.model_copy(update={"targets": targets, "name": name})})
        t0 = time.perf_counter()
        summary = run_distill(bus, cfg)
        students[targets] = {**summary, "wall_s": round(time.perf_counter() - t0, 1)}
        log(started, f"distill ({targets}): {summary['decided']}")
    synthetic_pairs = students["soft"]["train_pairs"]

    # the same student on the human train split, the same recipe
    train_h = load_graded_pairs(bus, "train", ft.item_field, k)
    calib_h = load_graded_pairs(bus, "calib", ft.item_field, k)
    cap = synthetic_pairs if args.human_train_pairs == "same" else (
        None if args.human_train_pairs == "all" else int(args.human_train_pairs))
    train_h = sample_per_query(train_h, cap, seed)
    base_ref = base_reference(config, args.student)
    key = hashlib.sha256(json.dumps({"ft": ft.model_dump(mode="json"), "base": base_ref, "items": train_h.item_id.tolist(),
                                     "queries": train_h.query_id.tolist()}, sort_keys=True).encode()).hexdigest()[:12]
    human_dir = Path(args.run) / "eval-coldstart" / f"human-{len(train_h)}-{key}"
    human_report_path = human_dir / "eval_report.json"
    if human_report_path.is_file():
        human_report = json.loads(human_report_path.read_text())
    else:
        log(started, f"student on the human train split: {len(train_h)} pairs")
        human_report = finetune_cross_encoder(resolve_model_ref(base_ref, config.models, config.bus), train_h, calib_h,
                                              human_dir, scale, ft, base_ref=base_ref)
        human_report_path.write_text(json.dumps(human_report, indent=2, default=str))

    # 5: every model on the same test pairs, and on the calib pairs its calibrator is fitted on
    test = sample_per_query(load_graded_pairs(bus, "test", ft.item_field, k), args.test_pairs, seed)
    calib = sample_per_query(calib_h, args.calib_pairs, seed)
    teacher_tier = resolve_tier(bus, config, args.teacher)
    models = [("teacher", f"{args.teacher} zero-shot ({teacher_tier.ref})", "-", None,
               lambda: teacher_tier.scorer(scale, config))]
    for targets in ("soft", "hard"):
        folder = bus.get_dir(f"models/distilled-{targets}", Path(args.run) / "eval-coldstart" / f"distilled-{targets}")
        spec = config.tiers.spec(args.student).model_copy(update={"model": str(folder), "name": f"distilled-{targets}"})
        models.append((f"student ({targets} targets)", f"{args.student} distilled, {targets} targets",
                       f"synthetic ({targets} teacher labels)", students[targets]["train_pairs"],
                       lambda spec=spec: load_scorer(spec, scale, config.models)))
    human_spec = config.tiers.spec(args.student).model_copy(update={"model": str(human_dir), "name": "human"})
    models.append(("student (human labels)", f"{args.student} on human train", "human train split", len(train_h),
                   lambda: load_scorer(human_spec, scale, config.models)))
    rows: list[Row] = []
    for role, model, trained_on, n_train, make in models:
        log(started, f"scoring {len(test)} test and {len(calib)} calib pairs: {role}")
        with make() as scorer:
            probs, seconds, cost, failed = score(scorer, test.pairs())
            calib_probs, _, _, _ = score(scorer, calib.pairs())
        rows.append(Row(model, role, trained_on, n_train, probs, seconds, cost, failed, calib_probs))
    majority = int(np.bincount(train_h.grade, minlength=k).argmax())
    y, q = test.grade.astype(np.int64), test.query_id
    table = []
    for row in rows:
        ok = ~np.isnan(row.probs).any(axis=1)
        cal_ok = ~np.isnan(row.calib_probs).any(axis=1)
        raw = np.where(ok, np.nan_to_num(row.probs).argmax(axis=1), majority)
        calibrator = calibrator_factory("per-class-isotonic", min_positives=config.calibrate.min_positives)().fit(
            row.calib_probs[cal_ok].astype(np.float64), calib.grade[cal_ok].astype(np.int64))
        calibrated = raw.copy()
        if ok.any():
            calibrated[ok] = calibrator.transform(row.probs[ok].astype(np.float64)).argmax(axis=1)
        for view, pred in (("raw", raw), ("calibrated", calibrated)):
            m, ci = metrics_ci(q, y, pred, k, args.reps, seed)
            table.append({"role": row.role, "model": row.model, "trained_on": row.trained_on,
                          "train_pairs": row.train_pairs, "view": view, "metrics": m, "ci": ci, "pred": pred,
                          "pairs_per_s": len(test) / row.seconds if row.seconds else None,
                          "s_per_1000": 1000 * row.seconds / len(test) if row.seconds else None,
                          "cost_units_per_1000": 1000 * row.cost_units / len(test) if row.cost_units else None,
                          "failed": row.failed})
    m, ci = metrics_ci(q, y, np.full(len(y), majority), k, args.reps, seed)
    table.insert(0, {"role": "majority class", "model": scale.names[majority], "trained_on": "human train split",
                     "train_pairs": len(train_h), "view": "-", "metrics": m, "ci": ci, "pred": np.full(len(y), majority),
                     "pairs_per_s": None, "s_per_1000": None, "cost_units_per_1000": None, "failed": 0})
    comparisons = []
    for view in ("raw", "calibrated"):
        teacher = next(t for t in table if t["role"] == "teacher" and t["view"] == view)
        for t in table:
            if t["role"].startswith("student") and t["view"] == view:
                comparisons.append({
                    "view": view, "student": t["role"],
                    "difference": paired_difference(q, y, t["pred"], teacher["pred"], k, args.reps, seed),
                    "mcnemar": asdict(mcnemar_exact(t["pred"] == y, teacher["pred"] == y)),
                })
    synthetic = bus.read_json("reports/coldstart-queries.json")
    teacher_rate = next(t for t in table if t["role"] == "teacher")["s_per_1000"]
    soft_rate = next(t for t in table if t["role"] == "student (soft targets)")["s_per_1000"]
    doc = {
        "args": vars(args), "grade_scale": scale.names, "test": {"pairs": len(test), "queries": len(np.unique(q)),
                                                                 "grades": np.bincount(y, minlength=k).tolist()},
        "calib_pairs": len(calib), "steps": steps, "students": students,
        "human_student": {k2: human_report.get(k2) for k2 in ("train_pairs", "steps", "best_step", "calib_best", "seconds")},
        "table": [{k2: v for k2, v in t.items() if k2 != "pred"} for t in table], "comparisons": comparisons,
        "synthetic": {k2: synthetic[k2] for k2 in ("sampled_items", "generated", "kept", "filters", "sample",
                                                   "generation_seconds")},
        "speedup": teacher_rate / soft_rate if teacher_rate and soft_rate else None,
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "threads": compute.current().threads,
                    "load_average": os.getloadavg(), "usd_per_hour": args.usd_per_hour},
        "seconds": round(time.perf_counter() - started, 1),
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(doc, indent=2, default=_json))
    out.write_text(markdown(doc))
    log(started, f"wrote {out} and {out.with_suffix('.json')}")
    return doc


def _json(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)


def _difference(d: dict) -> str:
    return f"{d['difference']:+.3f} [{d['ci'][0]:+.2f}, {d['ci'][1]:+.2f}] p={d['p']:.2f}"


def _ci(m: dict, ci: dict, key: str) -> str:
    low, high = ci[key]
    return f"{m[key]:.3f} [{low:.2f}, {high:.2f}]"


def markdown(doc: dict) -> str:
    a, usd = doc["args"], doc["machine"]["usd_per_hour"]
    test = doc["test"]
    lines = [
        "# Cold start on ESCI-150: the distilled labeler against its teacher", "",
        f"`python benchmarks/eval_coldstart.py {' '.join(sys.argv[1:])}`".replace("``", "(defaults)"), "",
        (f"Human judgments only evaluate (and calibrate, in the `calibrated` rows). Test: {test['pairs']} pairs of "
         f"{test['queries']} test-split queries, grades {test['grades']} ({', '.join(doc['grade_scale'])}); calibrators "
         f"(per-class isotonic, one per model) fitted on {doc['calib_pairs']} human calib pairs. 95% bootstrap CIs over "
         f"queries ({a['reps']} replicates). Throughput: each model on the test pairs, in this run, on this machine "
         f"({doc['machine']['cpus']} CPUs, {doc['machine']['threads']} torch threads, load average "
         f"{', '.join(f'{x:.1f}' for x in doc['machine']['load_average'])} at the end); cost at ${usd:.2f} per hour."), "",
        "| model | role | trained on | train pairs | view | accuracy | macro-F1 | QWK | pairs/s | s per 1k pairs | $ per 1k pairs |",
        "|---|---|---|---:|---|---|---|---|---:|---:|---:|",
    ]
    for t in doc["table"]:
        m, ci = t["metrics"], t["ci"]
        rate = "-" if t["pairs_per_s"] is None else f"{t['pairs_per_s']:.1f}"
        s1k = "-" if t["s_per_1000"] is None else f"{t['s_per_1000']:.0f}"
        cost = "-" if t["s_per_1000"] is None else f"{t['s_per_1000'] / 3600 * usd:.4f}"
        failed = f" ({t['failed']} failed)" if t["failed"] else ""
        lines.append(f"| {t['model']} | {t['role']}{failed} | {t['trained_on']} | {t['train_pairs'] or '-'} | {t['view']} | "
                     f"{_ci(m, ci, 'accuracy')} | {_ci(m, ci, 'macro_f1')} | {_ci(m, ci, 'qwk')} | {rate} | {s1k} | {cost} |")
    lines += ["", ("Each student against the teacher on the same pairs (student - teacher; paired bootstrap over queries; "
                   "exact McNemar on per-pair correctness):"), "",
              "| view | student | accuracy diff | macro-F1 diff | QWK diff | McNemar (student only / teacher only, p) |",
              "|---|---|---|---|---|---|"]
    for c in doc["comparisons"]:
        diffs = [_difference(c["difference"][key]) for key in ("accuracy", "macro_f1", "qwk")]
        mc = c["mcnemar"]
        lines.append(f"| {c['view']} | {c['student']} | {' | '.join(diffs)} | "
                     f"{mc['candidate_only']} / {mc['baseline_only']}, p={mc['p_value']:.2f} |")
    if doc["speedup"]:
        lines += ["", (f"Throughput: the soft-target student labels pairs {doc['speedup']:.1f}x faster than the teacher "
                       "on this machine (the same ratio for the cost).")]
    syn = doc["synthetic"]
    lines += ["", "## The synthetic queries", "",
              (f"{syn['sampled_items']} items sampled, {syn['generated']} queries written ({syn['generation_seconds']} s "
               f"of generation this run), {syn['kept']} kept. Filters in order:"), "",
              "| filter | removed | share of generated | share of those reaching it |", "|---|---:|---:|---:|"]
    for name, c in syn["filters"].items():
        if name == "kept":
            lines.append(f"| **kept** | {c['reaching']} | {c['share_of_generated']:.1%} | |")
        else:
            lines.append(f"| {name} | {c['removed']} | {c['share_of_generated']:.1%} | {c['share_of_reaching']:.1%} |")
    lines += ["", "| query | source item | removed by |", "|---|---|---|"]
    for r in syn["sample"][:15]:
        title = (r.get("title") or "").replace("|", "/")[:80]
        lines.append(f"| {(r['query'] or '').replace('|', '/')} | {title} | {r['removed_by'] or 'kept'} |")
    steps = doc["steps"]
    lines += ["", "## The steps in this run", ""]
    for name, s in steps.items():
        lines.append(f"- `{name}` ({s['wall_s']} s): {s['decided']}")
    for targets, s in doc["students"].items():
        lines.append(f"- `distill` {targets} ({s['wall_s']} s): {s['decided']}")
    lines.append(f"- the human-trained student: {doc['human_student']}")
    lines.append(f"\nTotal {doc['seconds']:.0f} s.")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
