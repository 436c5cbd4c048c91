"""The tier pools as rendered: operable by the annotate step from zero, owned by KEDA for
their size, scraped for the queue metrics KEDA scales on, locked down, and sized per overlay."""

from __future__ import annotations

import re

import pytest
import yaml

from tests.manifests.conftest import APPLICATION, POOLS, TARGETS, objects, pod_containers

#: Images that may be referenced by tag: each needs a checkov skip that says why.
TAGGED_IMAGES = {"ghcr.io/huggingface/text-generation-inference:3.3.4"}
QUEUE_METRICS = {"tier2-tgi": "tgi_queue_size", "tier3-vllm": "vllm:num_requests_waiting"}
GiB = 1024**3


def _bytes(quantity: str) -> float:
    units = {"Ki": 1024, "Mi": 1024**2, "Gi": GiB, "Ti": 1024**4, "k": 1e3, "M": 1e6, "G": 1e9}
    m = re.fullmatch(r"([0-9.]+)([A-Za-z]*)", str(quantity))
    return float(m.group(1)) * units.get(m.group(2), 1)


@pytest.fixture(params=TARGETS)
def docs(request, rendered):
    return rendered[request.param][1]


def test_keda_owns_replicas_and_annotate_owns_the_model(docs):
    deployments = objects(docs, "Deployment")
    assert set(deployments) == set(POOLS)
    for name, dep in deployments.items():
        assert "replicas" not in dep["spec"], f"{name}: replicas belongs to KEDA"
        assert dep["spec"]["strategy"] == {"type": "Recreate"}, "a pool never serves two model versions"
        (fetch,) = [c for c in dep["spec"]["template"]["spec"]["initContainers"] if c["name"] == "fetch-model"]
        env = {e["name"]: e.get("value") for e in fetch["env"]}
        assert env["MODEL_URI"] == "", f"{name}: the model URI is annotate's to set, empty in git"
        assert "s3://" not in yaml.safe_dump(dep), f"{name}: a hard-coded model location"
        server = dep["spec"]["template"]["spec"]["containers"][0]
        assert env["MODEL_DIR"] in server["args"], "the server loads the folder fetch-model publishes"
        mounts = {m["name"]: m for m in server["volumeMounts"]}
        assert mounts["models"].get("readOnly") is True


def test_scaled_objects_start_at_zero_and_scale_on_the_scraped_queue(docs):
    deployments = objects(docs, "Deployment")
    (monitor,) = objects(docs, "PodMonitor").values()
    assert "relforge.dev/pool" in monitor["spec"]["podTargetLabels"]
    (endpoint,) = monitor["spec"]["podMetricsEndpoints"]
    assert endpoint["path"] == "/metrics"
    for name, so in objects(docs, "ScaledObject").items():
        assert so["spec"]["scaleTargetRef"] == {"apiVersion": "apps/v1", "kind": "Deployment", "name": name}
        assert so["spec"]["minReplicaCount"] == 0 and so["spec"]["maxReplicaCount"] >= 1
        (trigger,) = so["spec"]["triggers"]
        assert trigger["type"] == "prometheus"
        query = trigger["metadata"]["query"]
        assert QUEUE_METRICS[name] in query and f'relforge_dev_pool="{name}"' in query
        # The PodMonitor scrapes this pool: it selects its pods and names a port they have.
        template = deployments[name]["spec"]["template"]
        assert monitor["spec"]["selector"]["matchExpressions"] == [{"key": "relforge.dev/pool", "operator": "Exists"}]
        assert template["metadata"]["labels"]["relforge.dev/pool"] == name
        ports = {p["name"] for c in template["spec"]["containers"] for p in c.get("ports", [])}
        assert endpoint["port"] in ports


