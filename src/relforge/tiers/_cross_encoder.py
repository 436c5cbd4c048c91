"""The ``cross-encoder`` backend: a sentence-transformers ``CrossEncoder`` on this machine.

How the model's outputs become one probability per grade:

- a folder with ``relforge_tier.json`` says its head: ``softmax`` (``K`` logits, softmax) or
  ``ordinal`` (``K - 1`` cumulative logits for P(grade > k), :func:`ordinal_to_probs`);
- a folder without it is read as ``softmax`` when it has exactly ``K`` outputs;
- a plain 1-output cross-encoder (a relevance score, e.g. an MS MARCO re-ranker) is refused
  with a :class:`~relforge.errors.ModelError`: one score cannot be turned into ``K`` grade
  probabilities without inventing thresholds; fine-tune it first (``finetune-tiers``).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from relforge.errors import ModelError
from relforge.grades import GradeScale
from relforge.logs import get_logger, log_event, track
from relforge.tiers._heads import TierDescriptor, head_probs
from relforge.tiers._local import length_buckets, share_seconds
from relforge.tiers._prompts import fit_fields
from relforge.tiers._scorer import Pair, Scores, TierScorer

_log = get_logger("tiers.cross_encoder")


def _head_of(folder: Path, descriptor: TierDescriptor | None, n_outputs: int, scale: GradeScale) -> str:
    """The head (``softmax`` or ``ordinal``) of a cross-encoder folder, checked against the scale."""
    if descriptor is not None:
        if descriptor.grade_scale.names != scale.names:
            raise ModelError(
                f"{folder}: the model was trained on grades {descriptor.grade_scale.names}, "
                f"the data's scale is {scale.names}"
            )
        head = descriptor.head
        if head not in ("softmax", "ordinal"):
            raise ModelError(f"{folder}: head `{head}` is not a cross-encoder head (softmax, ordinal)")
    elif n_outputs == scale.n:
        head = "softmax"
    elif n_outputs == 1:
        raise ModelError(
            f"{folder}: a cross-encoder with one output gives a relevance score, not {scale.n} grade "
            "probabilities; fine-tune it on the grade scale first (finetune-tiers), which writes a "
            "softmax or ordinal head and relforge_tier.json"
        )
    else:
        raise ModelError(
            f"{folder}: {n_outputs} outputs and no relforge_tier.json; expected {scale.n} (softmax) "
            f"or a descriptor saying `ordinal` ({scale.n - 1} outputs)"
        )
    expected = scale.n if head == "softmax" else scale.n - 1
    if n_outputs != expected:
        raise ModelError(f"{folder}: head `{head}` needs {expected} outputs for {scale.n} grades, the model has {n_outputs}")
    return head


def cross_encoder_inputs(tokenizer, pairs: Sequence[Pair], max_length: int) -> list[tuple[str, str]]:
    """The (query, item text) pairs as a cross-encoder reads them, in training and in scoring:
    the item text cut by field (:func:`~relforge.tiers.fit_fields`) to the tokens the query
    and the special tokens leave under ``max_length``."""
    out = []
    for p in pairs:
        query_tokens = len(tokenizer(p.query, add_special_tokens=False)["input_ids"])
        out.append((p.query, fit_fields(tokenizer, p.text, max_length - query_tokens - 3)))
    return out


def _refuse_causal_lm(folder: Path) -> None:
    """A causal LM folder would load as a randomly-headed classifier: refuse it by name."""
    config = folder / "config.json"
    if config.is_file():
        architectures = json.loads(config.read_text(encoding="utf-8")).get("architectures") or []
        if any(a.endswith("ForCausalLM") for a in architectures):
            raise ModelError(f"{folder}: a causal LM ({', '.join(architectures)}), not a cross-encoder; use the causal-lm backend")


class CrossEncoderScorer(TierScorer):
    """Scores pairs with a local cross-encoder, batched by length.

    Args:
        folder: a model folder that ``sentence_transformers.CrossEncoder`` loads.
        scale: the grade scale.
        name: the model's name in the ``labels`` table (default: the folder's name).
        batch_size: pairs per forward pass.
        max_length: tokens per pair (default: the length the model was fine-tuned at, from its
            ``relforge_tier.json``, else 256); a longer item text is cut by field
            (:func:`~relforge.tiers.fit_fields`), then the tokenizer truncates what remains.
        device: torch device (default: the run's compute device).
        cost_per_second: price of one second of this machine; a pair's cost is its share of
            its batch's wall time (by tokens) times this price.

    Example:
        >>> scorer = CrossEncoderScorer("models/tier1", ESCI)            # doctest: +SKIP
        >>> scorer.score([Pair("red shoes", "Trail running shoe, red")]).probs.shape  # doctest: +SKIP
        (1, 4)
    """

    backend = "cross-encoder"

    def __init__(
        self,
        folder: str | Path,
        scale: GradeScale,
        name: str | None = None,
        batch_size: int = 32,
        max_length: int | None = None,
        device: str | None = None,
        cost_per_second: float = 1.0,
    ):
        import torch
        from sentence_transformers import CrossEncoder

        from relforge import compute

        folder = Path(folder)
        super().__init__(scale, name or folder.name)
        if not folder.is_dir():
            raise ModelError(f"{folder}: no such model folder")
        descriptor = TierDescriptor.load(folder)
        _refuse_causal_lm(folder)
        max_length = max_length or (descriptor.max_length if descriptor else None) or 256
        settings = compute.current()
        try:
            self.model = CrossEncoder(
                str(folder), device=device or settings.device, max_length=max_length, local_files_only=True,
                model_kwargs={"dtype": settings.torch_dtype},
            )
        except (OSError, ValueError) as exc:
            raise ModelError(f"{folder}: not a cross-encoder model folder: {exc}") from exc
        self.head = _head_of(folder, descriptor, int(self.model.num_labels), scale)
        self.batch_size = batch_size
        self.max_length = max_length
        self.cost_per_second = cost_per_second
        self._identity = torch.nn.Identity()

    def score(self, pairs: Sequence[Pair]) -> Scores:
        n = len(pairs)
        probs = np.full((n, self.scale.n), np.nan, dtype=np.float32)
        failed = np.zeros(n, dtype=bool)
        cost = np.zeros(n, dtype=np.float32)
        errors: list[str | None] = [None] * n
        if n == 0:
            return Scores(probs, failed, cost, errors)
        fitted = cross_encoder_inputs(self.model.tokenizer, pairs, self.max_length)
        encoded = self.model.tokenizer(
            [q for q, _ in fitted], [t for _, t in fitted], truncation=True, max_length=self.max_length
        )["input_ids"]
        tokens = [len(ids) for ids in encoded]
        for batch in track(length_buckets(tokens, self.batch_size), f"{self.name}: cross-encoder"):
            start = time.perf_counter()
            try:
                outputs = self.model.predict(
                    [fitted[i] for i in batch],
                    batch_size=len(batch),
                    activation_fn=self._identity,
                    convert_to_numpy=True,
                    show_progress_bar=False,
                )
                probs[batch] = head_probs(outputs, self.head)
            except RuntimeError as exc:  # torch errors (out of memory, ...): the batch fails, the run goes on
                log_event(_log, "batch failed", level=30, tier=self.name, pairs=len(batch), error=str(exc)[:200])
                failed[batch] = True
                for i in batch:
                    errors[i] = f"cross-encoder batch failed: {exc}"
            cost[batch] = share_seconds(time.perf_counter() - start, [tokens[i] for i in batch], self.cost_per_second)
        return Scores(probs, failed, cost, errors)
