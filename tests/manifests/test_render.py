"""Every kustomize target renders, and every rendered object is valid: the built-in kinds
against Kubernetes 1.37's schema (kubernetes-validate --strict), the KEDA, Prometheus Operator
and Argo CD kinds against their upstream CRD schemas (crds/)."""

from __future__ import annotations

import shutil

import pytest
import yaml

from tests.manifests.conftest import (
    APPLICATION,
    KUBERNETES_VERSION,
    MANIFESTS,
    TARGETS,
    docs_of,
    kustomize,
    objects,
    run,
    tool,
    validate_crds,
)

#: What every target renders (kind -> count).
EXPECTED_KINDS = {
    "Namespace": 1, "ServiceAccount": 1, "ConfigMap": 2, "Deployment": 2, "Service": 2,
    "ScaledObject": 2, "PodMonitor": 1, "PodDisruptionBudget": 2, "NetworkPolicy": 1,
    "Role": 1, "RoleBinding": 1,
}
CUSTOM_KINDS = {"ScaledObject", "PodMonitor", "Application"}


@pytest.mark.parametrize("target", TARGETS)
def test_every_target_renders_the_pools(rendered, target):
    _, docs = rendered[target]
    kinds = {}
    for d in docs:
        kinds[d["kind"]] = kinds.get(d["kind"], 0) + 1
    assert kinds == EXPECTED_KINDS
    assert {d["metadata"].get("namespace") for d in docs if d["kind"] != "Namespace"} == {"relforge"}
    assert not [d for d in docs if d["metadata"]["name"] == "relforge-cluster-settings"], \
        "the cluster settings are kustomize-only (local-config)"


@pytest.mark.parametrize("target", TARGETS)
def test_builtin_objects_are_valid_for_kubernetes(rendered, target):
    path, docs = rendered[target]
    proc = run(tool("kubernetes-validate"), "--strict", "-k", KUBERNETES_VERSION, path)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    assert "ERROR" not in out, out
    builtin = [d for d in docs if d["kind"] not in CUSTOM_KINDS]
    for d in builtin:
        assert f"passed for resource {d['kind'].lower()}/{d['metadata']['name']} " in out, out
    for kind in CUSTOM_KINDS & {d["kind"] for d in docs}:
        assert f"Couldn't find schema for kind {kind}" in out  # validated against the CRDs below


def test_kubernetes_validate_rejects_an_unknown_field(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "x"},
        "spec": {"selector": {"a": "b"}, "ports": [{"port": 80, "targetPrt": 8080}]},
    }))
    proc = run(tool("kubernetes-validate"), "--strict", "-k", KUBERNETES_VERSION, bad)
    assert proc.returncode != 0 and "targetPrt" in proc.stdout + proc.stderr


@pytest.mark.parametrize("target", [*TARGETS, "gitops"])
def test_custom_resources_match_their_crds(rendered, target):
    path = APPLICATION if target == "gitops" else rendered[target][0]
    report = validate_crds(path)
    checked = [r for r in report if r["errors"] is not None]
    assert {r["kind"] for r in checked} == ({"Application"} if target == "gitops" else {"ScaledObject", "PodMonitor"})
    assert not [r for r in report if r["kind"] in CUSTOM_KINDS and r["errors"] is None], \
        "a custom resource whose apiVersion no vendored CRD serves"
    for r in checked:
        assert r["errors"] == [], f"{r['kind']}/{r['name']}: {r['errors']}"


