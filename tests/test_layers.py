"""The layering holds: a lower layer never imports a higher one (import-linter's contract in
pyproject.toml), and the contract does catch an import that breaks it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).with_name("lint-imports")


def _lint(root: Path, src: Path) -> subprocess.CompletedProcess:
    env = {"PYTHONPATH": str(src), "PATH": str(LINT.parent), "HOME": str(root)}
    return subprocess.run([str(LINT), "--config", str(root / "pyproject.toml"), "--no-cache"],
                          cwd=root, env=env, capture_output=True, text=True, timeout=300, check=False)


def test_the_layers_contract_is_kept():
    result = _lint(REPO, REPO / "src")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 kept, 0 broken" in result.stdout


def test_an_import_from_a_lower_layer_into_a_higher_one_breaks_it(tmp_path):
    shutil.copytree(REPO / "src" / "relforge", tmp_path / "src" / "relforge",
                    ignore=shutil.ignore_patterns("__pycache__", "data"))
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    bus = tmp_path / "src" / "relforge" / "bus" / "_fs.py"
    bus.write_text(bus.read_text() + "\n\ndef _late():\n    from relforge.tiers import load_scorer  # noqa\n")
    result = _lint(tmp_path, tmp_path / "src")
    assert result.returncode != 0
    assert "relforge.bus._fs -> relforge.tiers" in result.stdout
