"""The ``causal-lm`` backend: a local transformers causal LM read as a grade classifier.

Each pair becomes a prompt (the grade scale's prompt file, rendered with the model's chat
template where it has one) that ends where the answer begins. The grade tokens' next-token
logits, softmaxed among themselves, are the grade probabilities (the next-token probabilities
renormalised over the grade tokens). The forward pass is :class:`~relforge.tiers.PromptedLM`'s
(shared prefix computed once, suffixes right-padded). The grade tokens are checked to be
single, distinct tokens for the model's tokenizer when the scorer is built.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from relforge.errors import RelforgeError
from relforge.grades import GradeScale
from relforge.logs import get_logger, log_event, track
from relforge.tiers._heads import TierDescriptor, softmax
from relforge.tiers._lm import PromptedLM
from relforge.tiers._local import length_buckets, share_seconds
from relforge.tiers._prompts import Prompt, load_prompt
from relforge.tiers._scorer import Pair, Scores, TierScorer

_log = get_logger("tiers.causal_lm")

#: Prompt tokens of a causal-lm tier when neither its spec nor its folder says (prefix included).
DEFAULT_LLM_MAX_LENGTH = 128


def prompt_for(folder: str | Path, scale: GradeScale, path: str | None = None) -> Prompt:
    """The prompt for a model folder: ``path`` if given, else the folder's descriptor's, else the scale's."""
    if path is None:
        descriptor = TierDescriptor.load(folder) if Path(folder).is_dir() else None
        if descriptor is not None and descriptor.prompt:
            candidate = Path(descriptor.prompt)
            path = str(candidate if candidate.is_absolute() else Path(folder) / candidate)
    return load_prompt(scale.name, path)


def length_for(folder: str | Path, given: int | None, default: int = DEFAULT_LLM_MAX_LENGTH) -> int:
    """Prompt tokens: ``given``, else the length the folder's model was fine-tuned at, else ``default``."""
    if given:
        return given
    descriptor = TierDescriptor.load(folder) if Path(folder).is_dir() else None
    return (descriptor.max_length if descriptor and descriptor.max_length else None) or default


def suffix_ids_of(lm: PromptedLM, pairs: Sequence[Pair]) -> tuple[list[list[int]], np.ndarray, list[str | None]]:
    """Each pair's suffix ids; a pair whose prompt cannot fit is marked failed with its reason."""
    ids: list[list[int]] = [[] for _ in pairs]
    failed = np.zeros(len(pairs), dtype=bool)
    errors: list[str | None] = [None] * len(pairs)
    for i, pair in enumerate(pairs):
        try:
            ids[i] = lm.builder.suffix_ids(pair.query, pair.text)
        except RelforgeError as exc:
            failed[i], errors[i] = True, str(exc)
    return ids, failed, errors


class CausalLMScorer(TierScorer):
    """Scores pairs with a local causal LM's next-token probabilities of the grade tokens.

    Args:
        folder: a transformers causal LM folder (with its tokenizer).
        scale: the grade scale.
        name: the model's name in the ``labels`` table (default: the folder's name).
        prompt: the prompt file (default: the descriptor's, else the scale's shipped prompt).
        batch_size: prompts per forward pass.
        max_length: tokens per prompt (default: the folder's fine-tuning length, else 128);
            the item text is cut by field to fit.
        device: torch device (default: the run's compute device).
        cost_per_second: price of one second of this machine; a pair's cost is its share of
            its batch's wall time (by tokens) times this price.

    Raises:
        ModelError: when a grade token is not a single token, or two collide, for this tokenizer.

    Example:
        >>> scorer = CausalLMScorer("models/tier2", ESCI)                # doctest: +SKIP
        >>> scorer.score([Pair("red shoes", "Trail running shoe, red")]).probs.sum()  # doctest: +SKIP
        1.0
    """

    backend = "causal-lm"

    def __init__(
        self,
        folder: str | Path,
        scale: GradeScale,
        name: str | None = None,
        prompt: str | None = None,
        batch_size: int = 8,
        max_length: int | None = None,
        device: str | None = None,
        cost_per_second: float = 1.0,
    ):
        folder = Path(folder)
        super().__init__(scale, name or folder.name)
        self.lm = PromptedLM(folder, scale, prompt_for(folder, scale, prompt), length_for(folder, max_length), device)
        self.tokenizer, self.grade_ids = self.lm.tokenizer, self.lm.grade_ids
        self.prompt, self.max_length = self.lm.builder.prompt, self.lm.builder.max_length
        self.batch_size = batch_size
        self.cost_per_second = cost_per_second

    def score(self, pairs: Sequence[Pair]) -> Scores:
        n = len(pairs)
        probs = np.full((n, self.scale.n), np.nan, dtype=np.float32)
        cost = np.zeros(n, dtype=np.float32)
        ids, failed, errors = suffix_ids_of(self.lm, pairs)
        todo = np.flatnonzero(~failed)
        for bucket in track(length_buckets([len(ids[i]) for i in todo], self.batch_size), f"{self.name}: causal-lm"):
            batch = todo[bucket]
            try:
                out, seconds = self.lm.timed_forward([ids[i] for i in batch], logits=True)
                probs[batch] = softmax(out["grade_logits"].astype(np.float64))
            except RuntimeError as exc:  # torch errors (out of memory, ...): the batch fails, the run goes on
                log_event(_log, "batch failed", level=30, tier=self.name, pairs=len(batch), error=str(exc)[:200])
                failed[batch], seconds = True, 0.0
                for i in batch:
                    errors[i] = f"causal-lm batch failed: {exc}"
            cost[batch] = share_seconds(seconds, [len(ids[i]) for i in batch], self.cost_per_second)
        tokens = np.asarray([len(s) + self.lm.prefix_length if not f else 0 for s, f in zip(ids, failed)], dtype=np.int32)
        return Scores(probs, failed, cost, errors, tokens=tokens)
