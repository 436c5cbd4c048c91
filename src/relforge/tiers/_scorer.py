"""The tier interface: (query, item) pairs in, one probability per grade out, a cost per pair.

Every backend (``cross-encoder``, ``causal-lm``, ``tgi``, ``openai``, and the fine-tuned
probe heads) implements :class:`TierScorer`. A pair a backend could not score is reported as
failed (its probabilities are NaN); a scorer never makes up a label.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from typing_extensions import Self

from relforge.grades import GradeScale


@dataclass(frozen=True)
class Pair:
    """One (query, item) pair as the models read it."""

    query: str
    text: str


@dataclass
class Scores:
    """The result of scoring ``n`` pairs.

    Attributes:
        probs: ``(n, n_grades)`` float32, each row sums to 1; NaN rows for failed pairs.
        failed: ``(n,)`` bool, True where the pair could not be scored.
        cost: ``(n,)`` float32, the cost of each pair: local backends measure a batch's wall
            seconds, share them by tokens and multiply by ``cost_per_second``; remote backends
            charge ``cost_per_request`` per request sent (retries included), or else the
            measured seconds of the pair's requests times ``cost_per_second``
            (:class:`relforge.config.TierSpec`).
        errors: per pair, ``None`` or why it failed.
        tokens: ``(n,)`` prompt tokens per pair where the backend counts them (LLM tiers), else ``None``.
    """

    probs: np.ndarray
    failed: np.ndarray
    cost: np.ndarray
    errors: list[str | None] = field(default_factory=list)
    tokens: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.failed)
        if self.probs.shape[0] != n or len(self.cost) != n:
            raise ValueError("probs, failed and cost must have one row per pair")
        if not self.errors:
            self.errors = [None] * n

    @property
    def grades(self) -> np.ndarray:
        """The most probable grade per pair (-1 where failed)."""
        out = np.full(len(self.failed), -1, dtype=np.int8)
        ok = ~self.failed
        if ok.any():
            out[ok] = self.probs[ok].argmax(axis=1)
        return out

    @classmethod
    def concat(cls, parts: Sequence[Scores]) -> Scores:
        tokens = None
        if parts and all(p.tokens is not None for p in parts):
            tokens = np.concatenate([p.tokens for p in parts])
        return cls(
            probs=np.concatenate([p.probs for p in parts]),
            failed=np.concatenate([p.failed for p in parts]),
            cost=np.concatenate([p.cost for p in parts]),
            errors=[e for p in parts for e in p.errors],
            tokens=tokens,
        )


class TierScorer(ABC):
    """A tier: scores pairs on a grade scale.

    Subclasses set ``backend`` and implement :meth:`score`.

    Args:
        scale: the grade scale the probabilities are over.
        name: the model's name, recorded in the ``labels`` table.
    """

    backend: str = ""

    def __init__(self, scale: GradeScale, name: str):
        self.scale = scale
        self.name = name

    @abstractmethod
    def score(self, pairs: Sequence[Pair]) -> Scores:
        """Score ``pairs``; never raises for a single pair's failure (see :class:`Scores`)."""

    #: Seconds the last :meth:`prepare_items` spent on one-off work (encoding item vectors), kept
    #: apart from the per-pair costs of :meth:`score`.
    prepare_seconds: float = 0.0

    def prepare_items(self, texts: Sequence[str], encode: Sequence[str] | None = None) -> None:
        """A hint before scoring: the item texts the coming pairs draw from (the catalog).

        A scorer may load what it needs for them once; the ``bi-encoder`` tier loads the
        catalog's cached item vectors, and when they are not cached encodes the item texts in
        ``encode`` now (``calibrate`` passes its pairs' items, so that the per-pair costs it
        measures are those of a run whose items are encoded once, as after ``mine``; the
        seconds go to :attr:`prepare_seconds`). The default does nothing.
        """

    def close(self) -> None:
        """Release resources (clients, thread pools)."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
