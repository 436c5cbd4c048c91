"""Small HTTP servers for the remote-backend tests, on 127.0.0.1 with a free port.

- :class:`TGIStandIn`: a STAND-IN for Text Generation Inference (which cannot run on this
  machine). It replays TGI's documented ``POST /generate`` contract: request
  ``{"inputs", "parameters": {details, max_new_tokens, top_n_tokens, ...}}``; answer
  ``{"generated_text", "details": {finish_reason, generated_tokens, seed, prefill, tokens,
  top_tokens}}`` with tokens as ``{id, text, logprob, special}``; errors as
  ``{"error", "error_type"}`` (422 ``validation`` when ``top_n_tokens`` exceeds
  ``--max-top-n-tokens``, 5 by default; 429 ``overloaded``). It does not run a model: the
  test says which top tokens to answer for which prompt.
- :class:`OpenAIFake`: the same for an OpenAI-compatible ``/v1/completions`` with
  ``logprobs`` and ``/v1/models``, for the retry and timeout unit tests (the real thing,
  vLLM, is exercised in ``test_vllm.py``).

Both count requests per prompt and the most requests in flight at once, and can answer the
first ``fail_first`` requests of every prompt with an error status, or wait ``delay_s``.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

#: (token id, token text, log-probability), most probable first.
Top = list[tuple[int, str, float]]


@dataclass
class Script:
    """What the fake answers, and what it saw."""

    answer: Callable[[str], Top]
    fail_first: int = 0
    fail_status: int = 503
    fail_body: dict = field(default_factory=lambda: {"error": "Service Unavailable"})
    retry_after: str | None = None
    delay_s: float = 0.0
    max_top_n: int = 5
    requests: Counter = field(default_factory=Counter)
    bodies: list[dict] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def log_message(self, *args) -> None:  # quiet
        pass

    def _send(self, status: int, payload: dict, headers: dict[str, str] | None = None) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self.server.owner.get(self)

    def do_POST(self) -> None:
        script = self.server.owner.script
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        with script.lock:
            script.in_flight += 1
            script.max_in_flight = max(script.max_in_flight, script.in_flight)
            script.bodies.append(body)
        try:
            prompt = self.server.owner.prompt_of(body)
            with script.lock:
                script.requests[prompt] += 1
                attempt = script.requests[prompt]
            if script.delay_s:
                time.sleep(script.delay_s)
            if attempt <= script.fail_first:
                headers = {"Retry-After": script.retry_after} if script.retry_after else None
                self._send(script.fail_status, script.fail_body, headers)
                return
            self.server.owner.post(self, body, prompt)
        finally:
            with script.lock:
                script.in_flight -= 1


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    owner: _FakeServer


class _FakeServer:
    def __init__(self, script: Script):
        self.script = script
        self.httpd = _Server(("127.0.0.1", 0), _Handler)
        self.httpd.owner = self
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def prompt_of(self, body: dict) -> str:
        raise NotImplementedError

    def get(self, handler: _Handler) -> None:
        handler._send(404, {"error": "not found"})

    def post(self, handler: _Handler, body: dict, prompt: str) -> None:
        raise NotImplementedError


class TGIStandIn(_FakeServer):
    """A stand-in for TGI's ``POST /generate`` (see the module docstring)."""

    def prompt_of(self, body: dict) -> str:
        return body["inputs"]

    def post(self, handler: _Handler, body: dict, prompt: str) -> None:
        if handler.path != "/generate":
            handler._send(404, {"error": f"no route {handler.path}"})
            return
        params = body.get("parameters") or {}
        top_n = params.get("top_n_tokens") or 0
        if top_n > self.script.max_top_n:
            handler._send(422, {"error": f"top_n_tokens must be <= {self.script.max_top_n}", "error_type": "validation"})
            return
        top = self.script.answer(prompt)[:top_n] if top_n else []
        best = self.script.answer(prompt)[0]

        def token(t):
            return {"id": t[0], "text": t[1], "logprob": t[2], "special": False}

        details = {
            "finish_reason": "length",
            "generated_tokens": 1,
            "seed": None,
            "prefill": [],
            "tokens": [token(best)],
            "top_tokens": [[token(t) for t in top]],
        }
        answer = {"generated_text": best[1]}
        if params.get("details"):
            answer["details"] = details
        handler._send(200, answer)


class OpenAIFake(_FakeServer):
    """A fake OpenAI-compatible completions server (see the module docstring)."""

    model_id = "fake-model"

    def prompt_of(self, body: dict) -> str:
        return body.get("prompt", "")

    def get(self, handler: _Handler) -> None:
        if handler.path == "/v1/models":
            handler._send(200, {"object": "list", "data": [{"id": self.model_id, "object": "model"}]})
        else:
            handler._send(404, {"error": "not found"})

    def post(self, handler: _Handler, body: dict, prompt: str) -> None:
        if handler.path != "/v1/completions":
            handler._send(404, {"error": {"message": f"no route {handler.path}"}})
            return
        if body.get("model") != self.model_id:
            handler._send(404, {"error": {"message": f"model {body.get('model')!r} does not exist", "code": 404}})
            return
        n = body.get("logprobs") or 0
        top = self.script.answer(prompt)
        best = top[0]
        handler._send(200, {
            "id": "cmpl-fake",
            "object": "text_completion",
            "model": self.model_id,
            "choices": [{
                "index": 0,
                "text": best[1],
                "logprobs": {
                    "text_offset": [0],
                    "tokens": [best[1]],
                    "token_logprobs": [best[2]],
                    "top_logprobs": [{t[1]: t[2] for t in top[:n]}],
                },
                "finish_reason": "length",
            }],
            "usage": {"prompt_tokens": 10, "completion_tokens": 1, "total_tokens": 11},
        })


class CountingProxy:
    """A reverse proxy in front of a real server that counts the requests in flight through it
    (vLLM's own running/waiting gauges are not updated per request on its CPU build)."""

    def __init__(self, upstream: str):
        import httpx

        self.upstream = upstream.rstrip("/")
        self.client = httpx.Client(timeout=60.0)
        self.in_flight = 0
        self.max_in_flight = 0
        self.lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def _forward(self, method: str) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                with owner.lock:
                    owner.in_flight += 1
                    owner.max_in_flight = max(owner.max_in_flight, owner.in_flight)
                try:
                    answer = owner.client.request(method, owner.upstream + self.path, content=body,
                                                  headers={"Content-Type": "application/json"})
                    data = answer.content
                    self.send_response(answer.status_code)
                    self.send_header("Content-Type", answer.headers.get("content-type", "application/json"))
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                finally:
                    with owner.lock:
                        owner.in_flight -= 1

            def do_GET(self) -> None:
                self._forward("GET")

            def do_POST(self) -> None:
                self._forward("POST")

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.client.close()
