"""A STAND-IN for the Kubeflow Pipelines API server (v2beta1), for the submit tests: no KFP can
run here. It is not KFP: it answers the calls the kfp SDK client makes when it creates a run
from a compiled package (read in ``kfp/client/client.py``), with the JSON fields the client
reads, and records every request (method, path, query, headers, JSON body):

- ``GET /apis/v2beta1/healthz``: ``{"multi_user": false}`` (the client asks when no namespace is given);
- ``GET /apis/v2beta1/experiments?filter=...&namespace=...``: the experiments created here whose
  ``display_name`` the filter names;
- ``POST /apis/v2beta1/experiments``: creates one (``experiment_id``);
- ``POST /apis/v2beta1/runs``: creates a run (``run_id``, state ``PENDING``) from the body's
  inline ``pipeline_spec`` and ``runtime_config``.

Anything else (``POST /apis/v2beta1/pipelines/upload`` included: ``create_run_from_pipeline_package``
does not upload) is recorded and answered 404.
"""

from __future__ import annotations

import json
import threading
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

API = "/apis/v2beta1"


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]  # names in lower case
    body: dict | None


class KFPStandIn:
    """Start with ``KFPStandIn()``; ``url`` is its address; ``stop()`` when done."""

    def __init__(self):
        self.requests: list[Request] = []
        self.experiments: list[dict] = []
        self.runs: list[dict] = []
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.server.owner = self
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def calls(self) -> list[tuple[str, str]]:
        return [(r.method, r.path) for r in self.requests]

    def answer(self, method: str, path: str, query: dict[str, list[str]], body: dict | None) -> tuple[int, dict]:
        if (method, path) == ("GET", f"{API}/healthz"):
            return 200, {"multi_user": False}
        if (method, path) == ("GET", f"{API}/experiments"):
            wanted = [p["string_value"] if "string_value" in p else p.get("stringValue")
                      for p in json.loads(query.get("filter", ["{}"])[0]).get("predicates", [])
                      if p.get("key") == "display_name"]
            namespace = query.get("namespace", [None])[0]
            found = [e for e in self.experiments if e["display_name"] in wanted
                     and (namespace is None or e.get("namespace") == namespace)]
            return 200, {"experiments": found, "total_size": len(found)} if found else {}
        if (method, path) == ("POST", f"{API}/experiments"):
            experiment = {**body, "experiment_id": str(uuid.uuid4()), "created_at": "2025-01-01T00:00:00Z",
                          "storage_state": "AVAILABLE"}
            self.experiments.append(experiment)
            return 200, experiment
        if (method, path) == ("POST", f"{API}/runs"):
            if not any(e["experiment_id"] == body.get("experiment_id") for e in self.experiments):
                return 404, {"error": "experiment not found", "code": 5}
            run = {"run_id": str(uuid.uuid4()), "experiment_id": body["experiment_id"],
                   "display_name": body.get("display_name"), "state": "PENDING",
                   "created_at": "2025-01-01T00:00:00Z", "storage_state": "AVAILABLE"}
            self.runs.append(body)
            return 200, run
        return 404, {"error": f"the stand-in does not serve {method} {path}", "code": 5}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:  # quiet
        pass

    def _handle(self, method: str) -> None:
        owner: KFPStandIn = self.server.owner
        url = urlparse(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = {"_raw_bytes": len(raw)}
        query = parse_qs(url.query)
        with owner.lock:
            headers = {k.lower(): v for k, v in self.headers.items()}
            owner.requests.append(Request(method, url.path, query, headers, body))
            status, payload = owner.answer(method, url.path, query, body)
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")
