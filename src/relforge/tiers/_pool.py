"""A remote tier's server pool on Kubernetes, operated by the step that scores on it.

The LLM tier pools (``manifests/base/tier-pools``) sit at zero replicas between runs, and
cannot come back from zero by themselves: KEDA scales them on their request queue, a metric
only their own pods export. So the step that scores on a pool operates it
(``manifests/README.md``, "The tier pools are operated by the pipeline"):

1. set ``MODEL_URI`` of the pool Deployment's init container to the tier's published, immutable
   model version (a strategic merge patch: containers and env entries merge by name);
2. raise the KEDA ScaledObject's ``spec.minReplicaCount`` to 1 (a JSON merge patch);
3. wait until the Deployment's controller has seen the new template
   (``status.observedGeneration >= metadata.generation``), every pod is of that template
   (``status.replicas == status.updatedReplicas``) and one is ready
   (``status.readyReplicas >= 1``); then, optionally, until the server's ``/health`` answers;
4. (the caller scores);
5. lower ``minReplicaCount`` back to 0, also when anything above failed, or when the process is
   asked to stop (SIGTERM); KEDA then scales the pool to zero after its cooldown.

The Kubernetes calls are exactly those the Role ``relforge-pool-operator``
(``manifests/base/tier-pools/rbac.yaml``) grants: get and patch the Deployment and the
ScaledObject by name, and list the pool's pods (only to say why a pool did not become ready).

:class:`PooledScorer` ties a pool's raised state to a scorer's life: built once the pool is
ready, closing it lowers the pool.

Example:
    >>> pool = pool_for(config.tiers.spec("tier2"), config.cluster)          # doctest: +SKIP
    >>> with pool.serving("s3://bucket/run/models/tier2/versions/3f2a..."):  # doctest: +SKIP
    ...     scores = scorer.score(pairs)
"""

from __future__ import annotations

import json
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from relforge.config import ClusterConfig, TierSpec
from relforge.errors import PoolError
from relforge.logs import get_logger, log_event
from relforge.tiers._scorer import Pair, Scores, TierScorer

log = get_logger("tiers.pool")

#: The KEDA ScaledObject custom resource.
KEDA_GROUP, KEDA_VERSION, KEDA_PLURAL = "keda.sh", "v1alpha1", "scaledobjects"
#: How often a long wait for readiness is logged.
_PROGRESS_EVERY_S = 60.0


def default_api_client():
    """A Kubernetes ``ApiClient``: the pod's service account in a cluster, else the kubeconfig."""
    from kubernetes import client
    from kubernetes import config as kube_config

    configuration = client.Configuration()
    try:
        kube_config.load_incluster_config(client_configuration=configuration)
    except kube_config.ConfigException:
        try:
            kube_config.load_kube_config(client_configuration=configuration)
        except (kube_config.ConfigException, OSError) as exc:
            raise PoolError(f"no Kubernetes API to operate the tier pools: not in a cluster, and no kubeconfig "
                            f"({exc})") from None
    return client.ApiClient(configuration)


