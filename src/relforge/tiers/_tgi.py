"""The ``tgi`` backend: a Text Generation Inference server's ``/generate`` with ``details``
and ``top_n_tokens``, through ``huggingface_hub.InferenceClient``.

The prompt is rendered here with the served model's tokenizer and chat template and sent with
``max_new_tokens=1``, greedy decoding, ``details=True`` and ``top_n_tokens=top_n`` (TGI caps
``top_n_tokens`` at its ``--max-top-n-tokens``, 5 by default). The answer's ``top_tokens``
(ids, texts, log-probabilities) are matched to the grade token ids (see
:mod:`relforge.tiers._top_tokens` for a grade token missing from them). Retries, timeouts and
concurrency: :mod:`relforge.tiers._remote`.

``huggingface_hub`` refuses every request, to any host, while ``HF_HUB_OFFLINE`` (or
``TRANSFORMERS_OFFLINE``) is set, so this backend cannot be built then; unset it for a run
that scores through TGI.
"""

from __future__ import annotations

from relforge.errors import ConfigError
from relforge.tiers._remote import RemoteError, RemoteScorer, status_error
from relforge.tiers._top_tokens import TopToken


def _as_remote_error(exc: Exception) -> RemoteError:
    """A huggingface_hub / httpx error as a :class:`RemoteError` (retryable or not)."""
    import httpx2
    from huggingface_hub.errors import HfHubHTTPError, InferenceTimeoutError, OverloadedError

    chain, cursor = [], exc
    while cursor is not None and len(chain) < 8:
        chain.append(cursor)
        cursor = cursor.__cause__ or cursor.__context__
    for err in chain:
        if isinstance(err, HfHubHTTPError) and err.response is not None:
            response = err.response
            return status_error(response.status_code, response.text, response.headers.get("retry-after"))
    for err in chain:
        if isinstance(err, (InferenceTimeoutError, httpx2.TimeoutException)):
            return RemoteError(f"timed out: {type(err).__name__}", retryable=True)
        if isinstance(err, OverloadedError):
            return RemoteError(f"overloaded: {err}", retryable=True)
        if isinstance(err, httpx2.TransportError):
            return RemoteError(f"connection failed: {type(err).__name__}: {err}", retryable=True)
    return RemoteError(f"{type(exc).__name__}: {exc}", retryable=False)


class TGIScorer(RemoteScorer):
    """Scores pairs through a TGI server's ``/generate``.

    Args:
        url: the server, e.g. ``http://tier2-tgi:8080`` (``/generate`` is appended).
        **kwargs: :class:`~relforge.tiers._remote.RemoteScorer`'s arguments (scale, name,
            tokenizer, prompt, policy, top_n, max_length, cost_per_request, cost_per_second, seed).

    Raises:
        ConfigError: when ``HF_HUB_OFFLINE`` is set (huggingface_hub would refuse every request).

    Example:
        >>> scorer = TGIScorer("http://127.0.0.1:8080", scale=ESCI, name="tier2",
        ...                    tokenizer=load_tokenizer("models/tier2"), top_n=5)  # doctest: +SKIP
    """

    backend = "tgi"

    def __init__(self, url: str, **kwargs):
        from huggingface_hub import InferenceClient, constants

        if constants.is_offline_mode():
            raise ConfigError(
                "the tgi backend calls the server through huggingface_hub, which refuses every request "
                "while HF_HUB_OFFLINE or TRANSFORMERS_OFFLINE is set (when the process started); unset it"
            )
        kwargs.setdefault("top_n", 5)
        super().__init__(**kwargs)
        self.url = url.rstrip("/")
        endpoint = self.url if self.url.endswith("/generate") else f"{self.url}/generate"
        self.client = InferenceClient(model=endpoint, timeout=self.policy.timeout_s)

    def _top_tokens(self, text: str) -> list[TopToken]:
        try:
            out = self.client.text_generation(
                text,
                details=True,
                max_new_tokens=1,
                do_sample=False,
                top_n_tokens=self.top_n,
                return_full_text=False,
            )
        except Exception as exc:
            raise _as_remote_error(exc) from exc
        details = getattr(out, "details", None)
        if details is None or not details.top_tokens:
            raise RemoteError("answer without details.top_tokens (is top_n_tokens enabled on the server?)", retryable=False)
        try:
            return [_top_token(t) for t in [*details.top_tokens[0], *details.tokens[:1]]]
        except (KeyError, TypeError, AttributeError, IndexError) as exc:
            raise RemoteError(f"unexpected token in the answer: {exc}", retryable=False) from exc


def _top_token(token) -> TopToken:
    """A TGI token (``{id, text, logprob, special}``; huggingface_hub leaves nested ones as dicts)."""
    if isinstance(token, dict):
        return TopToken(token["text"], float(token["logprob"]), int(token["id"]))
    return TopToken(token.text, float(token.logprob), int(token.id))
