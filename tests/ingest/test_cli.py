"""`relforge ingest esci` and `relforge ingest files` through the ingest typer app."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from relforge.bus import DataBus
from relforge.errors import InputError
from relforge.ingest.cli import app
from tests.ingest.conftest import write_csv, write_jsonl

REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()


def test_esci_command(tmp_path):
    out = tmp_path / "run"
    result = runner.invoke(app, ["esci", "--out", str(out)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "6,764" in result.output and "6,678" in result.output
    assert "calib 30, test 30, train 90" in result.output
    assert DataBus(out).manifest("queries").rows == 150


def test_files_command_with_map_and_score_bins(tmp_path):
    catalog = write_csv(tmp_path / "items.csv", [{"sku": "1", "name": "Lamp"}, {"sku": "2", "name": "Desk"}])
    queries = write_jsonl(tmp_path / "q.jsonl", [{"query": "lamp"}, {"query": "chair"}])
    judgments = write_csv(tmp_path / "j.csv", [
        {"query": "lamp", "sku": "1", "rating": "2.8"}, {"query": "lamp", "sku": "2", "rating": "1.2"},
    ])
    out = tmp_path / "run"
    result = runner.invoke(app, [
        "files", "--catalog", str(catalog), "--queries", str(queries), "--judgments", str(judgments),
        "--grades", "bad,ok,good", "--map", "item_id=sku", "--map", "title=name",
        "--map", "grade=rating", "--score-bins", "1.5,2.5", "--out", str(out),
    ], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "unlabeled 1" in result.output and "bad 1" in result.output and "good 1" in result.output
    assert DataBus(out).read_table("judgments").column("grade").to_pylist() == [2, 0]


def test_files_command_bad_input_raises_input_error(tmp_path):
    catalog = write_csv(tmp_path / "items.csv", [{"item_id": "1", "title": ""}])
    queries = write_jsonl(tmp_path / "q.jsonl", [{"query": "lamp"}])
    result = runner.invoke(app, [
        "files", "--catalog", str(catalog), "--queries", str(queries), "--grades", "a,b",
        "--out", str(tmp_path / "run"),
    ])
    assert isinstance(result.exception, InputError)
    assert str(result.exception) == f'{catalog}, row 1, field "title": title is empty'
    assert not (tmp_path / "run" / "catalog").exists()


def test_module_entry_point_reports_errors_cleanly(tmp_path):
    queries = write_jsonl(tmp_path / "q.jsonl", [{"query": "lamp"}])
    proc = subprocess.run(
        [sys.executable, "-m", "relforge.ingest", "files", "--catalog", str(tmp_path / "missing.csv"),
         "--queries", str(queries), "--grades", "a,b", "--out", str(tmp_path / "run")],
        cwd=REPO, capture_output=True, text=True, timeout=120, check=False,
    )
    assert proc.returncode == 2
    assert "missing.csv: no such file" in proc.stderr.replace("\n", "")
    assert "Traceback" not in proc.stderr
