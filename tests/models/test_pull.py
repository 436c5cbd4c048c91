"""``pull`` on tiny "packaged" models installed by hand (see _fakedist.py): no index, no hub."""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from relforge.errors import ModelError
from relforge.models import (
    MANIFEST,
    PACKAGED,
    PipPackage,
    _pull,
    check_pulled,
    ensure_installed,
    model_dir,
    pull,
    read_manifest,
    resolve_model,
)

REPO = Path(__file__).resolve().parents[2]


def _flip_byte(path: Path, at: int = 64) -> None:
    data = bytearray(path.read_bytes())
    data[at] ^= 0xFF
    path.write_bytes(bytes(data))


def _leftovers(cfg) -> list[str]:
    return sorted(p.name for p in (Path(cfg.cache_dir) / "models").iterdir() if p.name.startswith("."))


def test_pull_joins_parts_converts_and_is_idempotent(tiny_gguf_packaged, tiny_llama_gguf, models_cfg, monkeypatch):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    got = pull(["packaged:tiny-llama"], models_cfg)
    folder = model_dir(tiny_gguf_packaged, models_cfg)
    assert got == {"tiny-llama": folder}
    manifest = read_manifest(folder)
    assert manifest["source"] == tiny_gguf_packaged.source()
    assert manifest["build"] == {"dtype": "float32"}
    listed = {f["path"] for f in manifest["files"]}
    assert {"model.safetensors", "config.json", "tokenizer.json", "licenses/LICENSE.txt"} <= listed
    assert not any(name.endswith(".gguf") for name in listed)  # the joined GGUF is scratch only
    assert _leftovers(models_cfg) == []

    tokenizer = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForCausalLM.from_pretrained(folder)
    ids = tokenizer.apply_chat_template(
        [{"role": "user", "content": "red shoes"}], add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    out = model.generate(**ids, max_new_tokens=3, do_sample=False)
    assert out.shape[1] > ids["input_ids"].shape[1]

    with monkeypatch.context() as m:  # a second pull verifies and returns: nothing is rebuilt
        m.setattr(_pull, "convert_gguf", lambda *a, **k: pytest.fail("converted again"))
        m.setattr(_pull, "ensure_installed", lambda *a, **k: pytest.fail("installed again"))
        started = time.monotonic()
        assert pull(["tiny-llama"], models_cfg) == {"tiny-llama": folder}
        assert time.monotonic() - started < 2
    assert resolve_model("packaged:tiny-llama", models_cfg) == folder


def test_a_corrupted_file_after_pull_is_named_and_a_pull_repairs_it(tiny_gguf_packaged, models_cfg):
    folder = pull(["tiny-llama"], models_cfg)["tiny-llama"]
    assert resolve_model("packaged:tiny-llama", models_cfg) == folder  # verified, remembered
    _flip_byte(folder / "model.safetensors")
    with pytest.raises(ModelError, match=r"model\.safetensors: corrupt model file") as err:
        resolve_model("packaged:tiny-llama", models_cfg)
    assert "relforge models pull tiny-llama" in str(err.value)
    assert check_pulled(tiny_gguf_packaged, models_cfg).startswith("corrupt")
    pull(["tiny-llama"], models_cfg)
    assert resolve_model("packaged:tiny-llama", models_cfg) == folder
    assert _leftovers(models_cfg) == []


def test_a_folder_from_other_packages_or_another_dtype_is_stale(tiny_gguf_packaged, models_cfg, monkeypatch):
    pull(["tiny-llama"], models_cfg)
    bf16 = models_cfg.model_copy(update={"packaged_dtype": "bfloat16"})
    assert check_pulled(tiny_gguf_packaged, bf16).startswith("stale")
    bumped = replace(tiny_gguf_packaged, packages=(PipPackage("relforge-test-tiny", "2.0.0"),))
    monkeypatch.setitem(PACKAGED, "tiny-llama", bumped)
    with pytest.raises(ModelError, match="stale.*relforge-test-tiny.*2.0.0"):
        resolve_model("packaged:tiny-llama", models_cfg)


def test_a_wrong_gguf_hash_fails_and_leaves_nothing(tiny_gguf_packaged, models_cfg, monkeypatch):
    monkeypatch.setitem(PACKAGED, "tiny-llama", replace(tiny_gguf_packaged, gguf_sha256="0" * 64))
    with pytest.raises(ModelError, match=r"tiny\.gguf: SHA-256 differs from the registry's 0000"):
        pull(["tiny-llama"], models_cfg)
    assert not model_dir("tiny-llama", models_cfg).exists()
    assert _leftovers(models_cfg) == []


def test_a_sentence_transformer_package_is_copied_and_loads(tiny_st_packaged, tiny_st, models_cfg):
    from sentence_transformers import SentenceTransformer

    cfg = models_cfg.model_copy(update={"auto_pull": True})
    folder = resolve_model("packaged:tiny-st", cfg)  # auto_pull pulls on first use
    assert folder == model_dir("tiny-st", cfg)
    assert (folder / "modules.json").read_bytes() == (tiny_st / "modules.json").read_bytes()
    assert read_manifest(folder)["build"] == {}
    emb = SentenceTransformer(str(folder), device="cpu").encode(["red running shoes"])
    ref = SentenceTransformer(str(tiny_st), device="cpu").encode(["red running shoes"])
    assert emb.shape == (1, 16) and abs(emb - ref).max() < 1e-6


def test_a_package_file_that_differs_from_its_record_is_refused(tiny_st_packaged, fake_site, models_cfg):
    _flip_byte(fake_site / "relforge_test_st/model/model.safetensors")
    with pytest.raises(ModelError, match=r"model\.safetensors: file of package \"relforge-test-st\" differs from its RECORD"):
        pull(["tiny-st"], models_cfg)
    assert not model_dir("tiny-st", models_cfg).exists()


def test_not_pulled_is_a_clear_error(tiny_st_packaged, models_cfg):
    with pytest.raises(ModelError, match=r"packaged:tiny-st: not pulled .*relforge models pull tiny-st"):
        resolve_model("packaged:tiny-st", models_cfg)


def test_a_failed_install_names_the_package():
    missing = PipPackage("relforge-test-no-such-package", "0.0.1")
    with pytest.raises(ModelError, match="pip could not install relforge-test-no-such-package==0.0.1"):
        ensure_installed((missing,), ["--no-index"])
    assert ensure_installed((PipPackage("pyarrow", __import__("pyarrow").__version__),)) == []


_KILLED_PULL = """
import pickle, sys, time
from pathlib import Path
sys.path[:0] = [sys.argv[1], sys.argv[2] + "/src"]
from relforge.models import PACKAGED, _pull, pull
model, cfg = pickle.loads(Path(sys.argv[3]).read_bytes())
PACKAGED[model.name] = model

def stuck_convert(gguf_path, out, **kwargs):
    (out / "model.safetensors").write_bytes(b"half a model")
    (out / "relforge_model.json").write_text("{}")
    Path(sys.argv[4]).touch()
    time.sleep(300)

_pull.convert_gguf = stuck_convert
pull([model.name], cfg)
"""


def test_a_killed_pull_leaves_no_folder_that_looks_valid(tiny_gguf_packaged, fake_site, models_cfg, tmp_path):
    args = tmp_path / "args.pkl"
    args.write_bytes(pickle.dumps((tiny_gguf_packaged, models_cfg)))
    marker = tmp_path / "converting"
    proc = subprocess.Popen(
        [sys.executable, "-c", _KILLED_PULL, str(fake_site), str(REPO), str(args), str(marker)],
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 60
        while not marker.exists():
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "the pull never reached the conversion"
            time.sleep(0.1)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    folder = model_dir("tiny-llama", models_cfg)
    assert not folder.exists()
    assert _leftovers(models_cfg), "the killed pull's temporary folder should be there"
    assert check_pulled(tiny_gguf_packaged, models_cfg).startswith("not pulled")
    with pytest.raises(ModelError, match="not pulled"):
        resolve_model("packaged:tiny-llama", models_cfg)
    pull(["tiny-llama"], models_cfg)  # the next pull clears the leftovers and finishes
    assert _leftovers(models_cfg) == []
    assert (folder / MANIFEST).is_file()
    assert resolve_model("packaged:tiny-llama", models_cfg) == folder
