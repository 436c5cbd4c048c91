"""Index benchmark: exact, HNSW and IVF-PQ from ``relforge.index`` on clustered unit vectors.

Generates a deterministic catalog of ``--items`` (default 1,000,000) ``--dim``-wide (384)
unit vectors with cluster structure (``--clusters`` Gaussian clusters of log-normal sizes,
each with a decaying noise spectrum in a random rotation, normalised) and ``--queries``
held-out queries drawn from the same distribution, then measures each index kind in its
own subprocess (so that its peak memory is its own):

- build seconds (wall and CPU);
- recall@10 against exact search (all queries);
- batch queries per second (all queries in one call) and single-query queries per second
  (one query per call, for up to ``--single`` queries or ``--single-seconds`` seconds);
- peak resident memory of the process (vectors included) and the index's own share
  (resident memory after the build minus before it);
- for HNSW and IVF-PQ, the same at other search breadths (``efSearch``, ``nprobe``): a
  search-time setting, no rebuild.

Beside the figures: the load average (before and after), the CPU flags that matter for
faiss and BLAS (avx2, avx512f, avx512_bf16, amx), faiss's build options, and what
``relforge.index.plan_batch`` decides for a one-shot batch search at several query counts
(its estimates next to the measured costs), and the goal line: recall@10 >= 0.98 at >= 10x
exact's queries per second.

Usage:
    python benchmarks/bench_index.py                          # 1M items, 10k queries, 384-d
    python benchmarks/bench_index.py --items 100000 --queries 5000
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _memory import own_peak_mib, rss_mib

K = 10
SEED = 11
GOAL_RECALL, GOAL_SPEEDUP = 0.98, 10.0
HNSW_EF = (64, 128, 256, 512)
IVF_NPROBE = (16, 32, 64, 128, 256)


# -- data ---------------------------------------------------------------------------------------
def clustered_vectors(
    n: int,
    dim: int,
    n_clusters: int,
    seed: int,
    centers_seed: int = SEED,
    spread: float = 0.8,
    decay: float = 0.5,
    out: np.ndarray | None = None,
    chunk: int = 50_000,
) -> np.ndarray:
    """``n`` unit vectors from a mixture of ``n_clusters`` Gaussian clusters, normalised.

    The clusters (centres, sizes, noise shape) depend on ``centers_seed`` only, so item and
    query sets drawn with different ``seed`` come from the same distribution. Centres are
    random unit vectors; sizes log-normal; the noise has standard deviation proportional to
    ``j ** -decay`` along the ``j``-th axis of a random rotation, scaled to total norm
    ``spread`` (a point's cosine to its centre is then about ``1 / sqrt(1 + spread**2)``).

    Args:
        n: vectors to draw.
        dim: their width.
        n_clusters: mixture components.
        seed: the draw.
        centers_seed: the mixture.
        spread: noise norm relative to the (unit) centres.
        decay: how fast the noise spectrum decays (0: isotropic).
        out: an array (or ``np.memmap``) of shape ``(n, dim)`` to fill, else a new one.
        chunk: vectors drawn per step (bounds temporary memory).

    Returns:
        ``(n, dim)`` float32, rows of norm 1.
    """
    crng = np.random.default_rng(centers_seed)
    centers = crng.standard_normal((n_clusters, dim), dtype=np.float32)
    centers /= np.linalg.norm(centers, axis=1, keepdims=True)
    weights = crng.lognormal(0.0, 1.0, n_clusters)
    weights /= weights.sum()
    scale = np.arange(1, dim + 1, dtype=np.float32) ** -decay
    scale *= spread / np.sqrt(float((scale**2).sum()))
    rotation = np.linalg.qr(crng.standard_normal((dim, dim)))[0].astype(np.float32)
    rng = np.random.default_rng(seed)
    out = np.empty((n, dim), np.float32) if out is None else out
    for s in range(0, n, chunk):
        m = min(chunk, n - s)
        labels = rng.choice(n_clusters, m, p=weights)
        x = centers[labels] + (rng.standard_normal((m, dim), dtype=np.float32) * scale) @ rotation
        out[s : s + m] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out


def write_data(args) -> None:
    """Items, queries and exact ground truth as .npy files in ``args.workdir``."""
    work = Path(args.workdir)
    items = np.lib.format.open_memmap(work / "items.npy", "w+", np.float32, (args.items, args.dim))
    shape = {"spread": args.spread, "decay": args.decay}
    clustered_vectors(args.items, args.dim, args.clusters, seed=1, out=items, **shape)
    items.flush()
    del items
    queries = clustered_vectors(args.queries, args.dim, args.clusters, seed=2, **shape)
    np.save(work / "queries.npy", queries)


# -- system -------------------------------------------------------------------------------------
def cpu_flags() -> dict[str, bool]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        text = ""
    flags = set()
    for line in text.splitlines():
        if line.startswith("flags"):
            flags.update(line.split(":", 1)[1].split())
            break
    return {
        "avx2": "avx2" in flags,
        "avx512f": "avx512f" in flags,
        "avx512_bf16": "avx512_bf16" in flags,
        "amx": any(f.startswith("amx") for f in flags),
    }


def load_average() -> str:
    try:
        return " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "n/a"


# -- measurements (each in a child process) -------------------------------------------------------
def _timed(fn):
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - wall, time.process_time() - cpu


def _single_qps(index, queries, n_max: int, seconds: float) -> tuple[float, int]:
    """Queries per second with one query per call, on one thread (a request's latency; a
    server runs one such search per core)."""
    import faiss

    threads = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    try:
        done, start = 0, time.perf_counter()
        while done < min(n_max, len(queries)) and (time.perf_counter() - start < seconds or done < 5):
            index.search(queries[done : done + 1], K)
            done += 1
        return done / (time.perf_counter() - start), done
    finally:
        faiss.omp_set_num_threads(threads)


def _search_sweep(index, queries, truth, args, name: str, values) -> list[dict[str, float]]:
    from relforge.index import recall_at_k

    rows = []
    base = index.params
    for value in values:
        index.params = base.with_(**{name: value})
        (found, _), wall, _cpu = _timed(lambda: index.search(queries, K))
        single, n_single = _single_qps(index, queries, args.single, args.single_seconds)
        rows.append({name: value, "recall": recall_at_k(found, truth, K), "batch_qps": len(queries) / wall,
                     "single_qps": single, "single_n": n_single})
    index.params = base
    return rows


def child(kind: str, args) -> dict[str, object]:
    """Measure one kind (run in a subprocess)."""
    import faiss

    from relforge.index import IndexParams, ItemIndex, recall_at_k

    work = Path(args.workdir)
    rss0 = rss_mib()
    items = np.load(work / "items.npy")
    queries = np.load(work / "queries.npy")
    rss1 = rss_mib()
    params = IndexParams(threads=args.threads)
    index, build_wall, build_cpu = _timed(lambda: ItemIndex.build(items, kind=kind, params=params))
    rss2 = rss_mib()
    (found, _), wall, _cpu = _timed(lambda: index.search(queries, K))
    if kind == "exact":
        np.save(work / "truth.npy", found)
        truth = found
        sims = index.search(queries, K)[1]
    else:
        truth = np.load(work / "truth.npy")
    single, n_single = _single_qps(index, queries, args.single, args.single_seconds)
    out: dict[str, object] = {
        "kind": kind, "faiss_class": index.faiss_class, "params": params.kind_params(kind, args.dim, args.items),
        "build_s": build_wall, "build_cpu_s": build_cpu, "recall": recall_at_k(found, truth, K),
        "batch_qps": len(queries) / wall, "single_qps": single, "single_n": n_single,
        "peak_mb": own_peak_mib(), "vectors_mb": rss1 - rss0, "index_mb": rss2 - rss1,
        "threads": args.threads or faiss.omp_get_max_threads(),
    }
    if kind == "exact":
        out["top1_cos"], out["top10_cos"] = float(np.mean(sims[:, 0])), float(np.mean(sims[:, K - 1]))
    if kind == "hnsw":
        out["sweep"] = _search_sweep(index, queries, truth, args, "hnsw_ef_search", HNSW_EF)
    elif kind == "ivfpq":
        out["sweep"] = _search_sweep(index, queries, truth, args, "ivf_nprobe", IVF_NPROBE)
    return out


def child_plan(args) -> dict[str, object]:
    """What ``plan_batch`` estimates for one-shot batch searches (run in a subprocess)."""
    from relforge.index import IndexParams, plan_batch

    work = Path(args.workdir)
    items = np.load(work / "items.npy", mmap_mode="r")
    queries = np.load(work / "queries.npy")
    params = IndexParams(batch_probe_min_exact_s=0.0, threads=args.threads)
    (plan), wall, _ = _timed(lambda: plan_batch(len(items), args.queries, args.dim, K, params,
                                                np.ascontiguousarray(items), queries))
    return {"plan": plan.to_dict(), "plan_s": wall, "margin": params.batch_ann_margin}


def run_child(kind: str, args) -> dict[str, object]:
    cmd = [sys.executable, __file__, "--child", kind, "--workdir", args.workdir, "--items", str(args.items),
           "--queries", str(args.queries), "--dim", str(args.dim), "--single", str(args.single),
           "--single-seconds", str(args.single_seconds), "--spread", str(args.spread), "--decay", str(args.decay)]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{kind} failed:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# -- report -------------------------------------------------------------------------------------
def report(results: dict[str, dict], plan: dict | None, args, load_before: str, gen_s: float) -> str:
    lines = []
    flags = cpu_flags()
    lines.append(f"index benchmark: {args.items:,} items, {args.queries:,} queries, {args.dim}-d, "
                 f"{args.clusters:,} clusters, k={K}")
    lines.append(f"CPU: {os.cpu_count()} logical cores; flags: "
                 + ", ".join(f"{name} {'yes' if on else 'no'}" for name, on in flags.items()))
    import faiss

    lines.append(f"faiss {faiss.__version__} ({faiss.get_compile_options().strip()}), "
                 f"threads {next(iter(results.values()))['threads']}")
    lines.append(f"load average (1, 5, 15 min): before {load_before}, after {load_average()}")
    s = np.arange(1, args.dim + 1, dtype=np.float64) ** -args.decay
    eff = (s**2).sum() ** 2 / (s**4).sum()
    exact = results.get("exact", {})
    lines.append(f"data: spread {args.spread:g}, noise spectrum j^-{args.decay:g} (effective noise dimension "
                 f"{eff:.1f}); mean cosine of a query's nearest item {exact.get('top1_cos', float('nan')):.3f}, "
                 f"of its 10th {exact.get('top10_cos', float('nan')):.3f}; generated in {gen_s:.1f} s")
    lines.append("")
    header = ("| kind | faiss class | build s | build CPU s | recall@10 | single q/s (1 thread) | batch q/s | "
              "peak MiB | index MiB |")
    lines += [header, "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for kind, r in results.items():
        lines.append(f"| {kind} | {r['faiss_class']} | {r['build_s']:.1f} | {r['build_cpu_s']:.1f} | "
                     f"{r['recall']:.4f} | {r['single_qps']:,.0f} | {r['batch_qps']:,.0f} | "
                     f"{r['peak_mb']:,.0f} | {r['index_mb']:,.0f} |")
    for kind, r in results.items():
        if kind != "exact":
            lines.append(f"{kind} parameters: {json.dumps(r['params'])}")
    exact = results.get("exact")
    sweeps = [(kind, r) for kind, r in results.items() if "sweep" in r]
    if sweeps:
        lines += ["", "Search breadth (same index, search-time setting):", "",
                  "| kind | setting | recall@10 | single q/s (1 thread) | x exact | batch q/s | x exact |",
                  "|---|---|---:|---:|---:|---:|---:|"]
        for kind, r in sweeps:
            for row in r["sweep"]:
                name = "efSearch" if "hnsw_ef_search" in row else "nprobe"
                value = row.get("hnsw_ef_search", row.get("ivf_nprobe"))
                xs = row["single_qps"] / exact["single_qps"] if exact else float("nan")
                xb = row["batch_qps"] / exact["batch_qps"] if exact else float("nan")
                lines.append(f"| {kind} | {name} {value} | {row['recall']:.4f} | {row['single_qps']:,.0f} | "
                             f"{xs:.1f} | {row['batch_qps']:,.0f} | {xb:.1f} |")
    if plan:
        title = ("One-shot batch search: relforge.index.plan_batch (ANN probed on a sample, "
                 f"margin {plan['margin']:g}; planning took {plan['plan_s']:.1f} s)")
        lines += ["", title, ""]
        p = plan["plan"]
        lines.append(f"decision for {args.queries:,} queries: {p['reason']}")
        if p["exact_pair_ns"] is not None:
            lines.append(f"measured exact rate: {p['exact_pair_ns']} ns per (query, item) pair")
        est = {e["kind"]: e for e in p["estimates"] if e["search_s"] == e["search_s"]}
        for e in p["estimates"]:
            lines.append(f"- {e['kind']}: {e['basis']}")
        if "exact" in est:
            lines += ["", "| queries | " + " | ".join(f"{k} est. s" for k in est)
                      + " | measured s (build + queries / batch q/s) | choice |", "|---:|" + "---:|" * len(est) + "---|---|"]
        for nq in sorted({1_000, args.queries, 100_000, 1_000_000}) if "exact" in est else []:
            totals = {}
            for kind, e in est.items():
                per_query = e["search_s"] / args.queries
                totals[kind] = e["build_s"] + per_query * nq
            choice = min((k for k in totals if k != "exact"), key=totals.get, default=None)
            pick = choice if choice and totals[choice] * plan["margin"] < totals["exact"] else "exact"
            measured = []
            for kind in est:
                if kind in results:
                    r = results[kind]
                    measured.append(f"{kind} {r['build_s'] + nq / r['batch_qps']:.1f}")
            lines.append(f"| {nq:,} | " + " | ".join(f"{totals[k]:.1f}" for k in est) + f" | {', '.join(measured)} | {pick} |")
    lines.append("")
    lines.append(goal_line(results))
    return "\n".join(lines)


def goal_line(results: dict[str, dict]) -> str:
    exact = results.get("exact")
    if not exact:
        return "Goal: not evaluated (no exact run)"
    verdicts = []
    for mode in ("single", "batch"):
        best = None
        for kind, r in results.items():
            if kind == "exact":
                continue
            rows = r.get("sweep") or [r]
            for row in rows:
                speedup = row[f"{mode}_qps"] / exact[f"{mode}_qps"]
                if row["recall"] >= GOAL_RECALL and speedup >= GOAL_SPEEDUP:
                    setting = {k: v for k, v in row.items() if k in ("hnsw_ef_search", "ivf_nprobe")}
                    cand = (speedup, kind, row["recall"], setting)
                    best = max(best, cand, key=lambda c: c[0]) if best else cand
        if best:
            speedup, kind, recall, setting = best
            verdicts.append(f"{mode}-query: MET by {kind} {setting} (recall@10 {recall:.4f}, {speedup:.1f}x exact)")
        else:
            verdicts.append(f"{mode}-query: NOT MET")
    return f"Goal (recall@10 >= {GOAL_RECALL} at >= {GOAL_SPEEDUP:g}x exact's queries/s): " + "; ".join(verdicts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--queries", type=int, default=10_000)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--clusters", type=int, default=None, help="default: min(2000, items // 50)")
    parser.add_argument("--spread", type=float, default=0.8, help="noise norm relative to the cluster centres")
    parser.add_argument("--decay", type=float, default=0.5, help="noise spectrum j**-decay (0: isotropic)")
    parser.add_argument("--kinds", default="exact,hnsw,ivfpq")
    parser.add_argument("--threads", type=int, default=None, help="faiss threads (default: faiss's, all cores)")
    parser.add_argument("--single", type=int, default=1000, help="single queries timed at most")
    parser.add_argument("--single-seconds", type=float, default=20.0, help="time cap of the single-query loop")
    parser.add_argument("--no-plan", action="store_true", help="skip the plan_batch estimates")
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.clusters = args.clusters or max(2, min(2000, args.items // 50))
    if args.child:
        result = child_plan(args) if args.child == "plan" else child(args.child, args)
        print(json.dumps(result))
        return 0
    kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    if "exact" in kinds:
        kinds = ["exact"] + [k for k in kinds if k != "exact"]
    else:
        kinds = ["exact", *kinds]  # the ground truth
    load_before = load_average()
    with tempfile.TemporaryDirectory(prefix="bench-index-", dir=args.workdir) as work:
        args.workdir = work
        start = time.perf_counter()
        write_data(args)
        gen_s = time.perf_counter() - start
        results = {}
        for kind in kinds:
            print(f"measuring {kind} ...", file=sys.stderr, flush=True)
            results[kind] = run_child(kind, args)
        plan = None if args.no_plan else run_child("plan", args)
    print(report(results, plan, args, load_before, gen_s))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
