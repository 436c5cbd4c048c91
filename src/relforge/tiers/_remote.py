"""What the remote backends (``tgi``, ``openai``) share: bounded concurrency, timeouts, retries
with exponential backoff and full jitter, a circuit breaker, and failure reporting.

A remote scorer sends one request per pair from a pool of ``max_concurrency`` threads, so at
most that many requests are in flight (sleeping between retries holds the slot too). A request
that times out, cannot connect, or is answered 408/425/429/5xx is retried up to ``retries``
times, after ``uniform(0, min(backoff_max_s, backoff_s * 2**attempt))`` seconds (full jitter),
or after the server's ``Retry-After`` when it sends one (capped at ``backoff_max_s``). Other
answers (400, 401, 404, 422, an answer without a grade token) fail the pair at once. A pair
that could not be scored has NaN probabilities, ``failed=True`` and the reason in ``errors``:
never a made-up label. After ``breaker_after`` pairs in a row have failed on retryable errors
(a dead server), the pairs not yet sent are failed without sending them.

Cost: ``cost_per_request`` per request sent for the pair (retries included) when it is set
(a pay-per-request endpoint); else the measured wall seconds of the pair's requests (backoff
sleeps excluded) times ``cost_per_second`` (a server billed by the hour, whose time a request
occupies; an upper bound on its compute share when it batches requests).
"""

from __future__ import annotations

import random
import threading
import time
from abc import abstractmethod
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from relforge.errors import RelforgeError
from relforge.grades import GradeScale
from relforge.logs import get_logger, log_event, track
from relforge.tiers._prompts import Prompt, PromptBuilder, grade_token_ids, server_prompt_text
from relforge.tiers._scorer import Pair, Scores, TierScorer
from relforge.tiers._top_tokens import TopToken, grade_probs_from_top

T = TypeVar("T")
_log = get_logger("tiers.remote")

#: HTTP statuses worth another try: timeouts, too early, rate limits, server errors.
RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


class RemoteError(RelforgeError):
    """One request's failure, saying whether another try may succeed."""

    def __init__(self, message: str, retryable: bool, status: int | None = None, retry_after: float | None = None):
        super().__init__(message)
        self.retryable = retryable
        self.status = status
        self.retry_after = retry_after
        self.attempts = 0
        self.seconds = 0.0


def status_error(status: int, body: str, retry_after: str | None = None) -> RemoteError:
    """The :class:`RemoteError` for an HTTP error answer (``Retry-After`` in seconds is honoured)."""
    after = None
    if retry_after:
        try:
            after = max(0.0, float(retry_after))
        except ValueError:
            after = None
    return RemoteError(f"HTTP {status}: {body[:300]}", status in RETRYABLE_STATUS, status, after)


