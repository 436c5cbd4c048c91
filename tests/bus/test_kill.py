"""A writer killed in the middle of a sharded table on S3 leaves nothing visible; a rerun completes it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from relforge.errors import NotCommittedError

REPO = Path(__file__).resolve().parents[2]
N_SHARDS, ROWS = 6, 50


def _start(uri: str, env: dict[str, str], pause: float) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.bus._shard_writer", uri, str(N_SHARDS), str(ROWS), str(pause)],
        cwd=REPO, env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, start_new_session=True,
    )


def _read_until(proc: subprocess.Popen, wanted: str, timeout: float = 60) -> list[str]:
    """Lines of the writer's output up to and including ``wanted``."""
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline().strip()
        if not line and proc.poll() is not None:
            break
        if line:
            lines.append(line)
        if line == wanted:
            return lines
    proc.kill()
    raise AssertionError(f"writer never printed {wanted!r}; got {lines}; stderr: {proc.stderr.read()}")


@pytest.mark.s3
@pytest.mark.slow  # two writer processes (~10 s on a busy 2-core machine)
def test_killed_sharded_write_is_invisible_and_rerun_completes_it(s3_server, s3_bus):
    uri = s3_bus.root
    env = {**s3_server.env(), "PYTHONPATH": str(REPO)}
    writer = _start(uri, env, pause=0.5)
    # Shards 0 and 1 are committed; shard 2's Parquet file is stored, its marker not yet.
    lines = _read_until(writer, "data 2")
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait(timeout=10)
    assert writer.returncode == -signal.SIGKILL
    assert "committed 1" in lines and "committed 2" not in lines

    objects = [
        o["Key"] for o in s3_server.client().list_objects_v2(
            Bucket=uri.split("/")[2], Prefix="run/judgments/"
        ).get("Contents", [])
    ]
    assert any(k.endswith("-00002.parquet") for k in objects), objects  # the orphan is there
    assert not any(k.endswith("manifest.json") for k in objects)
    assert not s3_bus.is_committed("judgments")
    with pytest.raises(NotCommittedError):
        s3_bus.read_table("judgments")

    rerun = _start(uri, env, pause=0.0)
    out, err = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, err
    assert f"pending {list(range(2, N_SHARDS))}" in out.splitlines()  # committed shards skipped
    assert f"done {N_SHARDS * ROWS}" in out.splitlines()

    table = s3_bus.read_table("judgments")
    ids = table.column("item_id").to_pylist()
    assert len(ids) == N_SHARDS * ROWS
    assert sorted(ids) == [f"item-{n:06d}" for n in range(N_SHARDS * ROWS)]  # each row exactly once
    assert s3_bus.manifest("judgments").rows == N_SHARDS * ROWS
    leftover = [
        o["Key"] for o in s3_server.client().list_objects_v2(
            Bucket=uri.split("/")[2], Prefix="run/judgments/"
        ).get("Contents", [])
    ]
    assert not any("/_shards/" in k for k in leftover), leftover  # markers cleaned up
