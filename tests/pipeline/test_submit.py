"""`relforge submit` and `python -m pipeline submit` send a run to Kubeflow Pipelines with the
user's own data URIs, the run URI and no local path: tested against a stand-in of the KFP API
(tests/pipeline/_kfp_standin.py) that records the requests; the compiled spec it receives is
read back with KFP's own loader."""

from __future__ import annotations

import json
from pathlib import Path

import kfp
import pytest
import yaml
from typer.testing import CliRunner

from relforge.cluster import cluster_run, is_local_path
from relforge.config import load_config
from relforge.errors import ConfigError
from relforge.steps import PIPELINES, STEPS
from tests.pipeline._kfp_standin import API, KFPStandIn

REPO = Path(__file__).resolve().parents[2]
PROFILE = REPO / "configs" / "cluster.yaml"
DATA = {"catalog": "s3://acme-search/data/catalog.parquet", "queries": "s3://acme-search/data/queries.jsonl",
        "judgments": "s3://acme-search/data/judgments.csv"}
CPU_IMAGE = "registry.acme.example/relforge/relforge-step:0.1.0"
GPU_IMAGE = "registry.acme.example/relforge/relforge-step-gpu:0.1.0"
#: The profile's placeholders, replaced as a platform engineer would.
FILLED = [
    f"cluster.step_image={CPU_IMAGE}", f"cluster.gpu_step_image={GPU_IMAGE}",
    "models.tier1=s3://acme-models/bert-base-uncased", "models.tier2=s3://acme-models/gemma-2b-it",
    "models.tier3=s3://acme-models/llama-3.1-8b-instruct",
    "cluster.gpu_pool.node_selector={cloud.google.com/gke-accelerator: nvidia-l4}",
    "cluster.service_account=pipeline-runner",
]


@pytest.fixture
def kfp_api(monkeypatch, tmp_path):
    """The stand-in, and a kfp client that reads no context file of this machine."""
    monkeypatch.setattr(kfp.Client, "_LOCAL_KFP_CONTEXT", str(tmp_path / "kfp-context.json"))
    monkeypatch.delenv("RELFORGE_KFP_TOKEN", raising=False)
    server = KFPStandIn()
    yield server
    server.stop()


def _relforge(*args: str):
    from relforge.cli import _register, app

    _register()
    return CliRunner().invoke(app, list(args))


def _sets(*items: str) -> list[str]:
    return [a for item in items for a in ("--set", item)]


