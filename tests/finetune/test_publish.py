"""The models the tier pools serve: finetune-tiers publishes a remote tier's merged LoRA folder as
an immutable version, never a probe, and served_model_uri names what a pool must load."""

from __future__ import annotations

import json

import pytest

from relforge.bus import DataBus
from relforge.config import load_config
from relforge.errors import ConfigError, ModelError
from relforge.finetune import (
    check_servable,
    ensure_published,
    publish_version,
    run_finetune_tiers,
    served_model_uri,
    version_path,
)
from relforge.grades import ESCI
from relforge.tiers import TierDescriptor

LORA_FAST = [
    "finetune.llm_max_length=96", "finetune.lora_epochs=1", "finetune.lora_eval_steps=4",
    "finetune.lora_batch_size=8", "finetune.lora_grad_accum=1", "finetune.lora_learning_rate=0.005",
    "finetune.max_train_pairs=48", "finetune.calib_max_pairs=16",
]


def _fake_model(folder, backend="causal-lm", weights=True):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text('{"model_type": "llama"}')
    if weights:
        (folder / "model.safetensors").write_bytes(b"weights-1")
    TierDescriptor(backend=backend, head="grade-tokens" if backend == "causal-lm" else "softmax",
                   grade_scale=ESCI).save(folder)
    return folder


def test_a_version_is_written_once_with_its_manifest_last_and_never_rewritten(tmp_path):
    bus = DataBus(tmp_path / "run")
    uri = publish_version(bus, "tier2", _fake_model(tmp_path / "m1"), "v1")
    assert uri == bus.uri(version_path("tier2", "v1")) == bus.uri("models/tier2/versions/v1")
    manifest = bus.read_json("models/tier2/versions/v1/manifest.json")
    assert sorted(f["path"] for f in manifest["files"]) == ["config.json", "model.safetensors", "relforge_tier.json"]
    other = _fake_model(tmp_path / "m2")
    (other / "model.safetensors").write_bytes(b"weights-2")
    assert publish_version(bus, "tier2", other, "v1") == uri
    assert (tmp_path / "run/models/tier2/versions/v1/model.safetensors").read_bytes() == b"weights-1"
    assert bus.read_json("models/tier2/versions/v1/manifest.json") == manifest


def test_a_probe_or_a_weightless_folder_is_never_published(tmp_path):
    bus = DataBus(tmp_path / "run")
    with pytest.raises(ModelError, match="is a probe.*cannot serve it"):
        publish_version(bus, "tier2", _fake_model(tmp_path / "probe", backend="probe"), "v1")
    with pytest.raises(ModelError, match="no model weights"):
        check_servable(_fake_model(tmp_path / "empty", weights=False), "tier2")
    with pytest.raises(ModelError, match="`cross-encoder` model"):
        check_servable(_fake_model(tmp_path / "ce", backend="cross-encoder"), "tier1")
    assert not bus.exists("models/tier2/versions/v1/manifest.json")


def _remote_config(*extra):
    return load_config(overrides=[
        "tiers.specs.tier2.backend=tgi", "tiers.specs.tier2.url=http://tier2-tgi.relforge.svc",
        "tiers.specs.tier2.model=s3://models/gemma-2b", *extra])


def _fine_tuned(bus, mode="lora", base="s3://models/gemma-2b", fingerprint="f00d"):
    bus.write_json("models/tier2/finetune.json", {"mode": mode, "base_model": base, "fingerprint": fingerprint})
    bus.write_json("models/tier2/manifest.json", {"files": []})


def test_served_model_uri_is_the_published_version_of_the_fine_tuned_tier(tmp_path):
    bus = DataBus(tmp_path / "run")
    config = _remote_config()
    _fine_tuned(bus)
    with pytest.raises(ModelError, match="not published; rerun finetune-tiers"):
        served_model_uri(bus, config, "tier2")
    publish_version(bus, "tier2", _fake_model(tmp_path / "m"), "f00d")
    assert served_model_uri(bus, config, "tier2") == bus.uri("models/tier2/versions/f00d")


