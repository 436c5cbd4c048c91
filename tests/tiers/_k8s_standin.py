"""A STAND-IN for the Kubernetes API server, for the tier-pool tests (no API server can run here).

It is not Kubernetes: it answers the few calls :class:`relforge.tiers.TierPool` makes, with the
minimal JSON the client reads, and records every request (method, path, query, content type,
body) so that the tests can check what was sent:

- ``PATCH /apis/apps/v1/namespaces/NS/deployments/NAME`` (strategic merge patch): sets the
  init container's env entries by name; a changed pod template bumps ``metadata.generation``;
- ``PATCH /apis/keda.sh/v1alpha1/namespaces/NS/scaledobjects/NAME`` (JSON merge patch):
  merges ``spec``;
- ``GET`` of the same two objects; ``GET /api/v1/namespaces/NS/pods?labelSelector=...``;
- ``GET /health``: the pool's server, answering 503 ``unhealthy_first`` times, then 200.

A toy controller stands in for the Deployment controller and KEDA: while ``minReplicaCount``
is at least 1, the ``ready_after``-th read of the Deployment after the floor was raised finds
the current generation observed and one ready pod of it (never, with ``never_ready``). Any
other request is answered 404; ``forbid`` answers 403 to the listed ``(method, resource)``.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    content_type: str | None
    body: dict | None


@dataclass
class PoolState:
    """The pool as the stand-in holds it, and how it behaves."""

    namespace: str = "relforge"
    name: str = "tier2-tgi"
    model_uri: str = ""
    generation: int = 1
    observed: int = 1
    replicas: int = 0
    ready: int = 0
    min_replicas: int = 0
    ready_after: int = 2
    never_ready: bool = False
    unhealthy_first: int = 0
    forbid: set[tuple[str, str]] = field(default_factory=set)
    reads_since_raised: int = 0
    health_calls: int = 0
    floors: list[int] = field(default_factory=list)


class K8sStandIn:
    """Start with ``K8sStandIn()``; ``url`` is its address; ``stop()`` when done."""

    def __init__(self, state: PoolState | None = None):
        self.state = state or PoolState()
        self.requests: list[Recorded] = []
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.server.owner = self
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def api_client(self):
        """A ``kubernetes.client.ApiClient`` talking to this stand-in."""
        from kubernetes import client

        configuration = client.Configuration()
        configuration.host = self.url
        return client.ApiClient(configuration)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def calls(self) -> list[tuple[str, str]]:
        """``(method, path)`` of every request, in order."""
        return [(r.method, r.path) for r in self.requests]

    # -- the objects -------------------------------------------------------------------------
    def deployment(self) -> dict:
        s = self.state
        return {
            "apiVersion": "apps/v1", "kind": "Deployment",
            "metadata": {"name": s.name, "namespace": s.namespace, "generation": s.generation},
            "spec": {"selector": {"matchLabels": {"app.kubernetes.io/name": s.name}},
                     "template": {"spec": {"initContainers": [
                         {"name": "fetch-model", "env": [{"name": "MODEL_URI", "value": s.model_uri}]}]}}},
            "status": {"observedGeneration": s.observed, "replicas": s.replicas, "updatedReplicas": s.replicas,
                       "readyReplicas": s.ready,
                       "conditions": [{"type": "Available", "status": "False", "reason": "MinimumReplicasUnavailable",
                                       "message": "Deployment does not have minimum availability."}]},
        }

    def scaledobject(self) -> dict:
        s = self.state
        return {"apiVersion": "keda.sh/v1alpha1", "kind": "ScaledObject",
                "metadata": {"name": s.name, "namespace": s.namespace},
                "spec": {"minReplicaCount": s.min_replicas, "maxReplicaCount": 4},
                "status": {"conditions": [{"type": "Ready", "status": "True", "reason": "ScaledObjectReady"}]}}

    def pods(self) -> dict:
        s = self.state
        if s.replicas == 0:
            return {"kind": "PodList", "items": []}
        return {"kind": "PodList", "items": [{
            "metadata": {"name": f"{s.name}-7d9f-abcde"},
            "status": {"phase": "Pending", "conditions": [{
                "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                "message": "0/3 nodes are available: 3 Insufficient nvidia.com/gpu."}]}}]}

    def read_deployment(self) -> dict:
        """A read of the Deployment, after one step of the toy controller."""
        s = self.state
        if s.min_replicas >= 1:
            s.reads_since_raised += 1
            s.replicas = max(s.replicas, 1)
            if not s.never_ready and s.reads_since_raised >= s.ready_after:
                s.observed, s.ready = s.generation, 1
        return self.deployment()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: ThreadingHTTPServer

    def log_message(self, *args) -> None:  # quiet
        pass

    def _send(self, status: int, payload: dict) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _status(self, code: int, message: str) -> None:
        self._send(code, {"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": message,
                          "code": code})

    def _handle(self, method: str) -> None:
        owner: K8sStandIn = self.server.owner
        url = urlparse(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        body = json.loads(raw) if raw else None
        with owner.lock:
            owner.requests.append(Recorded(method, url.path, parse_qs(url.query), self.headers.get("Content-Type"),
                                           body))
            s = owner.state
            parts = url.path.strip("/").split("/")
            if url.path == "/health":
                s.health_calls += 1
                ok = s.health_calls > s.unhealthy_first
                self._send(200 if ok else 503, {"ok": ok})
                return
            resource = parts[-2] if len(parts) >= 2 and parts[-1] != "pods" else parts[-1]
            if (method, resource) in s.forbid:
                self._status(403, f'{resource} "{s.name}" is forbidden: User "system:serviceaccount:kubeflow-user:'
                             f'default-editor" cannot {method.lower()} resource "{resource}"')
                return
            base_ns = ["namespaces", s.namespace]
            if parts[:3] == ["apis", "apps", "v1"] and parts[3:] == [*base_ns, "deployments", s.name]:
                if method == "GET":
                    self._send(200, owner.read_deployment())
                elif method == "PATCH":
                    for c in body["spec"]["template"]["spec"]["initContainers"]:
                        for e in c.get("env", []):
                            if e["name"] == "MODEL_URI" and e["value"] != s.model_uri:
                                s.model_uri = e["value"]
                                s.generation += 1
                                s.ready = 0
                    self._send(200, owner.deployment())
                else:
                    self._status(405, "method not allowed")
                return
            if parts[:3] == ["apis", "keda.sh", "v1alpha1"] and parts[3:] == [*base_ns, "scaledobjects", s.name]:
                if method == "PATCH":
                    floor = int(body["spec"]["minReplicaCount"])
                    s.floors.append(floor)
                    if floor >= 1 and s.min_replicas < 1:
                        s.reads_since_raised = 0
                    s.min_replicas = floor
                self._send(200, owner.scaledobject())
                return
            if parts[:2] == ["api", "v1"] and parts[2:] == [*base_ns, "pods"] and method == "GET":
                self._send(200, owner.pods())
                return
            self._status(404, f"the stand-in does not serve {method} {url.path}")

    def do_GET(self) -> None:
        self._handle("GET")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_DELETE(self) -> None:
        self._handle("DELETE")
