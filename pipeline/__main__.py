"""``python -m pipeline compile | run-local | submit``.

- ``compile --out build/relforge.yaml``: the cluster pipeline spec (Kubernetes settings on).
- ``run-local --run runs/demo [--config cfg.yaml]``: the same pipeline under KFP's local
  runner (``kfp.local.SubprocessRunner``, in this Python environment), on a local bus.
- ``submit --host URL --run s3://bucket/prefix``: compile and start a run on Kubeflow Pipelines.
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


def compile_pipeline(out: Path) -> Path:
    from kfp import compiler

    from pipeline.pipeline import build_pipeline

    out.parent.mkdir(parents=True, exist_ok=True)
    compiler.Compiler().compile(build_pipeline(cluster=True), package_path=str(out))
    return out


def run_local(run: str, config_yaml: str) -> dict:
    from kfp import local

    from pipeline.pipeline import build_pipeline

    run_dir = Path(run).resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    local.init(
        runner=local.SubprocessRunner(use_venv=False),
        pipeline_root=str(run_dir / "_kfp"),
        raise_on_error=True,
    )
    build_pipeline(cluster=False)(run_uri=str(run_dir), config_yaml=config_yaml)
    return {"run": str(run_dir)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pipeline", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    p_compile = sub.add_parser("compile", help="compile the cluster pipeline to YAML")
    p_compile.add_argument("--out", type=Path, default=Path("build/relforge.yaml"))
    for name in ("run-local", "submit"):
        p = sub.add_parser(name)
        p.add_argument("--run", required=True, help="the run's root on the data bus")
        p.add_argument("--config", help="YAML configuration file")
        p.add_argument("--set", action="append", default=[], help="section.key=value override")
        if name == "submit":
            p.add_argument("--host", required=True, help="Kubeflow Pipelines API URL")
            p.add_argument("--experiment", default="relforge")
    args = parser.parse_args(argv)

    if args.cmd == "compile":
        print(compile_pipeline(args.out))
    elif args.cmd == "run-local":
        print(json.dumps(run_local(args.run, _config_yaml(args.config, args.set))))
    else:
        import kfp

        package = compile_pipeline(Path("build/relforge.yaml"))
        client = kfp.Client(host=args.host)
        result = client.create_run_from_pipeline_package(
            str(package),
            arguments={"run_uri": args.run, "config_yaml": _config_yaml(args.config, args.set)},
            experiment_name=args.experiment,
        )
        print(json.dumps({"run_id": result.run_id}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
