"""The manifest sources as written: valid YAML, kustomizations that name files that exist,
Services and autoscalers that point at Deployments that exist, a GitOps app on an overlay."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.manifests.conftest import APPLICATION, MANIFESTS


def _docs(path: Path) -> list[dict]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


@pytest.mark.parametrize("path", sorted(MANIFESTS.rglob("*.yaml")), ids=lambda p: str(p.relative_to(MANIFESTS)))
def test_every_manifest_is_yaml_with_kind(path):
    for doc in _docs(path):
        assert doc.get("apiVersion") and doc.get("kind"), path


@pytest.mark.parametrize("kustomization", sorted(MANIFESTS.rglob("kustomization.yaml")),
                         ids=lambda p: str(p.parent.relative_to(MANIFESTS)))
def test_kustomization_resources_exist(kustomization):
    spec = yaml.safe_load(kustomization.read_text())
    named = list(spec.get("resources", [])) + list(spec.get("components", []))
    named += [f for gen in spec.get("configMapGenerator", []) for f in gen.get("files", [])]
    for res in named:
        assert (kustomization.parent / res.split("=")[-1]).exists(), f"{kustomization}: missing {res}"


def test_services_and_scalers_target_deployments():
    base = MANIFESTS / "base"
    docs = [d for p in base.rglob("*.yaml") for d in _docs(p)]
    deployments = {d["metadata"]["name"]: d for d in docs if d["kind"] == "Deployment"}
    assert deployments, "no tier pool deployments"
    for d in deployments.values():
        assert d["spec"]["selector"]["matchLabels"].items() <= d["spec"]["template"]["metadata"]["labels"].items()
    for svc in (d for d in docs if d["kind"] == "Service"):
        selector = svc["spec"]["selector"]
        assert any(
            selector.items() <= dep["spec"]["template"]["metadata"]["labels"].items()
            for dep in deployments.values()
        ), f"service {svc['metadata']['name']} selects no pod"
    for so in (d for d in docs if d["kind"] == "ScaledObject"):
        assert so["spec"]["scaleTargetRef"]["name"] in deployments


def test_gitops_application_points_at_an_overlay():
    app = _docs(APPLICATION)[0]
    assert (MANIFESTS.parent / app["spec"]["source"]["path"] / "kustomization.yaml").exists()