def test_every_container_is_locked_down(docs):
    for name, dep in objects(docs, "Deployment").items():
        spec = dep["spec"]["template"]["spec"]
        assert spec["automountServiceAccountToken"] is False
        pod = spec["securityContext"]
        assert pod["runAsNonRoot"] is True and pod["runAsUser"] >= 10000
        assert pod["seccompProfile"] == {"type": "RuntimeDefault"}
        for c in pod_containers(dep):
            sc = c["securityContext"]
            assert sc["runAsNonRoot"] is True and isinstance(sc["runAsUser"], int) and sc["runAsUser"] >= 10000, c["name"]
            assert sc["allowPrivilegeEscalation"] is False, c["name"]
            assert sc["readOnlyRootFilesystem"] is True, c["name"]
            assert sc["capabilities"] == {"drop": ["ALL"]}, c["name"]
            assert sc["seccompProfile"] == {"type": "RuntimeDefault"}, c["name"]
            assert "envFrom" not in c and not [e for e in c.get("env", []) if "valueFrom" in e], \
                f"{name}/{c['name']}: secrets are mounted as files, not passed in the environment"


def test_writable_paths_are_size_limited_volumes(docs):
    for name, dep in objects(docs, "Deployment").items():
        volumes = {v["name"]: v for v in dep["spec"]["template"]["spec"]["volumes"]}
        for v in volumes.values():
            if "emptyDir" in v:
                assert v["emptyDir"].get("sizeLimit"), f"{name}: emptyDir {v['name']} has no sizeLimit"
        for c in pod_containers(dep):
            writable = [m["mountPath"] for m in c["volumeMounts"] if not m.get("readOnly")]
            for m in c["volumeMounts"]:
                if not m.get("readOnly"):
                    assert "emptyDir" in volumes[m["name"]], f"{name}/{c['name']}: {m['mountPath']}"
            for e in c.get("env", []):
                if e["name"] in {"HOME", "HF_HOME", "XDG_CACHE_HOME", "VLLM_CACHE_ROOT", "TRITON_CACHE_DIR", "MODEL_DIR"}:
                    assert any(e["value"] == w or e["value"].startswith(w + "/") for w in writable), \
                        f"{name}/{c['name']}: {e['name']}={e['value']} is not on a writable volume"


def test_every_container_has_requests_and_limits(docs):
    for name, dep in objects(docs, "Deployment").items():
        for c in pod_containers(dep):
            res = c["resources"]
            for part in ("requests", "limits"):
                assert {"cpu", "memory"} <= set(res[part]), f"{name}/{c['name']}: {part}"
            assert _bytes(res["requests"]["memory"]) <= _bytes(res["limits"]["memory"])
        server = dep["spec"]["template"]["spec"]["containers"][0]
        assert server["resources"]["limits"]["nvidia.com/gpu"] == 1


def test_servers_have_startup_readiness_and_liveness_probes(docs):
    for name, dep in objects(docs, "Deployment").items():
        for c in dep["spec"]["template"]["spec"]["containers"]:
            ports = {p["name"] for p in c["ports"]}
            for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
                assert c[probe]["httpGet"]["path"] == "/health" and c[probe]["httpGet"]["port"] in ports, (name, probe)
            startup = c["startupProbe"]
            assert startup["periodSeconds"] * startup["failureThreshold"] >= 600, "model loading takes minutes"


def test_images_are_pinned_by_digest(docs):
    for name, dep in objects(docs, "Deployment").items():
        for c in pod_containers(dep):
            if c["image"] in TAGGED_IMAGES:
                reasons = [v for k, v in dep["metadata"].get("annotations", {}).items()
                           if k.startswith("checkov.io/skip") and v.startswith("CKV_K8S_43=")]
                assert reasons and len(reasons[0]) > len("CKV_K8S_43=") + 20, f"{name}: tagged image without a reason"
                assert c["imagePullPolicy"] == "Always"
            else:
                assert re.search(r"@sha256:[0-9a-f]{64}$", c["image"]), f"{name}/{c['name']}: {c['image']}"
                assert c["imagePullPolicy"] == "IfNotPresent"