@dataclass(frozen=True)
class RemotePolicy:
    """How a remote scorer treats its server.

    Args:
        max_concurrency: requests in flight at once.
        timeout_s: per-request timeout.
        retries: retries after the first try (retryable errors only).
        backoff_s: the first backoff; it doubles per retry, full jitter.
        backoff_max_s: the longest backoff (and cap on ``Retry-After``).
        breaker_after: pairs failed in a row on retryable errors after which the unsent pairs
            are failed without sending (default ``2 * max_concurrency``).
    """

    max_concurrency: int = 8
    timeout_s: float = 30.0
    retries: int = 3
    backoff_s: float = 0.5
    backoff_max_s: float = 10.0
    breaker_after: int | None = None

    @classmethod
    def from_spec(cls, spec) -> RemotePolicy:
        """The policy of a :class:`relforge.config.TierSpec`."""
        return cls(spec.max_concurrency, spec.timeout_s, spec.retries, spec.backoff_s, spec.backoff_max_s)

    def delay(self, attempt: int, rng: random.Random, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number ``attempt + 1`` (``attempt`` counts from 0)."""
        if retry_after is not None:
            return min(retry_after, self.backoff_max_s)
        return rng.uniform(0.0, min(self.backoff_max_s, self.backoff_s * 2.0**attempt))


def call_with_retries(
    call: Callable[[], T],
    policy: RemotePolicy,
    rng: random.Random,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[T, int, float]:
    """``call()`` with retries on retryable :class:`RemoteError`.

    Returns:
        The result, the number of requests sent, and the seconds spent in them (sleeps excluded).

    Raises:
        RemoteError: the last error, with ``attempts`` and ``seconds`` set, when every try failed.
    """
    spent = 0.0
    for attempt in range(policy.retries + 1):
        start = time.perf_counter()
        try:
            result = call()
            return result, attempt + 1, spent + time.perf_counter() - start
        except RemoteError as exc:
            spent += time.perf_counter() - start
            if not exc.retryable or attempt == policy.retries:
                exc.attempts, exc.seconds = attempt + 1, spent
                raise
            sleep(policy.delay(attempt, rng, exc.retry_after))
    raise AssertionError("unreachable")


class _Breaker:
    """Counts pairs failed in a row on retryable errors; opens at a threshold."""

    def __init__(self, threshold: int):
        self.threshold = threshold
        self.in_a_row = 0
        self.last_error = ""
        self._lock = threading.Lock()

    @property
    def open(self) -> bool:
        return self.in_a_row >= self.threshold

    def record(self, ok: bool, error: RemoteError | None = None) -> None:
        with self._lock:
            if ok:
                self.in_a_row = 0
            elif error is not None and error.retryable:
                self.in_a_row += 1
                self.last_error = str(error)


@dataclass(frozen=True)
class Sent:
    """What became of one request sent by :func:`send_all`.

    Attributes:
        result: the call's answer, or ``None`` when it failed.
        error: why it failed (``None`` when it did not).
        attempts: requests sent for it (retries included; 0 when the breaker kept it back).
        seconds: seconds spent in those requests (backoff sleeps excluded).
    """

    result: object | None
    error: str | None
    attempts: int
    seconds: float


def send_all(
    calls: Sequence[Callable[[], T]], policy: RemotePolicy, rng: random.Random, label: str
) -> list[Sent]:
    """Make each call (one request each) with the policy: ``max_concurrency`` in flight, retries
    with backoff (:func:`call_with_retries`), and a circuit breaker that fails the calls not yet
    sent once ``breaker_after`` calls in a row failed on retryable errors.

    Never raises for one call's failure: its :class:`Sent` says why. Every remote backend
    (the ``tgi`` and ``openai`` scorers, the query generators) sends its requests through it.

    Args:
        calls: one zero-argument function per request; each raises :class:`RemoteError` on failure.
        policy: concurrency, timeout, retry and breaker settings.
        rng: the backoff jitter's random generator.
        label: the progress bar's description.

    Returns:
        One :class:`Sent` per call, in the order of ``calls``.
    """
    breaker = _Breaker(policy.breaker_after or 2 * policy.max_concurrency)

    def one(call: Callable[[], T]) -> Sent:
        if breaker.open:
            return Sent(None, f"not sent: {breaker.in_a_row} requests in a row failed (last: {breaker.last_error})", 0, 0.0)
        try:
            result, attempts, seconds = call_with_retries(call, policy, rng)
        except RemoteError as exc:
            breaker.record(False, exc)
            return Sent(None, f"{exc} (after {exc.attempts} request(s))", exc.attempts, exc.seconds)
        breaker.record(True)
        return Sent(result, None, attempts, seconds)

    out: list[Sent | None] = [None] * len(calls)
    if not calls:
        return []
    with ThreadPoolExecutor(policy.max_concurrency, thread_name_prefix="relforge-req") as pool:
        futures = {pool.submit(one, call): i for i, call in enumerate(calls)}
        for future in track(as_completed(futures), label, total=len(futures)):
            out[futures[future]] = future.result()
    return out  # type: ignore[return-value]


class RemoteScorer(TierScorer):
    """A tier served over HTTP: renders prompts locally, asks the server for the top tokens
    after each prompt, and reads the grade probabilities from them.

    Subclasses implement :meth:`_top_tokens` (one request; raise :class:`RemoteError`).

    Args:
        scale: the grade scale.
        name: the model's name in the ``labels`` table.
        tokenizer: the served model's tokenizer (prompt rendering, grade-token check).
        prompt: the prompt (default: the scale's shipped prompt).
        policy: concurrency, timeout and retry settings.
        top_n: top tokens asked for per pair.
        max_length: tokens per prompt (the length the model was fine-tuned at); the item text
            is cut by field to fit, exactly as the local backends cut it.
        cost_per_request: price of one request; unset: seconds times ``cost_per_second``.
        cost_per_second: price of one second of a request.
        seed: seed of the backoff jitter.
    """

    def __init__(
        self,
        scale: GradeScale,
        name: str,
        tokenizer,
        prompt: Prompt | None = None,
        policy: RemotePolicy | None = None,
        top_n: int = 20,
        max_length: int = 192,
        cost_per_request: float | None = None,
        cost_per_second: float = 1.0,
        seed: int = 0,
    ):
        from relforge.tiers._prompts import load_prompt

        super().__init__(scale, name)
        self.tokenizer = tokenizer
        self.prompt = prompt or load_prompt(scale.name)
        self.builder = PromptBuilder(tokenizer, scale, self.prompt, max_length=max_length)
        self.grade_ids = grade_token_ids(tokenizer, scale, self.prompt)
        self.grade_texts = [tokenizer.decode([i]) for i in self.grade_ids]
        self.policy = policy or RemotePolicy()
        self.top_n = top_n
        self.max_length = max_length
        self.cost_per_request = cost_per_request
        self.cost_per_second = cost_per_second
        self._rng = random.Random(seed)

    @abstractmethod
    def _top_tokens(self, text: str) -> list[TopToken]:
        """One request: the top tokens (with log-probabilities) after ``text``."""

    def _prepare(self) -> None:
        """Called once per :meth:`score` before the first request (e.g. find the served model)."""

    def _cost(self, attempts: int, seconds: float) -> float:
        if self.cost_per_request is not None:
            return attempts * self.cost_per_request
        return seconds * self.cost_per_second

    def _grade_call(self, text: str) -> Callable[[], np.ndarray]:
        """One request's call: the grade probabilities read from the top tokens after ``text``."""
        return lambda: grade_probs_from_top(self._top_tokens(text), self.grade_ids, self.grade_texts)

    def score(self, pairs: Sequence[Pair]) -> Scores:
        n = len(pairs)
        probs = np.full((n, self.scale.n), np.nan, dtype=np.float32)
        failed = np.ones(n, dtype=bool)
        cost = np.zeros(n, dtype=np.float32)
        errors: list[str | None] = [None] * n
        texts: list[str | None] = [None] * n
        tokens = np.zeros(n, dtype=np.int32)
        for i, pair in enumerate(pairs):
            try:
                suffix = self.builder.suffix_text(pair.query, pair.text)
                texts[i] = server_prompt_text(self.tokenizer, self.builder.prefix_text + suffix)
                tokens[i] = len(self.builder.prefix_ids) + len(self.tokenizer(suffix, add_special_tokens=False)["input_ids"])
            except RelforgeError as exc:
                errors[i] = str(exc)
        todo = [i for i in range(n) if texts[i] is not None]
        if todo:
            try:
                self._prepare()
            except RemoteError as exc:
                for i in todo:
                    errors[i] = f"server not usable: {exc}"
                todo = []
        calls = [self._grade_call(texts[i]) for i in todo]
        for i, sent in zip(todo, send_all(calls, self.policy, self._rng, f"{self.name}: {self.backend}")):
            cost[i] = self._cost(sent.attempts, sent.seconds)
            if sent.result is not None:
                probs[i], failed[i] = sent.result, False
            else:
                errors[i] = sent.error
        if failed.any():
            log_event(_log, "pairs failed", level=30, tier=self.name, failed=int(failed.sum()), pairs=n,
                      first_error=next(e for e in errors if e)[:200])
        return Scores(probs, failed, cost, errors, tokens=np.where(failed, 0, tokens).astype(np.int32))
