"""``annotate`` run as its own process by the kill test.

Usage: python -m tests.annotate._annotate_proc RUN_ROOT MODELS_DIR PAUSE_SECONDS SHARD_ROWS

Runs step annotate on ``RUN_ROOT/run`` with the tiny tiers in MODELS_DIR. It prints
``committed I`` each time shard I of ``labels`` is committed (its marker stored), then pauses
PAUSE_SECONDS, so that the test can kill it at a known point; ``done ROWS`` at the end.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from relforge.bus import DataBus, _fs


def main(root: str, models: str, pause: float, shard_rows: int) -> None:
    import torch

    torch.set_num_threads(1)
    from relforge.annotate import run_annotate
    from tests.annotate._run import build_tier_models, run_config

    store = _fs.write_bytes_atomic

    def announced(fs, path, data):
        store(fs, path, data)
        if "/labels/_shards/" in path:
            print(f"committed {int(path[-10:-5])}", flush=True)
            time.sleep(pause)

    _fs.write_bytes_atomic = announced
    config = run_config(build_tier_models(Path(models)), Path(root) / "cache", "calibrate.gate=false",
                        f"annotate.shard_rows={shard_rows}", "review.enabled=false")
    summary = run_annotate(DataBus(Path(root) / "run"), config)
    print(f"done {summary['labels']}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4]))
