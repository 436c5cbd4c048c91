"""The ``openai`` backend: an OpenAI-compatible ``/v1/completions`` with ``logprobs``.

Served by vLLM, SGLang, TGI's own compatible API and others. The prompt is rendered here with
the served model's tokenizer and chat template, and sent as text with ``max_tokens=1``,
``temperature=0`` and ``logprobs=top_n``; the answer's ``top_logprobs`` (token text to
log-probability) are matched to the grade tokens' texts (see :mod:`relforge.tiers._top_tokens`
for a grade token missing from them). Retries, timeouts and concurrency: :mod:`relforge.tiers._remote`.
"""

from __future__ import annotations

import httpx

from relforge.tiers._remote import RemoteError, RemoteScorer, call_with_retries, status_error
from relforge.tiers._top_tokens import TopToken


def api_base(url: str) -> str:
    """``http://host:port`` from a server URL given with or without ``/v1``.

    Example:
        >>> api_base("http://vllm:8000/v1/")
        'http://vllm:8000'
    """
    url = url.rstrip("/")
    return url.removesuffix("/v1")


def _request_json(client: httpx.Client, method: str, url: str, body: dict | None = None) -> dict:
    """One HTTP request and its JSON answer; its failures as :class:`RemoteError`."""
    try:
        response = client.request(method, url, json=body)
    except httpx.TimeoutException as exc:
        raise RemoteError(f"timed out: {type(exc).__name__}", retryable=True) from exc
    except httpx.TransportError as exc:
        raise RemoteError(f"connection failed: {type(exc).__name__}: {exc}", retryable=True) from exc
    if response.status_code >= 400:
        raise status_error(response.status_code, response.text, response.headers.get("retry-after"))
    try:
        return response.json()
    except ValueError as exc:
        raise RemoteError(f"answer is not JSON: {response.text[:200]!r}", retryable=False) from exc


class OpenAIScorer(RemoteScorer):
    """Scores pairs through an OpenAI-compatible completions server.

    Args:
        url: the server, e.g. ``http://127.0.0.1:8000`` (``/v1`` optional).
        served_model: the model name the server knows (default: the first of its ``/v1/models``).
        client: an ``httpx.Client`` to use (default: one with the policy's timeout and connection
            limit); it is closed by :meth:`close` only when the scorer made it.
        **kwargs: :class:`~relforge.tiers._remote.RemoteScorer`'s arguments (scale, name,
            tokenizer, prompt, policy, top_n, max_length, cost_per_request, cost_per_second, seed).

    Example:
        >>> scorer = OpenAIScorer("http://127.0.0.1:8000", scale=ESCI, name="tier3",
        ...                       tokenizer=load_tokenizer("models/tier3"))   # doctest: +SKIP
        >>> scorer.score(pairs).failed.sum()                                   # doctest: +SKIP
        0
    """

    backend = "openai"

    def __init__(self, url: str, served_model: str | None = None, client: httpx.Client | None = None, **kwargs):
        super().__init__(**kwargs)
        self.base = api_base(url)
        self.served_model = served_model
        self._own_client = client is None
        self.client = client or httpx.Client(
            timeout=self.policy.timeout_s,
            limits=httpx.Limits(max_connections=self.policy.max_concurrency),
        )

    def _prepare(self) -> None:
        if self.served_model is None:
            listing, _, _ = call_with_retries(
                lambda: _request_json(self.client, "GET", f"{self.base}/v1/models"), self.policy, self._rng
            )
            models = listing.get("data") or []
            if not models:
                raise RemoteError(f"{self.base}/v1/models lists no model", retryable=False)
            self.served_model = models[0]["id"]

    def _top_tokens(self, text: str) -> list[TopToken]:
        body = {
            "model": self.served_model,
            "prompt": text,
            "max_tokens": 1,
            "temperature": 0.0,
            "logprobs": self.top_n,
        }
        answer = _request_json(self.client, "POST", f"{self.base}/v1/completions", body)
        try:
            logprobs = answer["choices"][0]["logprobs"]
            top = [TopToken(t, lp) for t, lp in (logprobs.get("top_logprobs") or [{}])[0].items()]
            top += [TopToken(t, lp) for t, lp in zip(logprobs.get("tokens") or [], logprobs.get("token_logprobs") or [])]
        except (KeyError, IndexError, TypeError, AttributeError) as exc:
            raise RemoteError(f"answer without logprobs: {str(answer)[:200]}", retryable=False) from exc
        return top

    def close(self) -> None:
        if self._own_client:
            self.client.close()
