"""Fixtures for the model tests: a private cache, tiny models, hand-made installed packages."""

from __future__ import annotations

import hashlib
import importlib
from pathlib import Path

import pytest

from relforge.config import ModelsConfig
from relforge.models import PACKAGED, PackagedModel, PackageFile, PipPackage
from tests.models._fakedist import folder_files, make_dist
from tests.models._tiny import tiny_bert_folder, tiny_gguf


@pytest.fixture
def models_cfg(tmp_path) -> ModelsConfig:
    return ModelsConfig(cache_dir=tmp_path / "cache")


@pytest.fixture(scope="session")
def tiny_llama_gguf(tmp_path_factory):
    """``(gguf path, torch model, tokenizers tokenizer)`` of a 2-layer llama, built once."""
    return tiny_gguf(tmp_path_factory.mktemp("tiny-gguf"))


@pytest.fixture(scope="session")
def tiny_st(tmp_path_factory) -> Path:
    """A tiny sentence-transformers folder, built once."""
    return tiny_bert_folder(tmp_path_factory.mktemp("tiny-st"))


@pytest.fixture
def fake_site(tmp_path, monkeypatch) -> Path:
    """A site folder on ``sys.path`` for hand-made distributions."""
    site = tmp_path / "site"
    site.mkdir()
    monkeypatch.syspath_prepend(str(site))
    importlib.invalidate_caches()
    return site


@pytest.fixture
def tiny_gguf_packaged(fake_site, tiny_llama_gguf, monkeypatch) -> PackagedModel:
    """``packaged:tiny-llama``: the tiny GGUF split in two parts over two installed packages."""
    path, _, _ = tiny_llama_gguf
    data = path.read_bytes()
    half = len(data) // 2
    parts = []
    for i, chunk in enumerate((data[:half], data[half:])):
        pkg, rel = f"relforge-test-tiny-part{i + 1}", f"relforge_test_tiny_part{i + 1}/data/tiny.gguf.part{i:02d}"
        make_dist(fake_site, pkg, "1.0.0", {rel: chunk, f"relforge_test_tiny_part{i + 1}/__init__.py": b""})
        parts.append(PackageFile(pkg, rel))
    make_dist(fake_site, "relforge-test-tiny", "1.0.0", {"relforge_test_tiny/LICENSE.txt": b"tiny terms\n"})
    model = PackagedModel(
        name="tiny-llama",
        kind="gguf-causal-lm",
        packages=(PipPackage("relforge-test-tiny", "1.0.0"), *(PipPackage(p.package, "1.0.0") for p in parts)),
        files=tuple(parts),
        gguf_file="tiny.gguf",
        gguf_sha256=hashlib.sha256(data).hexdigest(),
        stop_tokens=("<|endoftext|>",),
        extra_files=(PackageFile("relforge-test-tiny", "relforge_test_tiny/LICENSE.txt"),),
        description="a 2-layer llama for the tests",
    )
    monkeypatch.setitem(PACKAGED, model.name, model)
    return model


@pytest.fixture
def tiny_st_packaged(fake_site, tiny_st, monkeypatch) -> PackagedModel:
    """``packaged:tiny-st``: a sentence-transformers folder inside an installed package."""
    make_dist(fake_site, "relforge-test-st", "0.1.0", folder_files(tiny_st, "relforge_test_st/model/"))
    model = PackagedModel(
        name="tiny-st",
        kind="sentence-transformer",
        packages=(PipPackage("relforge-test-st", "0.1.0"),),
        files=(PackageFile("relforge-test-st", "relforge_test_st/model/"),),
    )
    monkeypatch.setitem(PACKAGED, model.name, model)
    return model
