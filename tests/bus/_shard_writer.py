"""A sharded writer run as its own process by the kill test.

Usage: python -m tests.bus._shard_writer URI N_SHARDS ROWS_PER_SHARD PAUSE_SECONDS

Writes table ``judgments`` at URI (S3 settings from the AWS variables) in N_SHARDS shards.
It prints ``pending [..]`` first, then ``data I`` when shard I's Parquet file is stored
(its commit marker not yet) and ``committed I`` when the marker is stored, pausing
PAUSE_SECONDS after each, so that a test can kill it at a known point; ``done ROWS`` at the end.
"""

from __future__ import annotations

import sys
import time

import pyarrow as pa

from relforge.bus import DataBus, _fs


def shard_table(i: int, rows: int) -> pa.Table:
    ids = [f"item-{i * rows + r:06d}" for r in range(rows)]
    return pa.table({
        "query_id": [f"q{i}"] * rows,
        "item_id": ids,
        "grade": pa.array([r % 4 for r in range(rows)], pa.int8()),
        "source": ["human"] * rows,
    })


def main(uri: str, n_shards: int, rows: int, pause: float) -> None:
    store = _fs.write_bytes_atomic

    def announced(fs, path, data):  # report each stored file, then give the test time to act
        store(fs, path, data)
        if path.endswith(".parquet"):
            print(f"data {int(path[-13:-8])}", flush=True)
        elif "/_shards/" in path:
            print(f"committed {int(path[-10:-5])}", flush=True)
        else:
            return
        time.sleep(pause)

    _fs.write_bytes_atomic = announced
    bus = DataBus(uri)
    with bus.sharded_writer("judgments", n_shards, inputs={"test": "kill"}) as writer:
        pending = writer.pending()
        print(f"pending {pending}", flush=True)
        for i in pending:
            writer.write(i, shard_table(i, rows))
    print(f"done {bus.manifest('judgments').rows}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]))