def test_disruption_budgets_and_network_policy_cover_each_pool(docs):
    deployments = objects(docs, "Deployment")
    budgets = objects(docs, "PodDisruptionBudget")
    assert set(budgets) == set(POOLS)
    for name, pdb in budgets.items():
        labels = deployments[name]["spec"]["template"]["metadata"]["labels"]
        assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
        assert pdb["spec"]["maxUnavailable"] == 1
    (policy,) = objects(docs, "NetworkPolicy").values()
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    assert policy["spec"]["podSelector"] == {"matchExpressions": [{"key": "relforge.dev/pool", "operator": "Exists"}]}
    for name in POOLS:
        assert "relforge.dev/pool" in deployments[name]["spec"]["template"]["metadata"]["labels"]
    rules = policy["spec"]["ingress"]
    assert len(rules) == 2
    for rule in rules:
        (source,) = rule["from"]
        assert set(source) == {"namespaceSelector"}, "whole namespaces: the pipeline's and monitoring's"
        assert rule["ports"] == [{"port": "http", "protocol": "TCP"}]


def test_the_pipeline_may_operate_the_pools_and_nothing_more(docs):
    (role,) = objects(docs, "Role").values()
    allowed = {("apps", "deployments"): {"get", "patch"}, ("keda.sh", "scaledobjects"): {"get", "patch"},
               ("", "pods"): {"list"}}
    granted = {}
    for rule in role["rules"]:
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                granted[(group, resource)] = set(rule["verbs"])
                if resource in ("deployments", "scaledobjects"):
                    assert set(rule["resourceNames"]) == set(POOLS)
    assert granted == allowed
    (binding,) = objects(docs, "RoleBinding").values()
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                  "name": role["metadata"]["name"]}
    (subject,) = binding["subjects"]
    assert subject["kind"] == "ServiceAccount" and subject["namespace"] != "relforge"


def test_dev_fits_one_small_gpu_node(rendered):
    docs = rendered["overlays/dev"][1]
    for so in objects(docs, "ScaledObject").values():
        assert so["spec"]["maxReplicaCount"] == 1
    for name, dep in objects(docs, "Deployment").items():
        containers = pod_containers(dep)
        limit = sum(_bytes(c["resources"]["limits"]["memory"]) for c in containers)
        memory_volumes = sum(_bytes(v["emptyDir"]["sizeLimit"]) for v in dep["spec"]["template"]["spec"]["volumes"]
                             if v.get("emptyDir", {}).get("medium") == "Memory")
        assert limit + memory_volumes <= 12 * GiB, f"{name}: does not fit a 16 GiB node beside the system"
        assert sum(c["resources"]["limits"].get("nvidia.com/gpu", 0) for c in containers) == 1


def test_prod_pools_are_larger(rendered):
    prod = objects(rendered["overlays/prod"][1], "ScaledObject")
    assert prod["tier2-tgi"]["spec"]["maxReplicaCount"] == 8 and prod["tier3-vllm"]["spec"]["maxReplicaCount"] == 4


def test_argocd_leaves_annotate_and_keda_fields_alone(rendered):
    app = yaml.safe_load(APPLICATION.read_text())
    assert "RespectIgnoreDifferences=true" in app["spec"]["syncPolicy"]["syncOptions"]
    ignored = {(d.get("group", ""), d["kind"]): d for d in app["spec"]["ignoreDifferences"]}
    assert ignored[("keda.sh", "ScaledObject")]["jsonPointers"] == ["/spec/minReplicaCount"]
    deployment = ignored[("apps", "Deployment")]
    assert "/spec/replicas" in deployment["jsonPointers"]
    (expression,) = deployment["jqPathExpressions"]
    assert 'select(.name == "fetch-model")' in expression and 'select(.name == "MODEL_URI")' in expression
    # ... and those name what the manifests really have.
    for dep in objects(rendered[app["spec"]["source"]["path"].removeprefix("manifests/")][1], "Deployment").values():
        (fetch,) = [c for c in dep["spec"]["template"]["spec"]["initContainers"] if c["name"] == "fetch-model"]
        assert "MODEL_URI" in {e["name"] for e in fetch["env"]}
