"""Shared paths and fixtures of the manifest and image checks.

The check tools live in ``.venv-checks`` (``make test`` builds it from
requirements-checks.txt). A missing tool fails the test that needs it, it never skips it.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
MANIFESTS = REPO / "manifests"
CONTAINERS = REPO / "containers"
CRDS = Path(__file__).resolve().parent / "crds"
CHECKS_BIN = REPO / ".venv-checks" / "bin"
#: The Kubernetes version whose schema every rendered object must satisfy.
KUBERNETES_VERSION = "1.37.0"
#: What `kubectl kustomize` renders: the base and every overlay.
TARGETS = ["base"] + sorted(
    str(p.parent.relative_to(MANIFESTS)) for p in (MANIFESTS / "overlays").glob("*/kustomization.yaml")
)
APPLICATION = MANIFESTS / "gitops" / "argocd-application.yaml"
POOLS = ("tier2-tgi", "tier3-vllm")


def tool(name: str) -> Path:
    """The check tool ``name`` in .venv-checks; fails (never skips) when it is not there."""
    path = CHECKS_BIN / name
    if not path.exists():
        pytest.fail(f"{path} is missing: build the check tools with `make .venv-checks/.installed` "
                    "(a prerequisite of `make test`)")
    return path


def run(*cmd: object, timeout: float = 300, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([str(c) for c in cmd], capture_output=True, text=True, timeout=timeout,
                          check=False, **kwargs)


def kustomize(target: Path) -> str:
    """``kubectl kustomize target``, as text; fails with kustomize's message."""
    proc = run(tool("kubectl"), "kustomize", target)
    assert proc.returncode == 0, f"kubectl kustomize {target} failed:\n{proc.stderr}"
    return proc.stdout


def docs_of(text: str) -> list[dict]:
    return [d for d in yaml.safe_load_all(text) if d]


def validate_crds(*files: Path) -> list[dict]:
    """crd_validate.py's report for ``files`` (run by the check tools' Python)."""
    proc = run(tool("python"), Path(__file__).parent / "crd_validate.py", CRDS, *files)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.fixture(scope="session")
def rendered(tmp_path_factory) -> dict[str, tuple[Path, list[dict]]]:
    """Every target rendered once: name -> (the rendered file, its objects)."""
    out = tmp_path_factory.mktemp("rendered")
    result = {}
    for target in TARGETS:
        text = kustomize(MANIFESTS / target)
        path = out / (target.replace("/", "_") + ".yaml")
        path.write_text(text)
        result[target] = (path, docs_of(text))
    return result


def objects(docs: list[dict], kind: str) -> dict[str, dict]:
    """The objects of ``kind``, by name."""
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def pod_containers(deployment: dict) -> list[dict]:
    spec = deployment["spec"]["template"]["spec"]
    return list(spec.get("initContainers", [])) + list(spec["containers"])
