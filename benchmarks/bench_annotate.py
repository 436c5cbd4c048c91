"""Annotation benchmark: labels/s and peak memory of ``annotate`` as the candidates grow, and the
cascade against scoring every pair with the top tier, in the same run.

Builds, with tiny models made here (as ``tests/tiny_models.py`` makes them; never downloaded):

- a run with a generated catalog (``--items`` product titles), queries (one per 100
  candidates) and human judgments for ``--calib-queries`` calib queries;
- for each size in ``--sizes``, a ``candidates`` table of that many generated pairs (written
  in files of 200,000 rows);
- a three-tier cascade: tier0 a tiny bi-encoder (cosine + ordered-logit map; the catalog's item
  vectors are encoded once into the cache first, as the dense mining channel leaves them),
  tier1 a tiny cross-encoder, tier2 a tiny Llama read as a causal LM (the top tier, a few times
  the others' size, as an LLM tier is to a cross-encoder), calibrated by the
  ``calibrate`` step (gate off: the tiny models are random). Each non-last tier's threshold is
  then set at the 30th percentile of its calibrated confidence on the calib pairs, so that each
  tier accepts about 70% of the pairs reaching it (random models' routing is not the point
  here; the shares and each tier's pairs/s are printed).

At full size (100,000 and 1,000,000) expect about 16 minutes on 2 idle AVX2 cores (measured; an
earlier run at a load average of 4-5 labelled about three times slower): the top tier alone on
100,000 pairs and the cascade on 1,000,000 are the longest parts.

Each measurement runs ``annotate`` in its own subprocess (so that the peak resident memory,
``VmHWM``, is that run's alone: not ``ru_maxrss``, which a child inherits from its parent, here the
process that generated the candidates) and reports wall seconds, labels per second and peak MiB,
and the resident memory sampled through the run (the running peak at each tenth of it): a
peak that levels off early is bounded; one that keeps rising to the end grows with the
candidates.
The cascade is measured at every size; the top tier alone (``tiers.names = [tier2]``,
calibrated alike) at the smallest size, on the same candidates. The machine's load average
and CPU flags are printed beside the figures: other jobs on a shared machine slow the runs.

Usage:
    python benchmarks/bench_annotate.py                        # 100,000 and 1,000,000 candidates
    python benchmarks/bench_annotate.py --sizes 10000          # a quick check
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from _memory import own_peak_mib, rss_mib

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # tests.tiny_models

SEED = 11
BUCKETS = ["consensus", "single", "partial", "lexical_only", "random"]


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", default="100000,1000000", help="candidate counts, comma-separated")
    p.add_argument("--items", type=int, default=5000, help="catalog items")
    p.add_argument("--calib-queries", type=int, default=20)
    p.add_argument("--shard-rows", type=int, default=5000)
    p.add_argument("--no-top-tier", action="store_true",
                   help="skip the top tier alone (at the smallest size): the cascade's labels/s and memory only")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: the CPU limit)")
    p.add_argument("--workdir", default=None, help="keep the runs here (default: a temporary folder)")
    p.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "bench_annotate.json"))
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    p.add_argument("--tiers", default="tier0,tier1,tier2", help=argparse.SUPPRESS)
    return p.parse_args(argv)


# -- the run ------------------------------------------------------------------------------------

def _words():
    from tests.tiny_models import WORDS

    return [w for w in WORDS if w.isalpha()]


def build_models(root: Path) -> dict[str, Path]:
    from tests.tiny_models import tiny_bert_cross_encoder, tiny_bi_encoder, tiny_llama

    from relforge.finetune import save_bi_encoder
    from relforge.grades import ESCI
    from relforge.tiers import ProbeHead

    base = tiny_bi_encoder(root / "bi-base")
    head = ProbeHead("ordinal", np.array([0.5]), np.array([0.2]), np.array([[2.0]]), np.array([1.0, 0.3, -0.6]))
    return {
        "tier0": save_bi_encoder(root / "tier0", head, ESCI, str(base), max_length=32),
        "tier1": tiny_bert_cross_encoder(root / "tier1", n_grades=4, head="softmax", seed=1),
        # the top tier: a (still tiny) Llama a few times the others' size, as an LLM tier is to a cross-encoder
        "tier2": tiny_llama(root / "tier2", seed=2, hidden_size=256, num_layers=4),
    }


def cache_item_vectors(run: Path, models: dict[str, Path], cache: Path) -> None:
    """Encode the catalog's item texts once into the item-vector cache, as the dense mining channel does."""
    from relforge.bus import DataBus
    from relforge.tiers import EmbeddingCache, TierDescriptor, load_encoder, model_fingerprint

    descriptor = TierDescriptor.load(models["tier0"])
    base, length = Path(descriptor.base_model), descriptor.max_length
    texts = DataBus(run).read_table("catalog", columns=["text"]).column("text").to_pylist()
    store = EmbeddingCache(cache / "embeddings", model_fingerprint(base, length))
    positions, key = store.items_key(texts)
    store.save(key, load_encoder(base, max_seq_length=length)([texts[i] for i in positions]))