GOOD = [
    # Examples in the shape of the projects' own documentation.
    {"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject", "metadata": {"name": "a"},
     "spec": {"scaleTargetRef": {"name": "d"}, "minReplicaCount": 0, "initialCooldownPeriod": 60,
              "fallback": {"failureThreshold": 3, "replicas": 2},
              "advanced": {"scalingModifiers": {"formula": "a + b", "target": "2"},
                           "horizontalPodAutoscalerConfig": {"behavior": {"scaleUp": {
                               "policies": [{"type": "Pods", "value": 4, "periodSeconds": 15}]}}}},
              "triggers": [{"type": "cpu", "metricType": "Utilization", "metadata": {"value": "60"}}]}},
    {"apiVersion": "monitoring.coreos.com/v1", "kind": "PodMonitor", "metadata": {"name": "b"},
     "spec": {"selector": {"matchLabels": {"app": "x"}}, "namespaceSelector": {"any": True},
              "podMetricsEndpoints": [{"port": "web", "interval": "30s", "scheme": "https",
                                       "tlsConfig": {"insecureSkipVerify": True, "ca": {"secret": {"name": "s", "key": "ca"}}},
                                       "relabelings": [{"action": "replace", "sourceLabels": ["__meta_x"], "targetLabel": "y"}],
                                       "metricRelabelings": [{"action": "drop", "regex": "go_.*"}]}]}},
    {"apiVersion": "argoproj.io/v1alpha1", "kind": "Application", "metadata": {"name": "c"},
     "spec": {"project": "default", "destination": {"name": "in-cluster", "namespace": "n"},
              "sources": [{"repoURL": "https://charts.example", "chart": "c", "targetRevision": "1.2.3",
                           "helm": {"valuesObject": {"any": {"nested": [1, 2]}}}},
                          {"repoURL": "https://git.example/x.git", "ref": "values"}],
              "syncPolicy": {"retry": {"limit": 5, "backoff": {"duration": "5s", "factor": 2}}}}},
]
BAD = [
    ({**GOOD[0], "spec": {**GOOD[0]["spec"], "minReplicas": 1}}, "'minReplicas' was unexpected"),
    ({**GOOD[0], "spec": {**GOOD[0]["spec"], "minReplicaCount": "one"}}, "'one' is not of type 'integer'"),
    ({**GOOD[0], "spec": {"scaleTargetRef": {"name": "d"}}}, "'triggers' is a required property"),
    ({**GOOD[1], "spec": {**GOOD[1]["spec"], "podMetricsEndpoints": [{"port": "web", "interval": "30 seconds"}]}},
     "does not match"),
    ({**GOOD[1], "spec": {"podMetricsEndpoints": []}}, "'selector' is a required property"),
    ({**GOOD[2], "spec": {"destination": {"namespace": "n"}}}, "'project' is a required property"),
    ({**GOOD[2], "spec": {**GOOD[2]["spec"], "syncPolicy": {"automated": {"selfheal": True}}}},
     "'selfheal' was unexpected"),
]


def test_crd_schemas_accept_documented_objects_and_reject_broken_ones(tmp_path):
    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump_all(GOOD))
    assert [r["errors"] for r in validate_crds(good)] == [[], [], []]
    for i, (doc, message) in enumerate(BAD):
        bad = tmp_path / f"bad{i}.yaml"
        bad.write_text(yaml.safe_dump(doc))
        (report,) = validate_crds(bad)
        assert any(message in e for e in report["errors"]), (message, report["errors"])


def test_cluster_settings_reach_every_object_that_needs_them(tmp_path):
    """An overlay's cluster-settings.yaml sets the pipeline's namespace and account and the
    monitoring namespace everywhere they appear (components/cluster-settings)."""
    tree = tmp_path / "manifests"
    shutil.copytree(MANIFESTS, tree)
    overlay = tree / "overlays" / "elsewhere"
    overlay.mkdir()
    settings = yaml.safe_load((MANIFESTS / "overlays" / "prod" / "cluster-settings.yaml").read_text())
    settings["data"] = {"pipelineNamespace": "team-a", "pipelineServiceAccount": "pipeline-runner",
                        "monitoringNamespace": "observability"}
    (overlay / "cluster-settings.yaml").write_text(yaml.safe_dump(settings))
    (overlay / "kustomization.yaml").write_text(yaml.safe_dump({
        "resources": ["../../base", "cluster-settings.yaml"],
        "components": ["../../components/cluster-settings"],
    }))
    docs = docs_of(kustomize(overlay))
    binding = objects(docs, "RoleBinding")["relforge-pool-operator"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "pipeline-runner", "namespace": "team-a"}]
    policy = objects(docs, "NetworkPolicy")["tier-pools-ingress"]
    sources = [rule["from"][0]["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
               for rule in policy["spec"]["ingress"]]
    assert sources == ["team-a", "observability"]
    for so in objects(docs, "ScaledObject").values():
        assert so["spec"]["triggers"][0]["metadata"]["serverAddress"] == \
            "http://prometheus-operated.observability.svc:9090"
    text = yaml.safe_dump_all(docs)
    assert "kubeflow-user-example-com" not in text and "default-editor" not in text
