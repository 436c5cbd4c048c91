"""The pools' init container script (manifests/base/tier-pools/fetch-model.sh), run with a
stand-in `aws` (a shell script that copies from a local folder as `aws s3 sync` would, or
fails halfway): an empty MODEL_URI is a clear error, a model is published only whole."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.manifests.conftest import MANIFESTS

SCRIPT = MANIFESTS / "base" / "tier-pools" / "fetch-model.sh"

FAKE_AWS = """#!/bin/sh
# Stand-in for `aws s3 sync SRC DST`: SRC s3://BUCKET/KEY is the folder $FAKE_S3/BUCKET/KEY.
[ "$1 $2" = "s3 sync" ] || exit 2
src="$FAKE_S3/${5#s3://}"
env | grep '^AWS_' | sort > "$FAKE_S3/seen-env"
mkdir -p "$6"
if [ -n "${FAKE_FAIL_AFTER_ONE:-}" ]; then
  cp "$src/config.json" "$6/"
  echo "download failed: connection reset" >&2
  exit 1
fi
[ -d "$src" ] && cp -R "$src/." "$6/"
exit 0
"""


@pytest.fixture
def env(tmp_path) -> dict:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "aws").write_text(FAKE_AWS)
    (bin_dir / "aws").chmod(0o755)
    s3 = tmp_path / "s3"
    model = s3 / "bucket" / "run1" / "models" / "tier2" / "v3"
    (model / "sub").mkdir(parents=True)
    (model / "config.json").write_text('{"model_type": "llama"}')
    (model / "model.safetensors").write_bytes(b"\0" * 1024)
    (model / "sub" / "tokenizer.json").write_text("{}")
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "AWS_ACCESS_KEY_ID").write_text("AKIAEXAMPLE")
    (creds / "AWS_SECRET_ACCESS_KEY").write_text("secret")
    (creds / "AWS_ENDPOINT_URL").write_text("https://s3.example.internal")
    return {"PATH": f"{bin_dir}:{os.environ['PATH']}", "FAKE_S3": str(s3),
            "MODEL_DIR": str(tmp_path / "models" / "model"), "S3_CREDENTIALS_DIR": str(creds)}


def _run(env: dict, **extra) -> subprocess.CompletedProcess:
    return subprocess.run(["sh", str(SCRIPT)], env={**env, **extra}, capture_output=True, text=True,
                          timeout=60, check=False)


def test_an_empty_model_uri_is_a_clear_error(env):
    proc = _run(env, MODEL_URI="")
    assert proc.returncode == 64
    assert "MODEL_URI is empty" in proc.stderr and "annotate step" in proc.stderr
    assert not Path(env["MODEL_DIR"]).exists()


@pytest.mark.parametrize("uri", ["relforge/run1/models/tier2", "s3://bucket", "s3:///x", "/models/tier2"])
def test_a_uri_that_is_no_s3_folder_is_refused(env, uri):
    proc = _run(env, MODEL_URI=uri)
    assert proc.returncode == 64 and "not an s3://BUCKET/PREFIX folder" in proc.stderr


def test_the_model_is_published_whole_with_credentials_from_files(env):
    proc = _run(env, MODEL_URI="s3://bucket/run1/models/tier2/v3/")
    assert proc.returncode == 0, proc.stderr
    model = Path(env["MODEL_DIR"])
    assert sorted(p.relative_to(model).as_posix() for p in model.rglob("*") if p.is_file()) == [
        "config.json", "model.safetensors", "sub/tokenizer.json"]
    assert [p.name for p in model.parent.iterdir()] == ["model"], "no staging folder left behind"
    seen = (Path(env["FAKE_S3"]) / "seen-env").read_text().splitlines()
    assert seen == ["AWS_ACCESS_KEY_ID=AKIAEXAMPLE", "AWS_ENDPOINT_URL=https://s3.example.internal",
                    "AWS_SECRET_ACCESS_KEY=secret"]


def test_a_failed_copy_publishes_nothing_and_leaves_nothing(env):
    proc = _run(env, MODEL_URI="s3://bucket/run1/models/tier2/v3", FAKE_FAIL_AFTER_ONE="1")
    assert proc.returncode == 1 and "nothing was published" in proc.stderr
    assert list(Path(env["MODEL_DIR"]).parent.iterdir()) == []


def test_a_folder_without_a_model_is_refused(env):
    proc = _run(env, MODEL_URI="s3://bucket/run1/models/tier9/v1")
    assert proc.returncode == 65 and "holds no config.json" in proc.stderr
    assert list(Path(env["MODEL_DIR"]).parent.iterdir()) == []


def test_a_new_copy_replaces_an_old_one_and_clears_a_killed_attempt(env):
    model = Path(env["MODEL_DIR"])
    (model / "stale").mkdir(parents=True)
    (model / "stale" / "old.bin").write_text("old")
    killed = model.parent / ".incoming.abc123"
    killed.mkdir()
    (killed / "partial").write_text("half")
    proc = _run(env, MODEL_URI="s3://bucket/run1/models/tier2/v3")
    assert proc.returncode == 0, proc.stderr
    assert not (model / "stale").exists() and (model / "config.json").exists()
    assert [p.name for p in model.parent.iterdir()] == ["model"]