class TierPool:
    """One pool: its Deployment and KEDA ScaledObject, and how to wait for it.

    Args:
        namespace: the pools' namespace (``relforge``).
        deployment: the pool's Deployment (``tier2-tgi``).
        scaledobject: its ScaledObject (default: the Deployment's name).
        init_container: the init container that fetches the model (``fetch-model``).
        env: the variable it reads the model folder from (``MODEL_URI``).
        timeout_s: how long to wait for a ready pod (and a healthy server).
        poll_s: seconds between checks.
        health_url: when given, ``GET`` it until it answers 200 once a pod is ready.
        api_client: a ``kubernetes.client.ApiClient`` (default: :func:`default_api_client`).
    """

    def __init__(
        self,
        namespace: str,
        deployment: str,
        scaledobject: str | None = None,
        *,
        init_container: str = "fetch-model",
        env: str = "MODEL_URI",
        timeout_s: float = 1800.0,
        poll_s: float = 5.0,
        health_url: str | None = None,
        api_client: Any = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.namespace, self.deployment = namespace, deployment
        self.scaledobject = scaledobject or deployment
        self.init_container, self.env = init_container, env
        self.timeout_s, self.poll_s, self.health_url = timeout_s, poll_s, health_url
        self._api_client, self._clock, self._sleep = api_client, clock, sleep

    def __repr__(self) -> str:
        return f"TierPool({self.namespace}/{self.deployment})"

    # -- the Kubernetes API ------------------------------------------------------------------
    @property
    def api_client(self):
        if self._api_client is None:
            self._api_client = default_api_client()
        return self._api_client

    def _call(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """One API call; its JSON answer as a dict; any failure as a :class:`PoolError` saying what was asked."""
        from kubernetes.client.exceptions import ApiException
        from urllib3.exceptions import HTTPError

        try:
            response = fn(*args, _preload_content=False, _request_timeout=30, **kwargs)
        except ApiException as exc:
            detail = _api_message(exc.body) or exc.reason
            hint = ""
            if exc.status in (401, 403):
                hint = ("; the pipeline's service account needs the Role relforge-pool-operator in namespace "
                        f"{self.namespace} (manifests/base/tier-pools/rbac.yaml, bound per overlay)")
            elif exc.status == 404:
                hint = f"; are the tier pools deployed in namespace {self.namespace} (manifests/, Argo CD)?"
            raise PoolError(f"{self}: {what}: Kubernetes API answered {exc.status}: {detail}{hint}") from None
        except HTTPError as exc:
            raise PoolError(f"{self}: {what}: the Kubernetes API cannot be reached: {exc}") from None
        data = response.data
        return json.loads(data) if data else {}

    def _apps(self):
        from kubernetes import client

        return client.AppsV1Api(self.api_client)

    def _custom(self):
        from kubernetes import client

        return client.CustomObjectsApi(self.api_client)

    def set_model(self, model_uri: str) -> None:
        """Name the folder the pool serves: ``MODEL_URI`` of its init container (strategic merge patch).

        Raises:
            PoolError: ``model_uri`` is not an ``s3://`` folder (the init container reads only
                those), or the API refused the patch.
        """
        if not model_uri.startswith("s3://") or len(model_uri.rstrip("/")) <= len("s3://"):
            raise PoolError(f"{self}: the pool loads s3:// model folders only, got {model_uri!r}")
        body = {"spec": {"template": {"spec": {"initContainers": [
            {"name": self.init_container, "env": [{"name": self.env, "value": model_uri}]}]}}}}
        self._call(f"set {self.env} on deployment {self.deployment}", self._apps().patch_namespaced_deployment,
                   self.deployment, self.namespace, body)
        log_event(log, "pool model set", pool=self.deployment, model=model_uri)

    def set_floor(self, replicas: int) -> None:
        """Set the ScaledObject's ``spec.minReplicaCount`` (JSON merge patch)."""
        self._call(f"set minReplicaCount={replicas} on scaledobject {self.scaledobject}",
                   self._custom().patch_namespaced_custom_object, KEDA_GROUP, KEDA_VERSION, self.namespace,
                   KEDA_PLURAL, self.scaledobject, {"spec": {"minReplicaCount": replicas}})
        log_event(log, "pool floor set", pool=self.deployment, min_replicas=replicas)

    def deployment_doc(self) -> dict[str, Any]:
        """The Deployment as the API returns it."""
        return self._call(f"get deployment {self.deployment}", self._apps().read_namespaced_deployment,
                          self.deployment, self.namespace)

    # -- waiting -----------------------------------------------------------------------------
    def wait_ready(self) -> None:
        """Wait until a pod of the current template is ready (and the server healthy).

        Raises:
            PoolError: not ready within ``timeout_s``; the message says what the Deployment, the
                ScaledObject and the pods showed.
        """
        start = self._clock()
        deadline = start + self.timeout_s
        last_log = start
        while True:
            doc = self.deployment_doc()
            waiting = rollout_waiting(doc)
            if waiting is None:
                break
            now = self._clock()
            if now >= deadline:
                raise PoolError(f"{self}: no ready pod after {self.timeout_s:g} s ({waiting}). "
                                f"{self.diagnose(doc)}")
            if now - last_log >= _PROGRESS_EVERY_S:
                log_event(log, "waiting for the pool", pool=self.deployment, state=waiting,
                          seconds=round(now - start))
                last_log = now
            self._sleep(min(self.poll_s, max(deadline - now, 0.0)))
        if self.health_url:
            self._wait_healthy(deadline)
        log_event(log, "pool ready", pool=self.deployment, seconds=round(self._clock() - start, 1))

    def _wait_healthy(self, deadline: float) -> None:
        import httpx

        last = ""
        while True:
            try:
                answer = httpx.get(self.health_url, timeout=10.0)
                if answer.status_code == 200:
                    return
                last = f"HTTP {answer.status_code}"
            except httpx.HTTPError as exc:
                last = f"{type(exc).__name__}: {exc}"
            now = self._clock()
            if now >= deadline:
                raise PoolError(f"{self}: a pod is ready but {self.health_url} did not answer 200 within "
                                f"{self.timeout_s:g} s (last: {last}); the pipeline's namespace must be admitted "
                                "by the pools' NetworkPolicy (manifests/base/tier-pools/networkpolicy.yaml)")
            self._sleep(min(self.poll_s, max(deadline - now, 0.0)))

    def diagnose(self, doc: dict[str, Any] | None = None) -> str:
        """What the Deployment, the ScaledObject and the pool's pods show, in one paragraph."""
        parts = []
        doc = doc if doc is not None else _or_error(self.deployment_doc)
        if isinstance(doc, str):
            parts.append(f"deployment: {doc}")
        else:
            status = doc.get("status") or {}
            conditions = "; ".join(_condition(c) for c in status.get("conditions") or [])
            parts.append(f"deployment {self.deployment}: replicas {status.get('replicas', 0)}, ready "
                         f"{status.get('readyReplicas', 0)}" + (f" ({conditions})" if conditions else ""))
        scaled = _or_error(lambda: self._call(
            f"get scaledobject {self.scaledobject}", self._custom().get_namespaced_custom_object,
            KEDA_GROUP, KEDA_VERSION, self.namespace, KEDA_PLURAL, self.scaledobject))
        if isinstance(scaled, str):
            parts.append(f"scaledobject: {scaled}")
        else:
            conditions = "; ".join(_condition(c) for c in (scaled.get("status") or {}).get("conditions") or [])
            floor = (scaled.get("spec") or {}).get("minReplicaCount")
            parts.append(f"scaledobject {self.scaledobject}: minReplicaCount {floor}"
                         + (f" ({conditions})" if conditions else ""))
        labels = ((doc.get("spec") or {}).get("selector") or {}).get("matchLabels") if isinstance(doc, dict) else None
        if labels:
            selector = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
            pods = _or_error(lambda: self._call(
                f"list pods {selector}", _core(self.api_client).list_namespaced_pod, self.namespace,
                label_selector=selector))
            if isinstance(pods, str):
                parts.append(f"pods: {pods}")
            else:
                items = pods.get("items") or []
                parts.append("pods: " + ("; ".join(_pod_state(p) for p in items) if items else "none"))
        return ". ".join(parts)

    # -- the whole cycle ---------------------------------------------------------------------
    @contextmanager
    def serving(self, model_uri: str) -> Iterator[TierPool]:
        """Serve ``model_uri`` on the pool for the block (see the module docstring).

        The floor is lowered back to 0 on the way out, whatever happened; a failure to lower it
        is raised when the block succeeded, and logged when the block failed (its error wins).

        Raises:
            PoolError: a call refused, or no ready pod in time.
        """
        self.set_model(model_uri)
        failed = True
        try:
            with _sigterm_as_exit():
                self.set_floor(1)
                self.wait_ready()
                yield self
            failed = False
        finally:
            try:
                self.set_floor(0)
            except PoolError as exc:
                if not failed:
                    raise
                log_event(log, f"could not lower the pool's floor after an error: {exc}", level=40,
                          pool=self.deployment)


class PooledScorer(TierScorer):
    """A remote tier's scorer for as long as its pool serves the model: the pool is raised and
    ready before the scorer is built, and closing the scorer lowers it (a step that builds
    scorers lazily, only when pairs need scoring, raises a pool only then).

    Args:
        pool: the tier's pool.
        model_uri: the model version the pool must serve.
        make: builds the scorer once the pool is ready (e.g. ``lambda: load_scorer(spec, ...)``).

    Raises:
        PoolError: the pool could not be raised (it is lowered again).
    """

    def __init__(self, pool: TierPool, model_uri: str, make: Callable[[], TierScorer]):
        self.pool = pool
        self._serving = pool.serving(model_uri)
        self._serving.__enter__()
        try:
            self.inner = make()
        except BaseException:
            serving, self._serving = self._serving, None
            if not serving.__exit__(*sys.exc_info()):
                raise
            raise  # pragma: no cover - serving never suppresses an error
        super().__init__(self.inner.scale, self.inner.name)
        self.backend = self.inner.backend

    def score(self, pairs: Sequence[Pair]) -> Scores:
        return self.inner.score(pairs)

    def prepare_items(self, texts: Sequence[str], encode: Sequence[str] | None = None) -> None:
        self.inner.prepare_items(texts, encode=encode)
        self.prepare_seconds = self.inner.prepare_seconds

    def close(self) -> None:
        """Close the scorer, then lower the pool (once)."""
        serving, self._serving = self._serving, None
        if serving is None:
            return
        try:
            self.inner.close()
        finally:
            serving.__exit__(None, None, None)


def rollout_waiting(doc: dict[str, Any]) -> str | None:
    """Why a Deployment (as the API returns it) is not serving its current template yet, or ``None``.

    Example:
        >>> rollout_waiting({"metadata": {"generation": 2}, "status": {"observedGeneration": 2,
        ...     "replicas": 1, "updatedReplicas": 1, "readyReplicas": 1}}) is None
        True
    """
    meta, status = doc.get("metadata") or {}, doc.get("status") or {}
    generation, observed = meta.get("generation", 0), status.get("observedGeneration", 0)
    if observed < generation:
        return f"the controller has not seen generation {generation} yet (observed {observed})"
    replicas, updated = status.get("replicas", 0), status.get("updatedReplicas", 0)
    if replicas > updated:
        return f"{replicas - updated} pod(s) of the previous template still terminating"
    ready = status.get("readyReplicas", 0)
    if ready < 1:
        return f"no ready pod yet ({replicas} pod(s))"
    return None


def pool_for(spec: TierSpec, cluster: ClusterConfig | None = None, api_client: Any = None) -> TierPool | None:
    """The pool serving tier ``spec``, or ``None`` when its server is not operated (no ``pool``)."""
    if spec.pool is None:
        return None
    p = spec.pool
    health = None
    if p.health and spec.url:
        health = spec.url.rstrip("/").removesuffix("/v1") + "/health"
    return TierPool(
        p.namespace or (cluster or ClusterConfig()).pools_namespace, p.deployment, p.scaledobject,
        init_container=p.init_container, env=p.env, timeout_s=p.timeout_s, poll_s=p.poll_s, health_url=health,
        api_client=api_client,
    )


@contextmanager
def _sigterm_as_exit() -> Iterator[None]:
    """While a pool is raised, SIGTERM (a pod being stopped) raises ``SystemExit`` so that the
    floor is lowered on the way out; only in the main thread, only over the default handler."""
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGTERM) != signal.SIG_DFL:
        yield
        return

    def stop(signum, frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _core(api_client):
    from kubernetes import client

    return client.CoreV1Api(api_client)


def _or_error(fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except PoolError as exc:
        return f"could not read it ({str(exc).split(': ', 1)[-1]})"


def _api_message(body: Any) -> str:
    try:
        return str(json.loads(body).get("message") or "")
    except (TypeError, ValueError, AttributeError):
        return str(body or "")[:300]


def _condition(c: dict[str, Any]) -> str:
    text = f"{c.get('type')}={c.get('status')}"
    if c.get("reason"):
        text += f" {c['reason']}"
    if c.get("message"):
        text += f": {c['message']}"
    return text


def _pod_state(pod: dict[str, Any]) -> str:
    """One pod in a few words: phase, why it is not scheduled, what its containers wait on."""
    name = (pod.get("metadata") or {}).get("name", "?")
    status = pod.get("status") or {}
    bits = [status.get("phase", "Unknown")]
    for c in status.get("conditions") or []:
        if c.get("type") == "PodScheduled" and c.get("status") == "False":
            bits.append(f"unschedulable: {c.get('message') or c.get('reason')}")
    for kind in ("initContainerStatuses", "containerStatuses"):
        for cs in status.get(kind) or []:
            state = cs.get("state") or {}
            if "waiting" in state:
                w = state["waiting"]
                bits.append(f"{cs.get('name')} waiting: {w.get('reason')}"
                            + (f" ({w['message']})" if w.get("message") else ""))
            elif "terminated" in state and state["terminated"].get("exitCode", 0) != 0:
                t = state["terminated"]
                bits.append(f"{cs.get('name')} exited {t.get('exitCode')}: {t.get('reason')}"
                            + (f" ({t['message']})" if t.get("message") else ""))
    return f"{name} " + ", ".join(bits)
