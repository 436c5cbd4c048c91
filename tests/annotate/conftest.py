"""A calibrated synthetic run (tiny tiers, gate off: random tiers cannot pass it), built once per
session; each test works on its own copy."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from relforge.bus import DataBus
from tests.annotate._run import build_tier_models, run_config, write_tables


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Tiny models on a shared 2-core machine: one thread avoids oversubscription."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def tiny_tiers(tmp_path_factory) -> dict[str, Path]:
    return build_tier_models(tmp_path_factory.mktemp("annotate-models"))


@pytest.fixture(scope="session")
def calibrated_run(tmp_path_factory, tiny_tiers) -> Path:
    """A run folder with tables, candidates and a calibrated cascade (calibrators, cascade.json)."""
    from relforge.calibrate import run_calibrate

    root = tmp_path_factory.mktemp("calibrated")
    bus = write_tables(DataBus(root / "run"))
    run_calibrate(bus, run_config(tiny_tiers, root / "cache", "calibrate.gate=false"))
    return root


@pytest.fixture
def run_copy(calibrated_run, tmp_path) -> Path:
    """A private copy of the calibrated run (its folder holds ``run`` and the model ``cache``)."""
    shutil.copytree(calibrated_run, tmp_path / "copy")
    return tmp_path / "copy"


@pytest.fixture
def config_for(tiny_tiers):
    """``config_for(root, *overrides)``: the run's configuration (gate off) with extra overrides."""

    def make(root: Path, *extra: str):
        return run_config(tiny_tiers, root / "cache", "calibrate.gate=false", *extra)

    return make