def config_for(models: dict[str, Path], cache: Path, tiers: list[str], shard_rows: int, threads: int | None):
    from relforge.config import load_config

    backends = {"tier0": "bi-encoder", "tier1": "cross-encoder", "tier2": "causal-lm"}
    lengths = {"tier0": 32, "tier1": 48, "tier2": 160}
    overrides = [f"tiers.names=[{', '.join(tiers)}]", f"models.cache_dir={cache}", "calibrate.gate=false",
                 "calibrate.bootstrap_reps=200", f"annotate.shard_rows={shard_rows}", "review.enabled=false",
                 "review.bins=100"]  # fine confidence histograms: the thresholds below are read from them
    if threads:
        overrides.append(f"compute.threads={threads}")
    for t in tiers:
        overrides += [f"tiers.specs.{t}.model={models[t]}", f"tiers.specs.{t}.backend={backends[t]}",
                      f"tiers.specs.{t}.max_length={lengths[t]}", f"tiers.specs.{t}.batch_size=64"]
    return load_config(overrides=overrides)


def build_run(folder: Path, n_candidates: int, n_items: int, calib_queries: int) -> None:
    """catalog, queries, calib judgments and ``n_candidates`` generated candidates at ``folder``."""
    import pyarrow as pa

    from relforge.bus import DataBus
    from relforge.grades import ESCI

    rng = np.random.default_rng(SEED)
    words = _words()
    titles = [" ".join(rng.choice(words, size=int(rng.integers(3, 8)))) for _ in range(n_items)]
    n_queries = max(calib_queries + 1, n_candidates // 100)
    queries = [" ".join(rng.choice(words, size=int(rng.integers(1, 4)))) for _ in range(n_queries)]
    meta = {"grade_scale": ESCI.model_dump()}
    bus = DataBus(folder)
    bus.write_table("catalog", pa.table({"item_id": [f"i{i:07d}" for i in range(n_items)], "title": titles,
                                         "text": titles}), metadata=meta)
    splits = ["calib" if q < calib_queries else "train" for q in range(n_queries)]
    bus.write_table("queries", pa.table({"query_id": [f"q{q:07d}" for q in range(n_queries)], "query": queries,
                                         "split": splits}), metadata=meta)
    jq, ji, jg = [], [], []
    for q in range(calib_queries):
        for i in rng.choice(n_items, size=15, replace=False):
            jq.append(f"q{q:07d}")
            ji.append(f"i{i:07d}")
            jg.append(int(rng.integers(0, 4)))
    bus.write_table("judgments", pa.table({"query_id": jq, "item_id": ji, "grade": pa.array(jg, pa.int8()),
                                           "source": ["human"] * len(jq)}), metadata=meta)
    per_query = -(-n_candidates // n_queries)
    q_ids = np.repeat(np.arange(n_queries), per_query)[:n_candidates]
    items = rng.integers(0, n_items, size=n_candidates)
    table = pa.table({
        "query_id": pa.array([f"q{q:07d}" for q in q_ids], pa.string()),
        "item_id": pa.array([f"i{i:07d}" for i in items], pa.string()),
        "n_channels": pa.array(rng.integers(0, 4, size=n_candidates), pa.int8()),
        "bucket": pa.array([BUCKETS[b] for b in rng.integers(0, len(BUCKETS), size=n_candidates)], pa.string()),
    })
    # duplicates of (query, item) are harmless to annotate but not to a candidates table: drop them
    keys = np.char.add(np.asarray(table.column("query_id")).astype(str), np.asarray(table.column("item_id")).astype(str))
    _, first = np.unique(keys, return_index=True)
    bus.write_table("candidates", table.take(pa.array(np.sort(first))), rows_per_file=200_000)


def calibrate(folder: Path, config) -> dict:
    """``calibrate`` (gate off), then each non-last threshold at the 30th percentile of its tier's calibrated
    confidence on the calib pairs: each tier accepts about 70% of what reaches it, the top tier sees about 10%."""
    from relforge.bus import DataBus
    from relforge.calibrate import read_cascade, run_calibrate

    bus = DataBus(folder)
    run_calibrate(bus, config)
    cascade = read_cascade(bus)
    thresholds = []
    for tier in cascade["tiers"][:-1]:
        hist = np.asarray(tier["confidence_histogram"])
        thresholds.append(float((np.searchsorted(np.cumsum(hist), 0.3 * hist.sum()) + 1) / len(hist)))
    cascade["thresholds"] = thresholds
    bus.write_json("calibrators/cascade.json", cascade)
    return cascade


# -- one measurement (child process) ------------------------------------------------------------

class RssTrace:
    """Resident memory sampled every ``every`` seconds in a thread: whether memory levels off or keeps
    rising through one run (at a steady labelling rate, time stands for candidates done). Beside the
    sampled resident size, the kernel's high-water mark (:func:`own_peak_mib`) is read at each sample: a
    short spike between two samples still shows as the moment the high-water mark rose."""

    def __init__(self, every: float = 0.1):
        import threading

        self.samples: list[tuple[float, float, float]] = []
        self._stop = threading.Event()
        self._start = time.perf_counter()
        self._thread = threading.Thread(target=self._run, args=(every,), daemon=True)
        self._thread.start()

    def _run(self, every: float) -> None:
        while not self._stop.wait(every):
            high = own_peak_mib()
            self.samples.append((time.perf_counter() - self._start, rss_mib(), high))

    def summary(self, points: int = 10) -> dict:
        """The running peak of the sampled resident size at each tenth of the run, the peak of each half,
        and when the high-water mark reached its final value."""
        self._stop.set()
        self._thread.join()
        if not self.samples:
            return {}
        t = np.array([s[0] for s in self.samples])
        rss = np.array([s[1] for s in self.samples])
        high = np.array([s[2] for s in self.samples])
        end = t[-1]
        running = [round(float(rss[t <= end * k / points].max(initial=0.0)), 1) for k in range(1, points + 1)]
        half = t <= end / 2
        reached = int(np.argmax(high >= high[-1]))
        return {"running_peak_by_tenth_mib": running,
                "peak_first_half_mib": round(float(rss[half].max(initial=0.0)), 1),
                "peak_second_half_mib": round(float(rss[~half].max(initial=0.0)), 1),
                "high_water_mib": round(float(high[-1]), 1),
                "high_water_reached_s": round(float(t[reached]), 1), "run_s": round(float(end), 1),
                "high_water_before_mib": round(float(high[reached - 1]), 1) if reached else None,
                "resident_when_reached_mib": round(float(rss[reached]), 1)}


def child(args) -> None:
    from relforge.annotate import run_annotate
    from relforge.bus import DataBus

    spec = json.loads(args.child)
    models = {k: Path(v) for k, v in spec["models"].items()}
    config = config_for(models, Path(spec["cache"]), spec["tiers"], spec["shard_rows"], spec["threads"])
    start = time.perf_counter()
    cpu = time.process_time()
    trace = RssTrace()
    summary = run_annotate(DataBus(spec["run"]), config)
    wall = time.perf_counter() - start
    rss = trace.summary()
    print(json.dumps({
        "labels": summary["labels"], "wall_s": round(wall, 2), "cpu_s": round(time.process_time() - cpu, 2),
        "labels_per_s": round(summary["labels"] / wall, 1),
        "peak_mib": round(own_peak_mib(), 1),
        "shares": summary["shares"], "tiers": summary["ledger"]["actual"]["tiers"], "rss": rss,
    }))


def measure(run: Path, models: dict[str, Path], cache: Path, tiers: list[str], args) -> dict:
    spec = {"run": str(run), "models": {k: str(v) for k, v in models.items()}, "cache": str(cache),
            "tiers": tiers, "shard_rows": args.shard_rows, "threads": args.threads}
    proc = subprocess.run([sys.executable, __file__, "--child", json.dumps(spec)], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(REPO)}, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"annotate failed on {run}:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def machine() -> dict:
    from relforge.compute import cpu_flags, cpu_limit

    flags = cpu_flags()
    shown = [f for f in ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile", "bf16") if f in flags]
    return {"load_average": [round(x, 2) for x in os.getloadavg()], "cpu_flags": shown, "cpus": cpu_limit()}


def main(argv=None) -> dict:
    args = parse_args(argv)
    if args.child:
        child(args)
        return {}
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    work = Path(args.workdir) if args.workdir else Path(tempfile.mkdtemp(prefix="bench-annotate-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"machine before: {machine()}", flush=True)
    models = build_models(work / "models")
    results = {"sizes": {}, "machine_before": machine(), "shard_rows": args.shard_rows, "items": args.items}
    for n in sizes:
        run = work / f"run-{n}" / "run"
        cache = work / f"run-{n}" / "cache"
        if run.exists():
            shutil.rmtree(run.parent)
        build_run(run, n, args.items, args.calib_queries)
        cache_item_vectors(run, models, cache)
        cascade = calibrate(run, config_for(models, cache, ["tier0", "tier1", "tier2"], args.shard_rows, args.threads))
        row = {"cascade": measure(run, models, cache, ["tier0", "tier1", "tier2"], args),
               "thresholds": cascade["thresholds"], "machine": machine()}
        if n == min(sizes) and not args.no_top_tier:
            top = work / f"run-{n}" / "top"
            shutil.copytree(run, top, ignore=shutil.ignore_patterns("labels", "calibrators", "cache", "reports"))
            calibrate(top, config_for(models, cache, ["tier2"], args.shard_rows, args.threads))
            row["top_tier_only"] = measure(top, models, cache, ["tier2"], args)
            row["speedup"] = round(row["cascade"]["labels_per_s"] / row["top_tier_only"]["labels_per_s"], 2)
        results["sizes"][str(n)] = row
        c = row["cascade"]
        shares = ", ".join(f"{t} {v:.0%}" for t, v in c["shares"].items())
        rates = ", ".join(f"{t} {d['pairs_per_second']}" for t, d in c["tiers"].items())
        print(f"{n:>10,} candidates: cascade {c['labels_per_s']:>8,.1f} labels/s, peak {c['peak_mib']:,.0f} MiB, "
              f"wall {c['wall_s']:.1f} s; decided {shares}; pairs/s per tier {rates}; "
              f"load {row['machine']['load_average']}", flush=True)
        if c.get("rss"):
            print(f"{'':>10}  resident MiB, running peak at each tenth of the run: "
                  f"{c['rss']['running_peak_by_tenth_mib']} (first half {c['rss']['peak_first_half_mib']}, "
                  f"second half {c['rss']['peak_second_half_mib']}); high-water mark {c['rss']['high_water_mib']} "
                  f"MiB reached at {c['rss']['high_water_reached_s']} s of {c['rss']['run_s']} s (from "
                  f"{c['rss']['high_water_before_mib']} MiB; resident then {c['rss']['resident_when_reached_mib']})",
                  flush=True)
        if "top_tier_only" in row:
            t = row["top_tier_only"]
            print(f"{'':>10}  top tier alone {t['labels_per_s']:>8,.1f} labels/s, peak {t['peak_mib']:,.0f} MiB "
                  f"(cascade x{row['speedup']} faster)", flush=True)
    peaks = [results["sizes"][str(n)]["cascade"]["peak_mib"] for n in sizes]
    results["memory_growth"] = round(max(peaks) / min(peaks), 3) if peaks else None
    results["machine_after"] = machine()
    print(f"peak memory across sizes: {peaks} MiB (largest / smallest = {results['memory_growth']}); "
          f"CPU flags {results['machine_after']['cpu_flags']}, load {results['machine_after']['load_average']}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2))
    if not args.workdir:
        shutil.rmtree(work, ignore_errors=True)
    return results


if __name__ == "__main__":
    main()
