"""``python -m pipeline compile | run-local | submit``.

- ``compile --out build/relforge.yaml [--config cfg.yaml]``: the cluster pipeline spec
  (Kubernetes settings on, from the configuration's ``cluster`` section).
- ``run-local --run runs/demo [--config cfg.yaml]``: the same pipeline under KFP's local
  runner (``kfp.local.SubprocessRunner``, in this Python environment), on a local bus.
- ``submit --host URL --run s3://bucket/prefix [--namespace NS] [--config configs/cluster.yaml]``:
  compile and start a run on Kubeflow Pipelines (the same code as ``relforge submit``:
  :func:`pipeline.submit.submit`).

Each takes ``--pipeline relforge|cold-start`` (:data:`relforge.steps.PIPELINES`; default
``relforge``): ``cold-start`` runs ``pull-models``, ``ingest`` and the cold-start steps on a
catalog alone.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _config_yaml(path: str | None, overrides: list[str]) -> str:
    from relforge.config import load_config
    from relforge.steps import config_to_yaml

    return config_to_yaml(load_config(path, overrides))


def compile_pipeline(out: Path, settings=None, variant: str = "relforge") -> Path:
    """The cluster pipeline at ``out``; ``settings``: the ``cluster`` section (default: its defaults)."""
    from pipeline.submit import compile_pipeline as compile_for_cluster

    return compile_for_cluster(out, settings, variant=variant)


def run_local(run: str, config_yaml: str, screen=None, variant: str = "relforge") -> dict:
    """Run the pipeline under KFP's local runner, one line per finished step on ``screen``.

    KFP's executor output and the steps' own output go to ``<run>/_kfp/run-local.log``; the
    screen shows each step's line (name, seconds, rows written, what it decided) as it
    finishes, then where the reports are. On a failure it shows the failing step and the end
    of the log, and raises ``SystemExit(1)``.
    """
    import os
    import threading
    import time

    from kfp import local

    from pipeline.pipeline import build_pipeline
    from relforge.bus import DataBus
    from relforge.cli import step_line
    from relforge.steps import pipeline_steps, step_record

    steps = pipeline_steps(variant)

    run_dir = Path(run).resolve()
    (run_dir / "_kfp").mkdir(parents=True, exist_ok=True)
    log_path = run_dir / "_kfp" / "run-local.log"
    sys.stdout.flush()
    screen = screen or os.fdopen(os.dup(1), "w", buffering=1)  # the terminal, kept while fd 1 goes to the log
    started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    bus = DataBus(run_dir)
    shown: set[str] = set()

    def show_finished() -> None:
        for step in steps:
            record = step_record(bus, step.name) if step.name not in shown else None
            if record and record["finished_at"] >= started:
                shown.add(step.name)
                screen.write(step_line(record) + "\n")
                screen.flush()

    stop = threading.Event()

    def watch() -> None:
        while not stop.wait(1.0):
            show_finished()

    screen.write(f"relforge pipeline `{variant}` under kfp.local: {len(steps)} steps into {run_dir} (log: {log_path})\n")
    screen.flush()
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    watcher = threading.Thread(target=watch, daemon=True)
    failure: BaseException | None = None
    with open(log_path, "ab") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        watcher.start()
        try:
            local.init(
                runner=local.SubprocessRunner(use_venv=False),
                pipeline_root=str(run_dir / "_kfp"),
                raise_on_error=True,
            )
            build_pipeline(cluster=False, variant=variant)(run_uri=str(run_dir), config_yaml=config_yaml)
        except Exception as exc:  # noqa: BLE001 - reported below, with the log
            failure = exc
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            stop.set()
            watcher.join()
    show_finished()
    if failure is not None:
        failed = next((s.name for s in steps if s.name not in shown), "?")
        tail = log_path.read_text(encoding="utf-8", errors="replace").splitlines()[-15:]
        screen.write(f"step {failed} FAILED ({type(failure).__name__}); the end of {log_path}:\n")
        screen.write("\n".join("  " + line for line in tail) + "\n")
        screen.flush()
        raise SystemExit(1)
    reports = [bus.uri(o.path) for s in steps for o in s.outputs if o.kind in ("Markdown", "HTML") and bus.exists(o.path)]
    if reports:
        screen.write("reports: " + ", ".join(reports) + "\n")
    return {"run": str(run_dir), "steps": sorted(shown)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    from relforge.steps import PIPELINES

    variants = list(PIPELINES)
    sub = parser.add_subparsers(dest="cmd", required=True)
    sub.add_parser("generate", help="write the component folders from the step declarations")
    p_compile = sub.add_parser("compile", help="compile the cluster pipeline to YAML")
    p_compile.add_argument("--out", type=Path, default=Path("build/relforge.yaml"))
    p_compile.add_argument("--config", help="YAML configuration file (its `cluster` section: images, GPU pool)")
    p_compile.add_argument("--set", action="append", default=[], help="section.key=value override")
    p_compile.add_argument("--pipeline", default="relforge", dest="variant", choices=variants,
                           help="relforge (default) or cold-start")
    for name in ("run-local", "submit"):
        p = sub.add_parser(name)
        p.add_argument("--run", required=True, help="the run's root on the data bus")
        p.add_argument("--config", help="YAML configuration file")
        p.add_argument("--set", action="append", default=[], help="section.key=value override")
        p.add_argument("--pipeline", default="relforge", dest="variant", choices=variants,
                       help="relforge (default) or cold-start")
        if name == "submit":
            p.add_argument("--host", required=True, help="Kubeflow Pipelines API URL")
            p.add_argument("--namespace", help="the KFP profile namespace (multi-user Kubeflow)")
            p.add_argument("--experiment", default="relforge")
            p.add_argument("--run-name", help="the run's display name")
    args = parser.parse_args(argv)

    if args.cmd == "generate":
        from pipeline.generate import generate

        for path in generate():
            print(path)
        return 0
    if args.cmd == "compile":
        from relforge.config import load_config

        print(compile_pipeline(args.out, load_config(args.config, args.set).cluster, variant=args.variant))
    elif args.cmd == "run-local":
        run_local(args.run, _config_yaml(args.config, args.set), variant=args.variant)
    else:
        from pipeline.submit import submit
        from relforge.config import load_config
        from relforge.errors import RelforgeError

        try:
            done = submit(args.host, args.run, load_config(args.config, args.set), namespace=args.namespace,
                          experiment=args.experiment, run_name=args.run_name, variant=args.variant)
        except RelforgeError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        print(json.dumps({"run_id": done.run_id, "experiment": done.experiment, "url": done.url,
                          "dropped": done.dropped}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
