"""``relforge models`` pull / list / resolve, on a tiny packaged model in a private cache."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

import relforge.config
from relforge.config import RelforgeConfig
from relforge.errors import ModelError
from relforge.models import PACKAGED, model_dir
from relforge.models.cli import app


@pytest.fixture
def cli_cache(models_cfg, monkeypatch):
    monkeypatch.setattr(relforge.config, "_active", RelforgeConfig(models=models_cfg))
    return models_cfg


def test_pull_list_and_resolve(tiny_st_packaged, cli_cache, monkeypatch):
    # only the tiny model is in the registry, so that `pull` with no names touches nothing real
    for name in [n for n in PACKAGED if n != "tiny-st"]:
        monkeypatch.delitem(PACKAGED, name)
    runner = CliRunner()
    listed = runner.invoke(app, ["list"])
    assert listed.exit_code == 0, listed.output
    assert "packaged:tiny-st" in listed.output and "not pulled" in listed.output

    pulled = runner.invoke(app, ["pull"])
    assert pulled.exit_code == 0, pulled.output
    folder = model_dir("tiny-st", cli_cache)
    assert "tiny-st" in pulled.output and "MiB" in pulled.output
    assert folder.is_dir()

    listed = runner.invoke(app, ["list"])
    assert "pulled" in listed.output and "not pulled" not in listed.output

    resolved = runner.invoke(app, ["resolve", "packaged:tiny-st"])
    assert resolved.exit_code == 0 and resolved.output.strip() == str(folder)


def test_resolve_of_a_missing_folder_raises_a_model_error(cli_cache, tmp_path):
    result = CliRunner().invoke(app, ["resolve", str(tmp_path / "nope")])
    assert result.exit_code != 0
    assert isinstance(result.exception, ModelError)
    assert "no such model folder" in str(result.exception)
