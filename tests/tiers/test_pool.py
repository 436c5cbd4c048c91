"""TierPool operates a tier pool through the Kubernetes API: tested against a stand-in of the API
server (tests/tiers/_k8s_standin.py) that records every request, including the timeout path,
errors inside the block, refused calls, SIGTERM, and that the Role in the manifests grants
exactly the calls the code makes."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
import yaml

from relforge.config import ClusterConfig, load_config
from relforge.errors import PoolError
from relforge.tiers import TierPool, pool_for, rollout_waiting
from tests.tiers._k8s_standin import K8sStandIn, PoolState

REPO = Path(__file__).resolve().parents[2]
MODEL = "s3://bucket/run/models/tier2/versions/3f2a9c0d1e2b4a5c"
STRATEGIC = "application/strategic-merge-patch+json"
MERGE = "application/merge-patch+json"


@pytest.fixture
def standin():
    server = K8sStandIn(PoolState())
    yield server
    server.stop()


def _pool(standin: K8sStandIn, **kwargs) -> TierPool:
    kwargs = {"timeout_s": 5.0, "poll_s": 0.01, **kwargs}
    return TierPool("relforge", "tier2-tgi", api_client=standin.api_client(), **kwargs)


def test_serving_names_the_model_raises_the_floor_waits_for_readiness_and_lowers_it(standin):
    standin.state.unhealthy_first = 2
    with _pool(standin, health_url=f"{standin.url}/health").serving(MODEL) as pool:
        assert pool.deployment == "tier2-tgi"
        assert standin.state.model_uri == MODEL
        assert standin.state.min_replicas == 1 and standin.state.ready == 1
        assert standin.state.observed == standin.state.generation == 2
        assert standin.state.health_calls == 3  # two 503s, then 200
    assert standin.state.floors == [1, 0] and standin.state.min_replicas == 0

    first, second, *middle, last = standin.requests
    assert (first.method, first.path) == ("PATCH", "/apis/apps/v1/namespaces/relforge/deployments/tier2-tgi")
    assert first.content_type == STRATEGIC
    assert first.body == {"spec": {"template": {"spec": {"initContainers": [
        {"name": "fetch-model", "env": [{"name": "MODEL_URI", "value": MODEL}]}]}}}}
    assert (second.method, second.path) == ("PATCH", "/apis/keda.sh/v1alpha1/namespaces/relforge/scaledobjects/tier2-tgi")
    assert second.content_type == MERGE and second.body == {"spec": {"minReplicaCount": 1}}
    assert {(r.method, r.path) for r in middle} == {
        ("GET", "/apis/apps/v1/namespaces/relforge/deployments/tier2-tgi"), ("GET", "/health")}
    assert [r.path for r in middle].index("/health") > 0  # readiness first, then the server's health
    assert (last.method, last.path, last.content_type, last.body) == (
        "PATCH", second.path, MERGE, {"spec": {"minReplicaCount": 0}})


def test_a_pool_that_never_becomes_ready_times_out_says_why_and_is_lowered(standin):
    standin.state.never_ready = True
    with pytest.raises(PoolError) as err, _pool(standin, timeout_s=0.3).serving(MODEL):
        pytest.fail("the block must not run without a ready pod")
    message = str(err.value)
    assert "no ready pod after 0.3 s" in message
    assert "not seen generation 2" in message  # the toy controller never catches up
    assert "0/3 nodes are available: 3 Insufficient nvidia.com/gpu" in message  # from the pool's pods
    assert "scaledobject tier2-tgi: minReplicaCount 1" in message
    assert standin.state.floors == [1, 0] and standin.state.min_replicas == 0
    assert ("GET", "/api/v1/namespaces/relforge/pods") in standin.calls()
    pods = next(r for r in standin.requests if r.path.endswith("/pods"))
    assert pods.query == {"labelSelector": ["app.kubernetes.io/name=tier2-tgi"]}


def test_an_error_while_scoring_still_lowers_the_floor(standin):
    with pytest.raises(RuntimeError, match="scoring failed"), _pool(standin).serving(MODEL):
        raise RuntimeError("scoring failed")
    assert standin.state.floors == [1, 0]


def test_a_refused_call_is_a_clear_error_and_the_floor_is_still_asked_down(standin):
    standin.state.forbid = {("PATCH", "scaledobjects")}
    with pytest.raises(PoolError) as err, _pool(standin).serving(MODEL):
        pytest.fail("unreachable")
    message = str(err.value)
    assert "minReplicaCount=1" in message and "403" in message and "relforge-pool-operator" in message
    patches = [r.body for r in standin.requests if r.method == "PATCH" and "scaledobjects" in r.path]
    assert patches == [{"spec": {"minReplicaCount": 1}}, {"spec": {"minReplicaCount": 0}}]


def test_failing_to_lower_the_floor_after_a_good_block_is_an_error(standin):
    with pytest.raises(PoolError, match="minReplicaCount=0.*403"), _pool(standin).serving(MODEL):
        standin.state.forbid = {("PATCH", "scaledobjects")}


def test_only_s3_folders_are_sent_to_a_pool(standin):
    for bad in ("/home/me/models/tier2", "models/tier2", "s3://"):
        with pytest.raises(PoolError, match="s3:// model folders only"), _pool(standin).serving(bad):
            pass
    assert standin.requests == []


def test_sigterm_while_serving_lowers_the_floor(standin):
    with pytest.raises(SystemExit) as exit_, _pool(standin).serving(MODEL):
        os.kill(os.getpid(), signal.SIGTERM)
        for _ in range(1000):  # the handler runs between bytecodes
            pass
    assert exit_.value.code == 128 + signal.SIGTERM
    assert standin.state.floors == [1, 0]
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


def test_an_unchanged_model_on_a_warm_pool_is_ready_at_once(standin):
    standin.state.model_uri, standin.state.replicas, standin.state.ready = MODEL, 1, 1
    standin.state.min_replicas, standin.state.ready_after = 0, 1
    with _pool(standin).serving(MODEL):
        assert standin.state.generation == 1  # the patch changed nothing: no new pod
    reads = [r for r in standin.requests if r.method == "GET"]
    assert len(reads) == 1


def test_rollout_waiting_reads_the_deployment_status():
    def doc(gen, observed, replicas, updated, ready):
        return {"metadata": {"generation": gen}, "status": {"observedGeneration": observed, "replicas": replicas,
                                                            "updatedReplicas": updated, "readyReplicas": ready}}

    assert "generation 3" in rollout_waiting(doc(3, 2, 1, 1, 1))
    assert "previous template" in rollout_waiting(doc(3, 3, 2, 1, 1))
    assert "no ready pod" in rollout_waiting(doc(3, 3, 1, 1, 0))
    assert rollout_waiting(doc(3, 3, 1, 1, 1)) is None
    assert "no ready pod" in rollout_waiting({"metadata": {}, "status": {}})  # a pool at zero


def test_pool_for_reads_the_tier_spec_and_the_cluster_section():
    config = load_config(overrides=[
        "tiers.specs.tier2.backend=tgi", "tiers.specs.tier2.url=http://tier2-tgi.relforge.svc",
        "tiers.specs.tier2.pool={deployment: tier2-tgi, timeout_s: 60}",
        "tiers.specs.tier3.backend=openai", "tiers.specs.tier3.url=http://tier3-vllm.pools.svc/v1/",
        "tiers.specs.tier3.pool={deployment: tier3-vllm, namespace: pools, scaledobject: tier3-so, health: false}",
        "cluster.pools_namespace=llm",
    ])
    assert pool_for(config.tiers.spec("tier1"), config.cluster) is None
    tier2 = pool_for(config.tiers.spec("tier2"), config.cluster)
    assert (tier2.namespace, tier2.deployment, tier2.scaledobject, tier2.timeout_s) == ("llm", "tier2-tgi", "tier2-tgi", 60)
    assert tier2.health_url == "http://tier2-tgi.relforge.svc/health"
    tier3 = pool_for(config.tiers.spec("tier3"), ClusterConfig())
    assert (tier3.namespace, tier3.scaledobject, tier3.health_url) == ("pools", "tier3-so", None)


def test_a_pool_on_a_local_backend_is_a_configuration_error():
    from relforge.errors import ConfigError

    with pytest.raises(ConfigError, match="a pool serves remote backends"):
        load_config(overrides=["tiers.specs.tier1.pool={deployment: x}"])


def _granted() -> set[tuple[str, str, str]]:
    """(apiGroup, resource, verb) the Role grants, with resource names where it restricts them."""
    (role,) = [d for d in yaml.safe_load_all((REPO / "manifests/base/tier-pools/rbac.yaml").read_text())
               if d and d["kind"] == "Role"]
    granted = set()
    for rule in role["rules"]:
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                for verb in rule["verbs"]:
                    granted.add((group, resource, verb))
                assert set(rule.get("resourceNames") or ["tier2-tgi"]) >= {"tier2-tgi"}
    return granted


def _as_rbac(method: str, path: str) -> tuple[str, str, str]:
    parts = path.strip("/").split("/")
    group = "" if parts[0] == "api" else parts[1]
    rest = parts[parts.index("namespaces") + 2:]
    verb = {"PATCH": "patch", "GET": "get" if len(rest) == 2 else "list"}[method]
    return group, rest[0], verb


def test_the_role_grants_exactly_what_the_pool_operator_calls(standin):
    with _pool(standin).serving(MODEL):
        pass
    standin.state.never_ready = True
    with pytest.raises(PoolError), _pool(standin, timeout_s=0.1).serving(MODEL + "x"):
        pass
    called = {_as_rbac(r.method, r.path) for r in standin.requests if r.path != "/health"}
    assert called == _granted()


class _Scorer:
    """A scorer stand-in that records what happened to it."""

    backend, name = "tgi", "tier2"

    def __init__(self, events, state):
        from relforge.grades import ESCI

        self.scale, self.events, self.state = ESCI, events, state
        events.append(("built", state.min_replicas, state.ready))

    def score(self, pairs):
        self.events.append(("score", len(pairs)))
        return "scores"

    prepare_seconds = 0.5

    def prepare_items(self, texts, encode=None):
        self.events.append(("prepare", len(texts), encode))

    def close(self):
        self.events.append(("closed", self.state.min_replicas))


def test_a_pooled_scorer_is_built_on_a_ready_pool_and_closing_it_lowers_the_pool(standin):
    from relforge.tiers import PooledScorer

    events = []
    scorer = PooledScorer(_pool(standin), MODEL, lambda: _Scorer(events, standin.state))
    assert scorer.backend == "tgi" and scorer.score(["a", "b"]) == "scores"
    scorer.prepare_items(["x"], encode=["x"])
    assert scorer.prepare_seconds == 0.5
    scorer.close()
    scorer.close()  # once
    assert events == [("built", 1, 1), ("score", 2), ("prepare", 1, ["x"]), ("closed", 1)]
    assert standin.state.floors == [1, 0]


def test_a_scorer_that_cannot_be_built_lowers_the_pool_again(standin):
    from relforge.tiers import PooledScorer

    def broken():
        raise RuntimeError("no tokenizer")

    with pytest.raises(RuntimeError, match="no tokenizer"):
        PooledScorer(_pool(standin), MODEL, broken)
    assert standin.state.floors == [1, 0]
