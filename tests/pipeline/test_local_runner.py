"""A generated component runs under KFP's real local runner and commits its tables on the bus."""

import json

from kfp import local
from pipeline.components.ingest import ingest

from relforge.bus import DataBus
from relforge.config import load_config
from relforge.steps import config_to_yaml


def test_ingest_component_under_kfp_local_runner(tmp_path):
    local.init(
        runner=local.SubprocessRunner(use_venv=False),
        pipeline_root=str(tmp_path / "_kfp"),
        raise_on_error=True,
    )
    run = tmp_path / "run"
    config_yaml = config_to_yaml(load_config(overrides=["split.seed=3"]))
    task = ingest(run_uri=str(run), config_yaml=config_yaml)
    record = json.loads(task.output)
    assert record["tables"] == {"catalog": 6764, "queries": 150, "judgments": 6678}
    bus = DataBus(run)
    splits = bus.read_table("queries").column("split").to_pylist()
    assert {s: splits.count(s) for s in set(splits)} == {"train": 90, "calib": 30, "test": 30}
    # a second run finds the tables committed with the same inputs and leaves them as they are
    first = bus.manifest("catalog").created_at, bus.manifest("catalog").files
    json.loads(ingest(run_uri=str(run), config_yaml=config_yaml).output)
    assert (bus.manifest("catalog").created_at, bus.manifest("catalog").files) == first
