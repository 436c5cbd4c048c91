"""The README's `relforge ingest files` example runs as written and gives what it promises."""

import re
import shlex
import subprocess
import sys
from pathlib import Path

from relforge.bus import DataBus

REPO = Path(__file__).resolve().parents[1]


def test_readme_own_files_example(tmp_path):
    readme = (REPO / "README.md").read_text()
    block = re.search(r"\.venv/bin/relforge (ingest files.*?--out) runs/own", readme, re.DOTALL)
    assert block, "the README lost its ingest-files example"
    args = shlex.split(block.group(1).replace("\\\n", " ")) + [str(tmp_path / "own")]
    proc = subprocess.run(
        [sys.executable, "-m", "relforge", *args], cwd=REPO, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    bus = DataBus(tmp_path / "own")
    judgments = bus.read_table("judgments")
    assert judgments.num_rows == 16
    # mean ratings 3.0 / 2.0 / 1.0 fall in exact / partial / irrelevant with --score-bins 1.5,2.5
    grades = dict(zip(zip(judgments["query_id"].to_pylist(), judgments["item_id"].to_pylist()),
                      judgments["grade"].to_pylist()))
    assert (grades[("Q1", "A100")], grades[("Q1", "A101")], grades[("Q1", "A103")]) == (2, 1, 0)
    splits = bus.read_table("queries")["split"].to_pylist()
    assert splits.count("unlabeled") == 1  # Q6 has no judgments
