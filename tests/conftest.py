"""Shared fixtures: a real SeaweedFS S3 server, S3 and local data buses, the ESCI sample."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from relforge.bus import DataBus
from relforge.config import BusConfig
from tests._seaweed import S3Server, start_seaweedfs

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
