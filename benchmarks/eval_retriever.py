"""The retriever on ESCI-150: the pipeline at full size, then the baselines and ablations with
CIs (the README's table).

Steps, each through ``relforge.steps.run_step`` exactly as ``relforge`` runs them (a step whose
outputs are committed with the same inputs and settings is skipped, so a rerun resumes):
ingest (ESCI-150: 6,764 items, 150 queries split 90 / 30 / 30), pull-models, mine,
finetune-tiers, calibrate, annotate, curriculum, train-two-tower, export-index, ablate (every
variant of ``ablate.variants``: untrained MiniLM, human labels, no curriculum, no calibration,
stage 3 only, each in its own sub-run), evaluate (those systems, BM25 and the run's own
retriever on the 30 test queries' human judgments). Settings: relforge's defaults (no caps),
then ``--config`` and ``--set`` on top, as for ``relforge``.

Writes ``<run>/reports/ablation.md`` (the table), ``<run>/reports/evaluate.md`` and, here,
``benchmarks/results/eval_retriever.json`` and ``.md`` (the table, the settings, the seconds of
every step, the machine). Expect hours on a 2-core CPU at full size (six trainings of three
stages and six encodings of the catalog at 128 tokens); minutes on a GPU.

``--tiny`` checks the script in minutes: a reduced ESCI-150 (12 queries: 6 train, 3 calib, 3
test; their judged items and 300 others), the bi-encoder tier alone, a few training steps per
stage at 24 tokens. Its numbers mean nothing; it writes ``eval_retriever-tiny.*`` instead.

Usage:
    python benchmarks/eval_retriever.py --run runs/eval-retriever
    python benchmarks/eval_retriever.py --run runs/eval-retriever --config configs/demo.yaml   # capped cascade
    python benchmarks/eval_retriever.py --tiny --run /tmp/eval-retriever-tiny
    python benchmarks/eval_retriever.py --run R --second-round --stem eval_retriever-medium --set ...  # + round 2

``--second-round`` then runs step ``second-round`` (the trained retriever as a fourth mining channel,
mine -> annotate -> curriculum -> train -> export again in ``R/rounds/2``) and adds its report to the
results; ``--stem`` names the results files.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"

CASCADE = ["ingest", "pull-models", "mine", "finetune-tiers", "calibrate", "annotate"]
RETRIEVER = ["curriculum", "train-two-tower", "export-index", "ablate", "evaluate"]

TINY = [
    "tiers.names=[tier0]", "mine.top_k=20", "mine.random_negatives=3",
    "calibrate.gate=false", "calibrate.folds=2", "calibrate.bootstrap_reps=100", "calibrate.grid=10",
    "review.budget=10",
    "twotower.max_seq_length=24", "twotower.batch_size=8", "twotower.negative_pool=4", "twotower.save_steps=1000",
    "twotower.logging_steps=1",
    ("twotower.stages=[{stage: 1, loss: mnrl, negatives: 1, max_examples: 16}, "
     "{stage: 2, loss: mnrl, negatives: 1, max_examples: 16}, {stage: 3, loss: cosent, max_examples: 24}]"),
    "export.tradeoff_kinds=[hnsw]", "export.tradeoff_queries=20", "export.batch_size=64",
    "evaluate.bootstrap_reps=200", "evaluate.paired_reps=500",
]


def tiny_inputs(run: Path, config, n_other: int = 300, seed: int = 0) -> None:
    """Ingest ESCI-150 aside, then commit a reduced copy of its tables at ``run``."""
    from relforge.bus import DataBus
    from relforge.steps import run_step

    full = run / "_esci-full"
    run_step("ingest", str(full), config)
    src, dst = DataBus(full, config.bus), DataBus(run, config.bus)
    queries = src.read_table("queries")
    chosen: list[str] = []
    for split, n in (("train", 6), ("calib", 3), ("test", 3)):
        ids = sorted(q for q, s in zip(queries.column("query_id").to_pylist(), queries.column("split").to_pylist())
                     if s == split)
        chosen += ids[:n]
    keep_q = pa.array(chosen, pa.string())
    judgments = src.read_table("judgments")
    judgments = judgments.filter(pc.is_in(judgments.column("query_id"), value_set=keep_q))
    catalog = src.read_table("catalog")
    judged = set(judgments.column("item_id").to_pylist())
    others = [i for i in catalog.column("item_id").to_pylist() if i not in judged]
    rng = np.random.default_rng(seed)
    keep_i = judged | set(rng.choice(others, size=min(n_other, len(others)), replace=False).tolist())
    tables = {
        "catalog": catalog.filter(pc.is_in(catalog.column("item_id"), value_set=pa.array(sorted(keep_i), pa.string()))),
        "queries": queries.filter(pc.is_in(queries.column("query_id"), value_set=keep_q)),
        "judgments": judgments,
    }
    for name, table in tables.items():
        m = src.manifest(name)
        dst.write_table(name, table.replace_schema_metadata(None), metadata=m.metadata,
                        inputs={"esci": m.digest()}, config_hash="tiny")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", default="runs/eval-retriever", help="the run's root (a folder or s3://...)")
    parser.add_argument("--config", help="YAML over relforge's defaults")
    parser.add_argument("--set", action="append", default=[], help="section.key=value over the configuration")
    parser.add_argument("--tiny", action="store_true", help="a reduced ESCI-150 and tiny settings (a check)")
    parser.add_argument("--second-round", action="store_true",
                        help="then run step second-round (the retriever as a fourth mining channel) and show its report")
    parser.add_argument("--stem", default=None,
                        help="name of the results files in benchmarks/results (default: eval_retriever[-tiny])")
    args = parser.parse_args(argv)

    from relforge.bus import DataBus
    from relforge.config import load_config
    from relforge.logs import setup_logging
    from relforge.steps import run_step

    setup_logging("warning")
    overrides = ((TINY if args.tiny else []) + ["ablate.enabled=true"]
                 + (["second_round.enabled=true"] if args.second_round else []) + args.set)
    config = load_config(args.config, overrides)
    run = Path(args.run) if "://" not in args.run else args.run
    steps = CASCADE + RETRIEVER + (["second-round"] if args.second_round else [])
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    load_start = os.getloadavg()
    if args.tiny:
        t0 = time.perf_counter()
        tiny_inputs(Path(run), config)
        seconds["ingest (reduced)"] = round(time.perf_counter() - t0, 1)
        steps = steps[1:]
    for name in steps:
        record = run_step(name, str(run), config)
        seconds[name] = record["seconds"]
        print(f"{name:<16} {record['seconds']:>8.1f} s  {record.get('decided', '')[:160]}", flush=True)
    bus = DataBus(run, config.bus)
    table = bus.read_text("reports/ablation.md")
    summary = bus.read_json("reports/evaluate.json")
    print("\n" + table)
    second = bus.read_text("reports/second-round.md") if args.second_round else ""
    if second:
        print("\n" + second)
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = args.stem or ("eval_retriever-tiny" if args.tiny else "eval_retriever")
    doc = {
        "run": str(run), "tiny": args.tiny, "seconds": seconds, "total_s": round(time.perf_counter() - started, 1),
        "config": {k: config.model_dump(mode="json")[k] for k in ("curriculum", "twotower", "export", "evaluate",
                                                                  "ablate", "tiers")},
        "overrides": overrides, "config_file": args.config,
        "systems": [{k: s[k] for k in ("name", "label", "trained_on", "circular", "summary") if k in s}
                    | {"paired": s.get("paired"), "ppi": s.get("ppi")} for s in summary["systems"]],
        "machine": {"python": sys.version.split()[0], "platform": platform.platform(),
                    "processor": platform.processor()},
    }
    (RESULTS / f"{stem}.json").write_text(json.dumps(doc, indent=2, default=str), encoding="utf-8")
    from relforge import compute

    flags = sorted(compute.cpu_flags() & {"avx2", "avx512f", "avx512_bf16", "amx_bf16", "bf16"})
    settings = compute.current()
    machine = (f"Machine: {os.cpu_count()} cores, CPU flags {', '.join(flags) or 'none of avx2/avx512/bf16'}; compute "
               f"{settings.device}, {settings.dtype}, {settings.threads} threads; load average at start "
               f"{load_start[0]:.2f}, at end {os.getloadavg()[0]:.2f}; wall {time.perf_counter() - started:.0f} s "
               "(a step already committed with the same inputs and settings is skipped: its seconds are the skip's).")
    steps_md = "\n".join(f"| {k} | {v} |" for k, v in seconds.items())
    (RESULTS / f"{stem}.md").write_text(
        f"{table}\n\n{second + chr(10) + chr(10) if second else ''}| step | seconds |\n|---|---:|\n{steps_md}\n\nRun: `{run}`; settings: relforge's defaults"
        f"{' + ' + args.config if args.config else ''}{' + ' + ' '.join(overrides) if overrides else ''}.\n\n{machine}\n",
        encoding="utf-8")
    print(f"wrote {RESULTS / (stem + '.json')} and .md", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
