"""Generation as a tier capability: a model writes short texts (search queries) from chats.

One interface (:class:`QueryGenerator`: chats in, ``n`` generated texts per chat out, a cost per
chat) and its backends, the tier backends that can generate:

- ``causal-lm`` (:class:`LocalQueryGenerator`): transformers' ``generate`` on the model that
  :func:`~relforge.tiers.load_causal_lm` loads (the loader and compute settings of every local
  causal LM path); prompts left-padded in batches, decoding stops at the end of the line;
- ``tgi`` (:class:`TGIQueryGenerator`): a TGI server's ``/generate``;
- ``openai`` (:class:`OpenAIQueryGenerator`): an OpenAI-compatible ``/v1/completions``.

The remote ones send their requests through :func:`~relforge.tiers._remote.send_all`, with the
scorers' bounded concurrency, retries with backoff, circuit breaker and failure reporting: a
chat the server could not answer is reported failed (no text), never filled in. The chat is
rendered locally with the model's chat template (:func:`render_chat`) for every backend, so a
local and a served copy of one model read the same text. :func:`load_generator` builds one
from a tier's configuration.

Decoding: greedy at ``temperature`` 0; sampling (``temperature``, ``top_p``, a seed per call)
above, which ``n > 1`` needs.
"""

from __future__ import annotations

import random
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from typing_extensions import Self

from relforge.config import BusConfig, ModelsConfig, TierSpec
from relforge.errors import ConfigError, ModelError
from relforge.logs import get_logger, log_event, track
from relforge.tiers._local import share_seconds
from relforge.tiers._prompts import prompt_token_ids, server_prompt_text
from relforge.tiers._query_prompt import render_chat
from relforge.tiers._remote import RemoteError, RemotePolicy, send_all

_log = get_logger("tiers.generate")

#: The tier backends that can generate text.
GENERATING_BACKENDS = ("causal-lm", "tgi", "openai")

Chat = list[dict[str, str]]


@dataclass
class Generations:
    """The result of generating for ``n`` chats.

    Attributes:
        texts: per chat, the texts generated (empty where the chat failed).
        failed: ``(n,)`` bool, True where nothing could be generated.
        cost: ``(n,)`` float32: a local batch's wall seconds shared by its chats' prompt tokens,
            times ``cost_per_second``; remote: ``cost_per_request`` per request sent, else the
            requests' seconds times ``cost_per_second``.
        errors: per chat, ``None`` or why it failed.
        seconds: wall seconds of the whole call.
    """

    texts: list[list[str]]
    failed: np.ndarray
    cost: np.ndarray
    errors: list[str | None] = field(default_factory=list)
    seconds: float = 0.0

    def __post_init__(self) -> None:
        if not self.errors:
            self.errors = [None] * len(self.texts)


