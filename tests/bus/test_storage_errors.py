"""Storage that refuses or cannot be reached gives one clear error, not a traceback from pyarrow."""

from __future__ import annotations

import pyarrow as pa
import pytest

from relforge.bus import DataBus, StorageError
from relforge.config import BusConfig
from relforge.errors import RelforgeError

TABLE = pa.table({"item_id": ["a"], "title": ["t"], "text": ["t"]})


@pytest.mark.s3
def test_wrong_credentials(s3_server, s3_bucket):
    bus = DataBus(
        f"s3://{s3_bucket}/run",
        BusConfig(endpoint_url=s3_server.endpoint, access_key=s3_server.access_key,
                  secret_key="not-the-secret", region="us-east-1"),
    )
    for action in (lambda: bus.write_table("catalog", TABLE), lambda: bus.read_table("catalog"),
                   lambda: bus.is_committed("catalog")):
        with pytest.raises(StorageError) as info:
            action()
        message = str(info.value)
        assert message.startswith(f"s3://{s3_bucket}/run: access denied by {s3_server.endpoint}")
        assert "AWS_SECRET_ACCESS_KEY" in message
        assert isinstance(info.value, RelforgeError)


@pytest.mark.s3
def test_wrong_credentials_from_the_environment(s3_env, s3_bucket, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "nobody")
    with pytest.raises(StorageError, match="access denied"):
        DataBus(f"s3://{s3_bucket}/run").write_table("catalog", TABLE)


@pytest.mark.s3
def test_missing_bucket(s3_server):
    bus = DataBus("s3://no-such-bucket-here/run", BusConfig(
        endpoint_url=s3_server.endpoint, access_key=s3_server.access_key,
        secret_key=s3_server.secret_key, region="us-east-1"))
    with pytest.raises(StorageError, match="bucket 'no-such-bucket-here' does not exist"):
        bus.write_table("catalog", TABLE)


def test_unreachable_endpoint():
    bus = DataBus("s3://bucket/run", BusConfig(
        endpoint_url="http://127.0.0.1:9", access_key="k", secret_key="s", region="us-east-1"))
    with pytest.raises(StorageError, match="cannot reach the S3 endpoint http://127.0.0.1:9"):
        bus.read_table("catalog")
