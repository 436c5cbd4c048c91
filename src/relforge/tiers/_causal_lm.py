"""The ``causal-lm`` backend: a local transformers causal LM read as a grade classifier.

Each pair becomes a prompt (the grade scale's prompt file, rendered with the model's chat
template where it has one) that ends where the answer begins. One forward pass per batch
(left padding, no generation) gives the next-token logits; the grade tokens' logits, softmaxed
among themselves, are the grade probabilities (the next-token probabilities renormalised over
the grade tokens). The grade tokens are checked to be single, distinct tokens for the model's
tokenizer when the scorer is built.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from relforge.errors import ModelError, RelforgeError
from relforge.grades import GradeScale
from relforge.logs import get_logger, log_event, track
from relforge.tiers._heads import TierDescriptor
from relforge.tiers._local import length_buckets, share_seconds
from relforge.tiers._prompts import (
    Prompt,
    fit_prompt,
    grade_token_ids,
    load_prompt,
    prompt_token_ids,
)
from relforge.tiers._scorer import Pair, Scores, TierScorer

_log = get_logger("tiers.causal_lm")


def load_tokenizer(folder: str | Path):
    """The tokenizer of a model folder (local files only), padding on the left."""
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    except (OSError, ValueError) as exc:
        raise ModelError(f"{folder}: no usable tokenizer: {exc}") from exc
    tokenizer.padding_side = "left"
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def prompt_for(folder: str | Path, scale: GradeScale, path: str | None = None) -> Prompt:
    """The prompt for a model folder: ``path`` if given, else the folder's descriptor's, else the scale's."""
    if path is None:
        descriptor = TierDescriptor.load(folder) if Path(folder).is_dir() else None
        if descriptor is not None and descriptor.prompt:
            candidate = Path(descriptor.prompt)
            path = str(candidate if candidate.is_absolute() else Path(folder) / candidate)
    return load_prompt(scale.name, path)


class CausalLMScorer(TierScorer):
    """Scores pairs with a local causal LM's next-token probabilities of the grade tokens.

    Args:
        folder: a transformers causal LM folder (with its tokenizer).
        scale: the grade scale.
        name: the model's name in the ``labels`` table (default: the folder's name).
        prompt: the prompt file (default: the descriptor's, else the scale's shipped prompt).
        batch_size: prompts per forward pass.
        max_length: tokens per prompt; longer item texts are cut to fit.
        device: torch device.
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
        max_length: int = 512,
        device: str = "cpu",
        cost_per_second: float = 1.0,
    ):
        import torch
        from transformers import AutoModelForCausalLM

        folder = Path(folder)
        super().__init__(scale, name or folder.name)
        if not folder.is_dir():
            raise ModelError(f"{folder}: no such model folder")
        self.tokenizer = load_tokenizer(folder)
        self.prompt = prompt_for(folder, scale, prompt)
        self.grade_ids = grade_token_ids(self.tokenizer, scale, self.prompt)
        try:
            self.model = AutoModelForCausalLM.from_pretrained(str(folder), local_files_only=True, dtype=torch.float32)
        except (OSError, ValueError) as exc:
            raise ModelError(f"{folder}: not a causal LM folder: {exc}") from exc
        self.model.to(device).eval()
        self.device = device
        self.batch_size = batch_size
        self.max_length = max_length
        self.cost_per_second = cost_per_second
        params = inspect.signature(self.model.forward).parameters
        self._takes_positions = "position_ids" in params
        self._keeps_last = "logits_to_keep" in params

    def _grade_logits(self, batch_ids: list[list[int]]) -> np.ndarray:
        """The grade tokens' next-token logits after each prompt: one forward pass, left padding."""
        import torch

        width = max(len(ids) for ids in batch_ids)
        pad = self.tokenizer.pad_token_id
        input_ids = torch.tensor([[pad] * (width - len(ids)) + ids for ids in batch_ids], device=self.device)
        mask = torch.tensor([[0] * (width - len(ids)) + [1] * len(ids) for ids in batch_ids], device=self.device)
        kwargs = {"input_ids": input_ids, "attention_mask": mask}
        if self._takes_positions:
            kwargs["position_ids"] = (mask.cumsum(-1) - 1).clamp(min=0)
        if self._keeps_last:
            kwargs["logits_to_keep"] = 1
        with torch.inference_mode():
            logits = self.model(**kwargs).logits[:, -1, :]
        return logits[:, self.grade_ids].float().cpu().numpy()

    def score(self, pairs: Sequence[Pair]) -> Scores:
        from relforge.tiers._heads import softmax

        n = len(pairs)
        probs = np.full((n, self.scale.n), np.nan, dtype=np.float32)
        failed = np.zeros(n, dtype=bool)
        cost = np.zeros(n, dtype=np.float32)
        errors: list[str | None] = [None] * n
        ids: list[list[int]] = [[] for _ in range(n)]
        for i, pair in enumerate(pairs):
            try:
                text = fit_prompt(self.tokenizer, self.scale, pair.query, pair.text, self.prompt, self.max_length)
                ids[i] = prompt_token_ids(self.tokenizer, text)
            except RelforgeError as exc:
                failed[i], errors[i] = True, str(exc)
        todo = [i for i in range(n) if not failed[i]]
        buckets = length_buckets([len(ids[i]) for i in todo], self.batch_size)
        for bucket in track(buckets, f"{self.name}: causal-lm"):
            batch = np.asarray(todo)[bucket]
            start = time.perf_counter()
            try:
                probs[batch] = softmax(self._grade_logits([ids[i] for i in batch]).astype(np.float64))
            except RuntimeError as exc:  # torch errors (out of memory, ...): the batch fails, the run goes on
                log_event(_log, "batch failed", level=30, tier=self.name, pairs=len(batch), error=str(exc)[:200])
                failed[batch] = True
                for i in batch:
                    errors[i] = f"causal-lm batch failed: {exc}"
            cost[batch] = share_seconds(time.perf_counter() - start, [len(ids[i]) for i in batch], self.cost_per_second)
        return Scores(probs, failed, cost, errors)