class QueryGenerator(ABC):
    """A model that continues chats with a short text (one line).

    Args:
        name: the model's name (recorded with what it wrote).
        tokenizer: the model's tokenizer (chat template, token counts).
        max_new_tokens: tokens generated per text at most.
        temperature: 0 for greedy decoding, else the sampling temperature.
        top_p: nucleus sampling's mass (sampling only).
        cost_per_second: price of one second of generation.
    """

    backend: str = ""

    def __init__(self, name: str, tokenizer, max_new_tokens: int = 24, temperature: float = 0.0, top_p: float = 0.95,
                 cost_per_second: float = 1.0):
        if temperature < 0 or not 0 < top_p <= 1 or max_new_tokens < 1:
            raise ValueError("need temperature >= 0, 0 < top_p <= 1 and max_new_tokens >= 1")
        self.name, self.tokenizer = name, tokenizer
        self.max_new_tokens, self.temperature, self.top_p = max_new_tokens, temperature, top_p
        self.cost_per_second = cost_per_second

    @property
    def sampling(self) -> bool:
        return self.temperature > 0

    def render(self, chat: Chat) -> str:
        """The chat as the text the model continues (:func:`render_chat`)."""
        return render_chat(self.tokenizer, chat)

    @abstractmethod
    def generate(self, chats: Sequence[Chat], n: int = 1, seed: int = 0) -> Generations:
        """Generate ``n`` texts per chat; never raises for one chat's failure.

        Args:
            chats: the chats (:meth:`relforge.tiers.QueryPrompt.messages`).
            n: texts per chat (``n > 1`` needs sampling).
            seed: the sampling seed of this call (the same call with the same seed writes the
                same texts where the backend is deterministic).
        """

    def close(self) -> None:
        """Release resources (clients)."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _check_n(self, n: int) -> None:
        if n < 1:
            raise ValueError("n must be at least 1")
        if n > 1 and not self.sampling:
            raise ValueError("n > 1 needs sampling (temperature > 0): greedy decoding writes the same text n times")


class LocalQueryGenerator(QueryGenerator):
    """Generation with a local causal LM (transformers ``generate``).

    Args:
        folder: a transformers causal LM folder.
        name: the model's name (default: the folder's name).
        batch_size: chats per ``generate`` call.
        device, dtype: torch device and dtype (default: the run's compute settings).
        **kwargs: :class:`QueryGenerator`'s decoding settings and ``cost_per_second``.

    Example:
        >>> with LocalQueryGenerator("models/smollm2", max_new_tokens=16) as g:       # doctest: +SKIP
        ...     g.generate([prompt.messages("Trail shoe | Acme | red")]).texts
        [['red trail shoes']]
    """

    backend = "causal-lm"

    def __init__(self, folder: str | Path, name: str | None = None, batch_size: int = 8, device: str | None = None,
                 dtype: str | None = None, **kwargs):
        from relforge.tiers._lm import load_causal_lm

        folder = Path(folder)
        self.model, tokenizer, self.device, self.dtype = load_causal_lm(folder, device, dtype)
        super().__init__(name or folder.name, tokenizer, **kwargs)
        self.batch_size = batch_size
        eos = [self.tokenizer.eos_token_id]
        end = self.tokenizer.convert_tokens_to_ids("<|im_end|>") if "<|im_end|>" in self.tokenizer.get_vocab() else None
        self._eos = [i for i in {*eos, end, getattr(self.model.generation_config, "eos_token_id", None)}
                     if isinstance(i, int)]

    def generate(self, chats: Sequence[Chat], n: int = 1, seed: int = 0) -> Generations:
        import torch

        self._check_n(n)
        started = time.perf_counter()
        m = len(chats)
        texts: list[list[str]] = [[] for _ in range(m)]
        failed = np.zeros(m, dtype=bool)
        cost = np.zeros(m, dtype=np.float32)
        errors: list[str | None] = [None] * m
        ids = [prompt_token_ids(self.tokenizer, self.render(c)) for c in chats]
        batches = [list(range(i, min(i + self.batch_size, m))) for i in range(0, m, self.batch_size)]
        for b, batch in enumerate(track(batches, f"{self.name}: generate")):
            width = max(len(ids[i]) for i in batch)
            pad = self.tokenizer.pad_token_id
            input_ids = torch.tensor([[pad] * (width - len(ids[i])) + ids[i] for i in batch], device=self.device)
            mask = torch.tensor([[0] * (width - len(ids[i])) + [1] * len(ids[i]) for i in batch], device=self.device)
            options = {"do_sample": self.sampling, "num_return_sequences": n}
            if self.sampling:
                options.update(temperature=self.temperature, top_p=self.top_p)
                torch.manual_seed(seed * 100_003 + b)
            else:
                options.update(temperature=None, top_p=None, top_k=None)
            start = time.perf_counter()
            try:
                with torch.inference_mode():
                    out = self.model.generate(
                        input_ids=input_ids, attention_mask=mask, max_new_tokens=self.max_new_tokens,
                        pad_token_id=pad, eos_token_id=self._eos, stop_strings=["\n"], tokenizer=self.tokenizer,
                        **options,
                    )
            except RuntimeError as exc:  # torch errors (out of memory, ...): the batch fails, the run goes on
                log_event(_log, "generation batch failed", level=30, model=self.name, chats=len(batch), error=str(exc)[:200])
                for i in batch:
                    failed[i], errors[i] = True, f"causal-lm generate failed: {exc}"
                continue
            seconds = time.perf_counter() - start
            new = out[:, width:].cpu().tolist()
            for j, i in enumerate(batch):
                texts[i] = [self.tokenizer.decode(new[j * n + r], skip_special_tokens=True) for r in range(n)]
            cost[batch] = share_seconds(seconds, [len(ids[i]) for i in batch], self.cost_per_second)
        return Generations(texts, failed, cost, errors, seconds=time.perf_counter() - started)


class RemoteQueryGenerator(QueryGenerator):
    """Generation on a server; subclasses implement :meth:`_complete` (one request).

    Args:
        policy: concurrency, timeout, retry and breaker settings (the tier's).
        cost_per_request: price of one request; unset: the requests' seconds times ``cost_per_second``.
        seed: the backoff jitter's seed.
        **kwargs: :class:`QueryGenerator`'s arguments.
    """

    def __init__(self, *, policy: RemotePolicy | None = None, cost_per_request: float | None = None, seed: int = 0,
                 **kwargs):
        super().__init__(**kwargs)
        self.policy = policy or RemotePolicy()
        self.cost_per_request = cost_per_request
        self._rng = random.Random(seed)

    @abstractmethod
    def _complete(self, text: str, n: int, seed: int) -> list[str]:
        """One request: ``n`` continuations of ``text``; raises :class:`RemoteError`."""

    def _prepare(self) -> None:
        """Called once per :meth:`generate` before the first request."""

    def _cost(self, attempts: int, seconds: float) -> float:
        return attempts * self.cost_per_request if self.cost_per_request is not None else seconds * self.cost_per_second

    def _call(self, text: str, n: int, seed: int) -> Callable[[], list[str]]:
        return lambda: self._complete(text, n, seed)

    def generate(self, chats: Sequence[Chat], n: int = 1, seed: int = 0) -> Generations:
        self._check_n(n)
        started = time.perf_counter()
        m = len(chats)
        texts: list[list[str]] = [[] for _ in range(m)]
        failed = np.ones(m, dtype=bool)
        cost = np.zeros(m, dtype=np.float32)
        errors: list[str | None] = [None] * m
        try:
            self._prepare()
        except RemoteError as exc:
            return Generations(texts, failed, cost, [f"server not usable: {exc}"] * m, time.perf_counter() - started)
        rendered = [server_prompt_text(self.tokenizer, self.render(c)) for c in chats]
        calls = [self._call(t, n, seed * 100_003 + i) for i, t in enumerate(rendered)]
        for i, sent in enumerate(send_all(calls, self.policy, self._rng, f"{self.name}: {self.backend} generate")):
            cost[i] = self._cost(sent.attempts, sent.seconds)
            if sent.result is not None:
                texts[i], failed[i] = list(sent.result), False
            else:
                errors[i] = sent.error
        if failed.any():
            log_event(_log, "generations failed", level=30, model=self.name, failed=int(failed.sum()), chats=m,
                      first_error=next(e for e in errors if e)[:200])
        return Generations(texts, failed, cost, errors, seconds=time.perf_counter() - started)


class TGIQueryGenerator(RemoteQueryGenerator):
    """Generation through a TGI server's ``/generate`` (one request per text).

    Raises:
        ConfigError: when ``HF_HUB_OFFLINE`` is set (huggingface_hub would refuse every request).
    """

    backend = "tgi"

    def __init__(self, url: str, **kwargs):
        from huggingface_hub import InferenceClient, constants

        if constants.is_offline_mode():
            raise ConfigError(
                "the tgi backend calls the server through huggingface_hub, which refuses every request "
                "while HF_HUB_OFFLINE or TRANSFORMERS_OFFLINE is set (when the process started); unset it"
            )
        super().__init__(**kwargs)
        self.url = url.rstrip("/")
        endpoint = self.url if self.url.endswith("/generate") else f"{self.url}/generate"
        self.client = InferenceClient(model=endpoint, timeout=self.policy.timeout_s)

    def _complete(self, text: str, n: int, seed: int) -> list[str]:
        from relforge.tiers._tgi import _as_remote_error

        out = []
        for r in range(n):
            options = {"do_sample": True, "temperature": self.temperature, "top_p": min(self.top_p, 0.999),
                       "seed": seed + r} if self.sampling else {"do_sample": False}
            try:
                answer = self.client.text_generation(text, max_new_tokens=self.max_new_tokens, stop=["\n"],
                                                     return_full_text=False, details=False, **options)
            except Exception as exc:
                raise _as_remote_error(exc) from exc
            out.append(answer if isinstance(answer, str) else getattr(answer, "generated_text", ""))
        return out


class OpenAIQueryGenerator(RemoteQueryGenerator):
    """Generation through an OpenAI-compatible ``/v1/completions`` (vLLM, SGLang, TGI's API).

    Args:
        url: the server (``/v1`` optional).
        served_model: the model name the server knows (default: the first of its ``/v1/models``).
        **kwargs: :class:`RemoteQueryGenerator`'s arguments.
    """

    backend = "openai"

    def __init__(self, url: str, served_model: str | None = None, **kwargs):
        import httpx

        from relforge.tiers._openai import api_base

        super().__init__(**kwargs)
        self.base, self.served_model = api_base(url), served_model
        self.client = httpx.Client(timeout=self.policy.timeout_s,
                                   limits=httpx.Limits(max_connections=self.policy.max_concurrency))

    def _prepare(self) -> None:
        from relforge.tiers._openai import _request_json
        from relforge.tiers._remote import call_with_retries

        if self.served_model is None:
            listing, _, _ = call_with_retries(lambda: _request_json(self.client, "GET", f"{self.base}/v1/models"),
                                              self.policy, self._rng)
            models = listing.get("data") or []
            if not models:
                raise RemoteError(f"{self.base}/v1/models lists no model", retryable=False)
            self.served_model = models[0]["id"]

    def _complete(self, text: str, n: int, seed: int) -> list[str]:
        from relforge.tiers._openai import _request_json

        body = {"model": self.served_model, "prompt": text, "max_tokens": self.max_new_tokens, "n": n,
                "temperature": self.temperature, "stop": ["\n"]}
        if self.sampling:
            body.update(top_p=self.top_p, seed=seed)
        answer = _request_json(self.client, "POST", f"{self.base}/v1/completions", body)
        try:
            return [str(c["text"]) for c in answer["choices"]][:n]
        except (KeyError, TypeError) as exc:
            raise RemoteError(f"answer without choices[].text: {str(answer)[:200]}", retryable=False) from exc

    def close(self) -> None:
        self.client.close()


def load_generator(
    spec: TierSpec,
    models_config: ModelsConfig | None = None,
    *,
    bus: BusConfig | None = None,
    max_new_tokens: int = 24,
    temperature: float = 0.0,
    top_p: float = 0.95,
    batch_size: int = 8,
) -> QueryGenerator:
    """The generator of a tier whose backend can generate (``causal-lm``, ``tgi``, ``openai``).

    The model is ``spec.model``, else ``models.<tier name>``; where that is a probe tier's
    folder, the probe's base model generates. Remote backends take the tokenizer and chat
    template from the folder and the server from ``spec.url``, with the tier's concurrency,
    timeout and retry settings.

    Raises:
        ConfigError: a backend that cannot generate, no model, or no url for a remote backend.
        ModelError: the model cannot be resolved or is not a causal LM.

    Example:
        >>> cfg = load_config()
        >>> with load_generator(cfg.tiers.spec("tier2"), cfg.models) as g:     # doctest: +SKIP
        ...     g.generate([load_query_prompt().messages("Trail shoe | red")]).texts
    """
    from relforge.tiers._factory import resolve_model_ref
    from relforge.tiers._heads import TierDescriptor
    from relforge.tiers._lm import load_tokenizer

    if spec.backend not in GENERATING_BACKENDS:
        raise ConfigError(f"tier `{spec.name}`: backend `{spec.backend}` cannot generate text; "
                          f"use a tier whose backend is one of {', '.join(GENERATING_BACKENDS)}")
    ref = spec.model or (getattr(models_config, spec.name, None) if models_config and spec.name else None)
    if not ref:
        raise ConfigError(f"tier `{spec.name}`: no model; set tiers.specs.{spec.name}.model or models.{spec.name}")
    folder = resolve_model_ref(str(ref), models_config, bus)
    descriptor = TierDescriptor.load(folder)
    if descriptor is not None and descriptor.backend == "probe":  # a probe generates with its base LM
        ref = descriptor.base_model
        folder = resolve_model_ref(str(ref), models_config, bus)
    decoding = {"max_new_tokens": max_new_tokens, "temperature": temperature, "top_p": top_p,
                "cost_per_second": spec.cost_per_second}
    if spec.backend == "causal-lm":
        return LocalQueryGenerator(folder, name=str(ref), batch_size=batch_size, device=spec.device, **decoding)
    if not spec.url:
        raise ConfigError(f"tier `{spec.name}`: backend `{spec.backend}` needs tiers.specs.{spec.name}.url")
    if descriptor is not None and descriptor.backend != "causal-lm":
        raise ModelError(f"{folder}: a `{descriptor.backend}` model cannot generate text")
    common = {"name": spec.served_model or str(ref), "tokenizer": load_tokenizer(folder),
              "policy": RemotePolicy.from_spec(spec), "cost_per_request": spec.cost_per_request, **decoding}
    if spec.backend == "tgi":
        return TGIQueryGenerator(spec.url, **common)
    return OpenAIQueryGenerator(spec.url, served_model=spec.served_model, **common)