def test_a_remote_tier_whose_model_on_the_bus_is_a_probe_is_a_clear_error(tmp_path):
    bus = DataBus(tmp_path / "run")
    _fine_tuned(bus, mode="probe")
    with pytest.raises(ModelError, match="tier `tier2` is a probe"):
        served_model_uri(bus, _remote_config(), "tier2")


def test_a_remote_tier_without_a_fine_tuned_model_needs_an_s3_folder(tmp_path):
    bus = DataBus(tmp_path / "run")
    _fine_tuned(bus, base="s3://models/another-base")  # fine-tuned from another base: not this tier's
    config = _remote_config("tiers.specs.tier2.model=/home/me/gemma-2b")
    with pytest.raises(ConfigError, match=r"loads s3:// folders only; its model is '/home/me/gemma-2b'"):
        served_model_uri(bus, config, "tier2")


@pytest.mark.s3
def test_a_configured_s3_model_is_served_as_it_is_unless_it_is_a_probe(s3_server, s3_bucket, tmp_path):
    from relforge.config import BusConfig

    bus_config = BusConfig(endpoint_url=s3_server.endpoint, access_key=s3_server.access_key,
                           secret_key=s3_server.secret_key, region="us-east-1")
    base = DataBus(f"s3://{s3_bucket}/base-models", bus_config)
    base.put_dir(_fake_model(tmp_path / "gemma"), "gemma-2b")
    base.put_dir(_fake_model(tmp_path / "probe", backend="probe"), "probe")
    run = DataBus(f"s3://{s3_bucket}/run", bus_config)
    sets = [f"bus.endpoint_url={s3_server.endpoint}", f"bus.access_key={s3_server.access_key}",
            f"bus.secret_key={s3_server.secret_key}"]
    good = _remote_config(f"tiers.specs.tier2.model=s3://{s3_bucket}/base-models/gemma-2b/", *sets)
    assert served_model_uri(run, good, "tier2") == f"s3://{s3_bucket}/base-models/gemma-2b"
    probe = _remote_config(f"tiers.specs.tier2.model=s3://{s3_bucket}/base-models/probe", *sets)
    with pytest.raises(ModelError, match="is a probe"):
        served_model_uri(run, probe, "tier2")


@pytest.mark.slow
def test_finetune_tiers_publishes_the_merged_lora_folder_of_a_remote_tier(synthetic_bus, llama_base, tmp_path):
    config = load_config(overrides=[
        "tiers.names=[tier3]", f"tiers.specs.tier3.model={llama_base}",
        "tiers.specs.tier3.backend=openai", "tiers.specs.tier3.url=http://tier3-vllm.relforge.svc",
        f"models.cache_dir={tmp_path / 'cache'}", *LORA_FAST,
    ])
    report = run_finetune_tiers(synthetic_bus, config)["tiers"]["tier3"]
    assert report["mode"] == "lora"
    version = version_path("tier3", report["fingerprint"])
    assert report["served_uri"] == synthetic_bus.uri(version) == served_model_uri(synthetic_bus, config, "tier3")
    files = {f["path"] for f in synthetic_bus.read_json(f"{version}/manifest.json")["files"]}
    assert {"config.json", "model.safetensors", "relforge_tier.json", "finetune.json"} <= files
    assert json.loads((synthetic_bus.get_dir(version, tmp_path / "v") / "finetune.json").read_text())["mode"] == "lora"

    # a rerun reuses the tier and leaves the version as it is; a version lost in between is published again
    manifest = synthetic_bus.read_json(f"{version}/manifest.json")
    again = run_finetune_tiers(synthetic_bus, config)["tiers"]["tier3"]
    assert again["reused"] and again["served_uri"] == report["served_uri"]
    assert synthetic_bus.read_json(f"{version}/manifest.json") == manifest
    (tmp_path / "run" / version / "manifest.json").unlink()
    assert ensure_published(synthetic_bus, "tier3", report["fingerprint"]) == report["served_uri"]
    assert synthetic_bus.exists(f"{version}/manifest.json")
