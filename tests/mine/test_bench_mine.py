"""The mining benchmark script runs (on a small catalog; the figures themselves are not tested)."""

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_mine.py"


@pytest.mark.slow
def test_bench_mine_runs_small():
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--items", "1500", "--queries", "150", "--shard", "50", "--skip", "encoder"],
        capture_output=True, text=True, timeout=600, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    for label in ("relforge bm25", "bm25s", "relforge ngram", "relforge dense", "faiss IndexFlatIP", "total", "Goal, overhead"):
        assert label in out, out


def test_generator_is_deterministic():
    sys.path.insert(0, str(BENCH.parent))
    try:
        from bench_mine import generate
    finally:
        sys.path.pop(0)
    a, b = generate(200, 50), generate(200, 50)
    assert a == b and len(a[0]) == 200 and len(a[1]) == 50
    assert len(set(a[0])) == 200  # model codes make titles distinct
