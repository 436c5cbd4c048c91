"""The step images as written (no Docker engine here: `make images` builds them where one
exists): multi-stage, pinned bases, torch first and pinned, relforge from its wheel with its
data, models converted at build time into a cache the unprivileged runtime user owns, no
HF_HUB_OFFLINE; and a build context cut down to what they copy."""

from __future__ import annotations

import fnmatch
import os
import re

import pytest

from tests.manifests.conftest import CONTAINERS, REPO

TORCH_INDEX = {"Dockerfile.cpu": "https://download.pytorch.org/whl/cpu",
               "Dockerfile.gpu": "https://download.pytorch.org/whl/cu128"}


def _instructions(path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    text = re.sub(r"\\\n", " ", "\n".join(line for line in path.read_text().splitlines()
                                         if not line.lstrip().startswith("#")))
    return [(m.group(1).upper(), m.group(2).strip())
            for m in re.finditer(r"^\s*([A-Za-z]+)\s+(.*)$", text, re.MULTILINE)]


@pytest.mark.parametrize("name", sorted(TORCH_INDEX))
def test_step_image(name):
    ins = _instructions(CONTAINERS / name)
    froms = [args for op, args in ins if op == "FROM"]
    assert [f.split(" AS ")[-1] for f in froms] == ["builder", "runtime"]
    for f in froms:
        assert re.match(r"python:3\.11-slim-bookworm@sha256:[0-9a-f]{64} AS ", f), f
    runtime = ins[[i for i, (op, _) in enumerate(ins) if op == "FROM"][1]:]
    builder = ins[:len(ins) - len(runtime)]
    runs = [args for op, args in builder if op == "RUN"]
    # torch first, pinned, from the right index; then relforge from its wheel; then the models.
    assert f"--index-url {TORCH_INDEX[name]} torch==2.13.0" in runs[0]
    assert "pip wheel --no-deps" in runs[1] and "relforge-${RELFORGE_VERSION}-py3-none-any.whl" in runs[1]
    assert runs[2] == "relforge models pull"
    copies = [args for op, args in builder if op == "COPY"]
    assert copies == ["pyproject.toml README.md ./", "src ./src"], "only what the wheel is built from"
    # Runtime: the environment, the cache owned by the numeric runtime user, who runs the image.
    assert ("COPY", "--from=builder /opt/relforge/venv /opt/relforge/venv") in runtime
    assert ("COPY", "--from=builder --chown=10001:10001 /opt/relforge/cache /opt/relforge/cache") in runtime
    assert ("USER", "10001:10001") in runtime
    assert [op for op, _ in runtime].count("HEALTHCHECK") == 1
    env = " ".join(args for op, args in ins if op == "ENV")
    assert "RELFORGE_CACHE=/opt/relforge/cache" in env
    assert "HF_HUB_OFFLINE" not in env and "TRANSFORMERS_OFFLINE" not in env, \
        "the tgi backend (huggingface_hub) refuses every request while these are set"
    assert not [args for op, args in ins if op == "RUN" and "apt-get" in args], "no system packages needed"


def _docker_ignored(rel: str, patterns: list[str]) -> bool:
    """Docker's .dockerignore rule: the last pattern that matches the path or a parent decides."""
    parts = rel.split("/")
    candidates = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        pat = pattern.lstrip("!").strip("/")
        regex = fnmatch.translate(pat).replace(".*", "[^/]*").replace("[^/]*[^/]*", ".*")
        if pat.startswith("**/"):
            regex = "(.*/)?" + fnmatch.translate(pat[3:]).replace(".*", "[^/]*")
        if any(re.fullmatch(regex, c) for c in candidates):
            ignored = not negate
    return ignored


def test_dockerignore_sends_only_what_the_images_copy():
    patterns = [line.strip() for line in (REPO / ".dockerignore").read_text().splitlines()
                if line.strip() and not line.startswith("#")]
    for rel in [".venv/bin/python", ".venv-vllm/lib/x.so", ".venv-checks/bin/checkov", "runs/demo/x.parquet",
                "build/relforge.yaml", ".git/HEAD", ".pytest_cache/v", ".hypothesis/examples/x", "tests/conftest.py",
                "manifests/base/kustomization.yaml", "benchmarks/bench_mine.py", "docs/DESIGN.md",
                "src/relforge/__pycache__/cli.cpython-311.pyc", "src/relforge.egg-info/PKG-INFO"]:
        assert _docker_ignored(rel, patterns), rel
    for rel in ["pyproject.toml", "README.md", "src/relforge/__init__.py",
                "src/relforge/data/esci-us-150/esci_us_ecommerce_shrunk.ndjson.zip",
                "src/relforge/data/esci-us-150/SHA256SUMS", "src/relforge/tiers/prompts/esci.yaml"]:
        assert not _docker_ignored(rel, patterns), rel
    # What this checkout would send: walk it, pruning ignored folders.
    size = 0
    for root, dirs, files in os.walk(REPO):
        prefix = "" if root == str(REPO) else os.path.relpath(root, REPO) + "/"
        dirs[:] = [d for d in dirs if not _docker_ignored(prefix + d, patterns)
                   or any(p.startswith("!" + prefix + d) for p in patterns)]
        size += sum(os.path.getsize(os.path.join(root, f)) for f in files
                    if not _docker_ignored(prefix + f, patterns))
    assert size < 20 * 1024**2, f"the build context is {size / 1024**2:.0f} MiB"
