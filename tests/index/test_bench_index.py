"""The index benchmark script runs (on a tiny catalog; the figures themselves are not tested)."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_index.py"


@pytest.mark.slow
def test_bench_index_runs_small():
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--items", "3000", "--queries", "300", "--dim", "32",
         "--single", "50", "--single-seconds", "1"],
        capture_output=True, text=True, timeout=600, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    for label in ("IndexFlatIP", "IndexHNSWFlat", "IndexRefineFlat", "load average", "avx2", "avx512f",
                  "avx512_bf16", "amx", "recall@10", "peak MiB", "efSearch 256", "nprobe 64",
                  "plan_batch", "Goal (recall@10 >= 0.98"):
        assert label in out, (label, out)


def test_generated_vectors_are_unit_clustered_and_deterministic():
    sys.path.insert(0, str(BENCH.parent))
    try:
        from bench_index import clustered_vectors
    finally:
        sys.path.pop(0)
    a = clustered_vectors(500, 16, 10, seed=1)
    assert np.array_equal(a, clustered_vectors(500, 16, 10, seed=1))
    assert np.allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    q = clustered_vectors(100, 16, 10, seed=2)
    random = np.random.default_rng(0).normal(size=(500, 16))
    random /= np.linalg.norm(random, axis=1, keepdims=True)
    # held-out queries sit much closer to their nearest item than to random directions
    assert (q @ a.T).max(axis=1).mean() > (q @ random.T).max(axis=1).mean() + 0.1
