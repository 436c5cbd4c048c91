"""``resolve_model`` for local folders, ``s3://`` folders (a real SeaweedFS) and hub ids."""

from __future__ import annotations

import shutil
import socket
import time
import uuid

import pytest

from relforge.errors import ModelError
from relforge.models import MANIFEST, _resolve, resolve_model, write_manifest


def test_a_local_folder_resolves_to_itself(tiny_st, models_cfg, monkeypatch):
    assert resolve_model(str(tiny_st), models_cfg) == tiny_st.resolve()
    monkeypatch.chdir(tiny_st.parent)
    assert resolve_model(f"./{tiny_st.name}", models_cfg) == tiny_st.resolve()


def test_missing_file_and_empty_references_are_errors(tmp_path, models_cfg):
    with pytest.raises(ModelError, match="no such model folder"):
        resolve_model(str(tmp_path / "nope"), models_cfg)
    with pytest.raises(ModelError, match="no such model folder"):
        resolve_model("./not/a/hub/id", models_cfg)
    (tmp_path / "file.bin").write_bytes(b"x")
    with pytest.raises(ModelError, match="is a file"):
        resolve_model(str(tmp_path / "file.bin"), models_cfg)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match="empty"):
        resolve_model(str(tmp_path / "empty"), models_cfg)
    with pytest.raises(ModelError, match="empty model reference"):
        resolve_model("  ", models_cfg)


def test_a_local_folder_with_a_manifest_is_verified(tmp_path, models_cfg):
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "config.json").write_text('{"hidden_size": 8}')
    write_manifest(folder, "m", {"kind": "test"})
    assert resolve_model(str(folder), models_cfg) == folder.resolve()
    (folder / "config.json").write_text('{"hidden_size": 9}')
    with pytest.raises(ModelError, match=r"config\.json: corrupt model file"):
        resolve_model(str(folder), models_cfg)


# -- model hub -----------------------------------------------------------------------------
def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_hub_id_while_offline_fails_fast_and_says_what_to_use(models_cfg, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    started = time.monotonic()
    with pytest.raises(ModelError, match="HF_HUB_OFFLINE") as err:
        resolve_model(f"relforge-test/no-such-model-{uuid.uuid4().hex[:6]}", models_cfg)
    assert time.monotonic() - started < 5
    assert "packaged:smollm2-135m-instruct" in str(err.value)


def test_a_hub_id_with_no_reachable_hub_fails_fast(models_cfg, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{_closed_port()}")
    started = time.monotonic()
    with pytest.raises(ModelError, match="is not reachable") as err:
        resolve_model(f"relforge-test/no-such-model-{uuid.uuid4().hex[:6]}", models_cfg)
    assert time.monotonic() - started < models_cfg.hub_timeout_s + 5
    assert "packaged:minilm-l6" in str(err.value)


# -- S3 ------------------------------------------------------------------------------------
@pytest.mark.s3
def test_an_s3_folder_is_copied_once_and_loads(s3_bus, tiny_st, models_cfg, monkeypatch, tmp_path):
    from sentence_transformers import SentenceTransformer

    uri = s3_bus.put_dir(tiny_st, "models/st")
    folder = resolve_model(uri, models_cfg, bus=s3_bus.config)
    assert folder.is_relative_to(models_cfg.cache_dir / "s3")
    assert (folder / MANIFEST).is_file()
    emb = SentenceTransformer(str(folder), device="cpu").encode(["wireless headphones"])
    ref = SentenceTransformer(str(tiny_st), device="cpu").encode(["wireless headphones"])
    assert abs(emb - ref).max() < 1e-6

    with monkeypatch.context() as m:  # unchanged on S3: the cached copy, no download
        m.setattr(_resolve, "_download", lambda *a: pytest.fail("downloaded again"))
        assert resolve_model(uri + "/", models_cfg, bus=s3_bus.config) == folder

    # a file changed behind the back of the folder's manifest.json (DataBus.put_dir) is refused
    s3_bus.write_text("models/st/config_sentence_transformers.json", '{"changed": true}')
    with pytest.raises(ModelError, match=r"config_sentence_transformers\.json: missing or of the wrong size"):
        resolve_model(uri, models_cfg, bus=s3_bus.config)

    changed = tmp_path / "changed"  # the folder written again: copied again
    shutil.copytree(tiny_st, changed)
    (changed / "config_sentence_transformers.json").write_text('{"changed": true}')
    assert s3_bus.put_dir(changed, "models/st") == uri
    assert resolve_model(uri, models_cfg, bus=s3_bus.config) == folder
    assert (folder / "config_sentence_transformers.json").read_text() == '{"changed": true}'

    (folder / "modules.json").write_text("[]")  # a corrupt cached copy is copied again
    resolve_model(uri, models_cfg, bus=s3_bus.config)
    assert (folder / "modules.json").read_bytes() == (tiny_st / "modules.json").read_bytes()
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".")]


@pytest.mark.s3
def test_s3_credentials_from_the_environment(s3_env, s3_bus, tiny_st, models_cfg):
    uri = s3_bus.put_dir(tiny_st, "models/env")
    folder = resolve_model(uri, models_cfg)  # no bus config: the AWS variables
    assert (folder / "modules.json").is_file()


@pytest.mark.s3
def test_an_s3_folder_whose_manifest_disagrees_is_refused(s3_bus, tiny_st, tmp_path, models_cfg):
    local = tmp_path / "pulled"
    shutil.copytree(tiny_st, local)
    write_manifest(local, "pulled", {"kind": "test"})
    (local / "modules.json").write_text("[]")  # corrupted after its manifest was written
    uri = s3_bus.put_dir(local, "models/bad")
    with pytest.raises(ModelError, match=r"models/bad/modules\.json: corrupt model file"):
        resolve_model(uri, models_cfg, bus=s3_bus.config)
    assert not (models_cfg.cache_dir / "s3").exists() or not any(
        (models_cfg.cache_dir / "s3").glob("bad-*")
    )


@pytest.mark.s3
def test_an_empty_s3_prefix_is_an_error(s3_bus, models_cfg):
    with pytest.raises(ModelError, match="no files under this prefix"):
        resolve_model(s3_bus.uri("models/nothing"), models_cfg, bus=s3_bus.config)


@pytest.mark.s3
def test_unreachable_s3_refuses_a_possibly_stale_cached_copy_unless_allowed(s3_bus, tiny_st, models_cfg, caplog):
    uri = s3_bus.put_dir(tiny_st, "models/cached")
    folder = resolve_model(uri, models_cfg, bus=s3_bus.config)
    down = s3_bus.config.model_copy(update={"endpoint_url": f"http://127.0.0.1:{_closed_port()}"})
    with pytest.raises(ModelError, match="stale_s3_fallback=true"):
        resolve_model(uri, models_cfg, bus=down)
    allowed = models_cfg.model_copy(update={"stale_s3_fallback": True})
    with caplog.at_level("WARNING", logger="relforge"):
        assert resolve_model(uri, allowed, bus=down) == folder
    assert any(r.levelname == "WARNING" and "may be stale" in r.getMessage() for r in caplog.records)
    (folder / "modules.json").write_text("[]")
    with pytest.raises(ModelError, match=r"modules\.json: corrupt model file"):
        resolve_model(uri, allowed, bus=down)
    with pytest.raises(ModelError, match="cannot list the model folder on S3"):
        resolve_model(s3_bus.uri("models/never-copied"), allowed, bus=down)