def test_submit_sends_the_users_data_the_run_and_no_local_path(kfp_api, tmp_path, monkeypatch):
    laptop_cache = tmp_path / "laptop" / ".cache" / "relforge"
    monkeypatch.setenv("RELFORGE_KFP_TOKEN", "token-123")
    result = _relforge(
        "submit", "--host", kfp_api.url, "--namespace", "team-a", "--experiment", "search-labels",
        "--run", "s3://acme-search/runs/first/", "--config", str(PROFILE),
        *_sets(*FILLED, "ingest.source=files", *(f"ingest.{k}={v}" for k, v in DATA.items()),
               "ingest.map={item_id: sku, judgments.grade: rating}", f"models.cache_dir={laptop_cache}",
               "bus.endpoint_url=http://127.0.0.1:8333", "bus.access_key=AKIALAPTOP", "bus.secret_key=s3cr3t"),
    )
    assert result.exit_code == 0, result.output + repr(result.exception)
    out = json.loads(result.output[result.output.index("{"):])
    assert out["experiment"] == "search-labels" and out["url"].endswith(f"/#/runs/details/{out['run_id']}")
    assert any(d.startswith("models.cache_dir") for d in out["dropped"])

    assert kfp_api.calls() == [("GET", f"{API}/experiments"), ("POST", f"{API}/experiments"), ("POST", f"{API}/runs")]
    lookup, create_experiment, create_run = kfp_api.requests
    assert lookup.query["namespace"] == ["team-a"]
    assert create_experiment.body == {"display_name": "search-labels", "namespace": "team-a"}
    assert all(r.headers.get("authorization") == "Bearer token-123" for r in kfp_api.requests)
    run = create_run.body
    assert run["experiment_id"] == kfp_api.experiments[0]["experiment_id"]
    assert run["service_account"] == "pipeline-runner"
    params = run["runtime_config"]["parameters"]
    assert params["run_uri"] == "s3://acme-search/runs/first"
    assert {k: params[k] for k in DATA} == DATA and params["source"] == "files"
    assert json.loads(params["map"]) == {"item_id": "sku", "judgments.grade": "rating"}

    # the configuration the pods read: the user's data, the cluster's tiers, nothing of this machine
    sent = yaml.safe_load(params["config_yaml"])
    assert {k: sent["ingest"][k] for k in DATA} == DATA
    assert "cache_dir" not in sent["models"]
    assert not {"access_key", "secret_key", "endpoint_url"} & set(sent["bus"])
    assert sent["tiers"]["specs"]["tier2"]["pool"]["deployment"] == "tier2-tgi"
    assert sent["tiers"]["specs"]["tier3"]["url"] == "http://tier3-vllm.relforge.svc"
    assert sent["finetune"]["llm_mode"] == "lora" and sent["models"]["tier3"] == "s3://acme-models/llama-3.1-8b-instruct"
    load_config(data=sent)  # the pods can read it back
    text = json.dumps(run)
    for local in (str(laptop_cache), str(tmp_path), str(REPO), "127.0.0.1", "AKIALAPTOP", "s3cr3t"):
        assert local not in text, local

    # the compiled spec: KFP's own loader reads it; images, GPU pool and secret from `cluster`
    spec, platform = run["pipeline_spec"]["pipeline_spec"], run["pipeline_spec"]["platform_spec"]
    package = tmp_path / "sent.yaml"
    package.write_text(yaml.safe_dump(spec))
    assert kfp.components.load_component_from_file(str(package)).name == "relforge"
    executors = spec["deploymentSpec"]["executors"]
    k8s = platform["platforms"]["kubernetes"]["deploymentSpec"]["executors"]
    for step in PIPELINES["relforge"]:
        name = f"exec-{step.name}"
        assert executors[name]["container"]["image"] == (GPU_IMAGE if step.image == "gpu" else CPU_IMAGE)
        assert {s["secretName"] for s in k8s[name]["secretAsEnv"]} == {"relforge-s3"}
        if step.resources.gpu:
            assert k8s[name]["nodeSelector"]["labels"] == {"cloud.google.com/gke-accelerator": "nvidia-l4"}
            assert k8s[name]["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]


def test_a_local_data_file_is_an_error_naming_the_field_and_nothing_is_sent(kfp_api, tmp_path):
    local = tmp_path / "catalog.csv"
    local.write_text("item_id,title\n1,x\n")
    result = _relforge("submit", "--host", kfp_api.url, "--run", "s3://acme-search/runs/r", "--config", str(PROFILE),
                       *_sets(*FILLED, "ingest.source=files", f"ingest.catalog={local}"))
    assert result.exit_code != 0
    assert isinstance(result.exception, ConfigError)
    assert f"ingest.catalog: {local} is not an s3:// URI" in str(result.exception)
    assert kfp_api.requests == []


def test_the_run_must_be_on_s3_and_the_profile_placeholders_replaced(kfp_api):
    result = _relforge("submit", "--host", kfp_api.url, "--run", "runs/demo", "--config", str(PROFILE), *_sets(*FILLED))
    assert isinstance(result.exception, ConfigError) and "--run runs/demo" in str(result.exception)
    result = _relforge("submit", "--host", kfp_api.url, "--run", "s3://b/r", "--config", str(PROFILE))
    assert isinstance(result.exception, ConfigError)
    assert "cluster.step_image: REPLACE-ME" in str(result.exception) and "models.tier2" in str(result.exception)
    assert kfp_api.requests == []


def test_python_m_pipeline_submit_runs_the_same_code(kfp_api, capsys):
    from pipeline.__main__ import main

    code = main(["submit", "--host", kfp_api.url, "--run", "s3://acme-search/runs/second", "--config", str(PROFILE),
                 *_sets(*FILLED)])
    assert code == 0
    out = capsys.readouterr().out
    assert json.loads(out[out.index("{"):])["url"].startswith(kfp_api.url)
    # no namespace given: the client asks the API whether it is multi-user first
    assert kfp_api.calls() == [("GET", f"{API}/healthz"), ("GET", f"{API}/experiments"), ("POST", f"{API}/experiments"),
                               ("POST", f"{API}/runs")]
    params = kfp_api.runs[0]["runtime_config"]["parameters"]
    assert params["run_uri"] == "s3://acme-search/runs/second"
    assert "cache_dir" not in yaml.safe_load(params["config_yaml"])["models"]
    assert main(["submit", "--host", kfp_api.url, "--run", "/tmp/run", *_sets(*FILLED)]) == 2
    assert len(kfp_api.runs) == 1
    # a second run goes into the experiment that exists
    before = len(kfp_api.requests)
    assert main(["submit", "--host", kfp_api.url, "--run", "s3://acme-search/runs/third", *_sets(*FILLED)]) == 0
    assert kfp_api.calls()[before:] == [("GET", f"{API}/healthz"), ("GET", f"{API}/experiments"), ("POST", f"{API}/runs")]
    assert len(kfp_api.experiments) == 1 and kfp_api.runs[1]["experiment_id"] == kfp_api.runs[0]["experiment_id"]


def test_cluster_run_drops_and_refuses_what_only_means_something_here(tmp_path):
    params = [p for s in STEPS for p in s.params]
    base = load_config(overrides=["bus.endpoint_url=https://s3.acme.example"])
    kept = cluster_run(base, "s3://b/r", params)
    assert yaml.safe_load(kept.config_yaml)["bus"]["endpoint_url"] == "https://s3.acme.example"
    assert set(kept.arguments) == {"run_uri", "config_yaml"}  # nothing changed from the defaults
    for bad, field in [
        ("models.tier1=/home/me/models/ce", "models.tier1"),
        ("mine.dense_model=./encoders/minilm", "mine.dense_model"),
        (f"tiers.specs.tier1.model={tmp_path}", "tiers.specs.tier1.model"),
        (f"tiers.specs.tier1.prompt={tmp_path / 'p.yaml'}", "tiers.specs.tier1.prompt"),
        ("ingest.queries=queries.csv", "ingest.queries"),
    ]:
        with pytest.raises(ConfigError, match=f"^{field}: "):
            cluster_run(load_config(overrides=[bad]), "s3://b/r", params)
    ok = load_config(overrides=["models.tier2=google/gemma-2b-it", "models.tier1=s3://m/ce", "ingest.catalog=s3://d/c"])
    run = cluster_run(ok, "s3://b/r", params)
    assert run.arguments["catalog"] == "s3://d/c"
    assert [is_local_path(v) for v in ("packaged:minilm-l6", "file:///x", "~/m", "C:\\m")] == [False, True, True, True]
