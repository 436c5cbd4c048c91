"""Fixtures of the retriever's tests: the tiny bi-encoder (built here, never downloaded), a
synthetic run on a local bus, and a configuration small enough to train in seconds."""

from __future__ import annotations

from pathlib import Path

import pytest

from relforge.bus import DataBus
from relforge.config import RelforgeConfig, load_config
from tests.tiny_models import cached, tiny_bi_encoder
from tests.twotower.synthetic import write_run


@pytest.fixture(scope="session")
def bi_encoder(tmp_path_factory) -> Path:
    return cached(tmp_path_factory.getbasetemp(), tiny_bi_encoder, "twotower-bi-encoder")


def small_config(bi_encoder: Path, cache: Path, *overrides: str) -> RelforgeConfig:
    """Three short stages on the tiny model (stage 3 capped at 24 pairs); checkpoints every 3 steps; exact export."""
    return load_config(overrides=[
        f"models.cache_dir={cache}", f"twotower.base_model={bi_encoder}", "twotower.max_seq_length=16",
        "twotower.batch_size=4", "twotower.save_steps=3", "twotower.logging_steps=1", "twotower.learning_rate=1e-3",
        ("twotower.stages=[{stage: 1, loss: mnrl, negatives: 1}, {stage: 2, loss: mnrl, negatives: 1}, "
         "{stage: 3, loss: cosent, max_examples: 24}]"),
        "export.tradeoff=false", "export.batch_size=16", "evaluate.bootstrap_reps=200", "evaluate.paired_reps=200",
        "compute.device=cpu", "compute.threads=2", *overrides,
    ])


@pytest.fixture
def run_bus(tmp_path) -> DataBus:
    bus = DataBus(tmp_path / "run")
    write_run(bus)
    return bus


@pytest.fixture
def config(bi_encoder, tmp_path) -> RelforgeConfig:
    return small_config(bi_encoder, tmp_path / "cache")
