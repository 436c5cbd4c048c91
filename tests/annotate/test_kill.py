"""annotate killed mid-run (SIGKILL, as a crash would) resumes with no lost and no duplicated
label: the labels equal an uninterrupted run's, by count and by content hash."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from relforge.bus import DataBus
from relforge.errors import NotCommittedError
from tests.bus.test_kill import _read_until

REPO = Path(__file__).resolve().parents[2]
SHARD_ROWS = 30


def _start(root: Path, models: Path, pause: float) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.annotate._annotate_proc", str(root), str(models), str(pause), str(SHARD_ROWS)],
        cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, start_new_session=True,
    )


def content_hash(bus: DataBus) -> str:
    """A hash of every label's pair, grade, deciding tier, model version and probabilities (rounded),
    in pair order; the measured costs are left out (they are timings)."""
    t = bus.read_table("labels").to_pylist()
    h = hashlib.sha256()
    for r in sorted(t, key=lambda r: (r["query_id"], r["item_id"])):
        h.update(repr((r["query_id"], r["item_id"], r["grade"], r["tier"], r["model_fingerprint"],
                       [round(p, 5) for p in r["probs"]])).encode())
    return h.hexdigest()


@pytest.mark.slow  # three annotate processes (~30 s on a busy 2-core machine)
def test_killed_annotate_resumes_without_losing_or_duplicating_a_label(calibrated_run, tiny_tiers, tmp_path):
    models = next(iter(tiny_tiers.values())).parent
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    shutil.copytree(calibrated_run, whole)
    shutil.copytree(calibrated_run, killed)
    n_shards = -(-DataBus(whole / "run").manifest("candidates").rows // SHARD_ROWS)
    assert n_shards >= 4

    out, err = _start(whole, models, 0.0).communicate(timeout=300)
    assert f"done {DataBus(whole / 'run').manifest('candidates').rows}" in out, err

    proc = _start(killed, models, 1.0)
    lines = _read_until(proc, "committed 1", timeout=300)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL and "committed 0" in lines
    bus = DataBus(killed / "run")
    with pytest.raises(NotCommittedError):
        bus.read_table("labels")  # nothing half-done is visible

    out, err = _start(killed, models, 0.0).communicate(timeout=300)
    assert proc.returncode is not None and "done" in out, err
    resumed = [int(line.split()[1]) for line in out.splitlines() if line.startswith("committed")]
    assert 0 not in resumed and 1 not in resumed  # the committed shards were not labelled again
    assert sorted(resumed) == list(range(2, n_shards))

    reference = DataBus(whole / "run")
    labels = bus.read_table("labels")
    keys = list(zip(labels.column("query_id").to_pylist(), labels.column("item_id").to_pylist()))
    assert len(keys) == len(set(keys)) == reference.manifest("labels").rows  # each pair once
    assert content_hash(bus) == content_hash(reference)
