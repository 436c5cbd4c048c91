"""What a frozen causal LM reads in a tier's prompts: its hidden states (a probe's features) and
its zero-shot grade-token logits, from :class:`~relforge.tiers.PromptedLM`'s forward pass.

A pair's prompt is exactly the ``causal-lm`` tier's (the grade scale's prompt file, the
model's chat template, the item text cut by field to ``max_length``), so a probe trained on
these features reads at scoring time what it read in training.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from relforge.grades import GradeScale
from relforge.logs import get_logger, log_event, track
from relforge.tiers._causal_lm import prompt_for, suffix_ids_of
from relforge.tiers._lm import POOLINGS, PromptedLM, feature_key
from relforge.tiers._local import length_buckets, share_seconds
from relforge.tiers._scorer import Pair

_log = get_logger("tiers.features")


def count_layers(folder: str | Path) -> int:
    """The number of transformer layers of a model folder, read from its configuration."""
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(str(folder), local_files_only=True)
    return int(config.get_text_config().num_hidden_layers)


class PromptEncoder:
    """Probe features and zero-shot grade logits of pairs, in batches of similar length.

    Args:
        folder: a causal LM folder (with its tokenizer).
        scale: the grade scale (its prompt file and grade tokens).
        layers: hidden-state indices to keep (0 = embeddings, ``n_layers`` = last; default: last).
        poolings: ``last-token`` and/or ``mean``.
        max_length: prompt tokens (prefix included); the item text is cut by field to fit.
        batch_size: prompts per forward pass.
        prompt: a prompt file (default: the scale's).
        device: torch device (default: the run's compute device).
        logits: also compute the zero-shot grade logits (runs every layer; without them the
            forward stops after the deepest layer in ``layers``).

    Example:
        >>> enc = PromptEncoder("smollm2", ESCI, layers=[15], poolings=["mean"], logits=False)  # doctest: +SKIP
        >>> enc.encode([Pair("red shoes", "Trail shoe | red")])["mean@15"].shape     # doctest: +SKIP
        (1, 576)
    """

    def __init__(
        self,
        folder: str | Path,
        scale: GradeScale,
        layers: Sequence[int] | None = None,
        poolings: Sequence[str] = POOLINGS,
        max_length: int = 192,
        batch_size: int = 16,
        prompt: str | None = None,
        device: str | None = None,
        logits: bool = True,
    ):
        self.folder, self.scale = Path(folder), scale
        self.lm = PromptedLM(folder, scale, prompt_for(folder, scale, prompt), max_length, device)
        self.n_layers = self.lm.n_layers
        self.layers = sorted({self.n_layers if layer is None else int(layer) for layer in (layers or [self.n_layers])})
        bad = [layer for layer in self.layers if not 0 <= layer <= self.n_layers]
        if bad:
            raise ValueError(f"layers {bad} outside 0..{self.n_layers}")
        unknown = set(poolings) - set(POOLINGS)
        if unknown:
            raise ValueError(f"unknown pooling(s) {sorted(unknown)}; use {POOLINGS}")
        self.poolings = tuple(poolings)
        self.max_length, self.batch_size, self.logits = max_length, batch_size, logits

    @property
    def keys(self) -> list[str]:
        return [feature_key(p, layer) for layer in self.layers for p in self.poolings]

    def identity(self) -> str:
        """A digest of what determines the features: model files, layers, length, prompt, dtype."""
        files = sorted(
            (p.name, p.stat().st_size, int(p.stat().st_mtime))
            for p in self.folder.iterdir()
            if p.is_file() and p.suffix in (".safetensors", ".bin", ".json", ".jinja")
        )
        doc = {
            "folder": str(self.folder.resolve()), "files": files, "layers": self.layers, "poolings": self.poolings,
            "max_length": self.max_length, "prompt": self.lm.builder.prompt.model_dump(),
            "grade_ids": list(self.lm.grade_ids), "dtype": self.lm.dtype, "logits": self.logits,
        }
        return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()[:16]

    def encode(self, pairs: Sequence[Pair], description: str | None = None, fail_batches: bool = False) -> dict[str, np.ndarray]:
        """Features of ``pairs``.

        With ``fail_batches``, a batch whose forward pass raises a torch error (out of memory,
        ...) is marked failed and the others go on (what a scorer does); else the error is raised.

        Returns:
            ``grade_logits`` ``(n, K)`` (NaN unless ``logits``); one ``(n, hidden)`` float32
            array per :attr:`keys`; ``seconds`` ``(n,)``, each pair's share of its batch's
            wall time; ``tokens`` ``(n,)`` the prompt's tokens (prefix included); ``failed``
            ``(n,)`` bool (a prompt that cannot fit; its rows are NaN).
        """
        n = len(pairs)
        out = {"grade_logits": np.full((n, self.scale.n), np.nan, dtype=np.float32)}
        for key in self.keys:
            out[key] = np.full((n, self.lm.hidden_size), np.nan, dtype=np.float32)
        out["seconds"] = np.zeros(n, dtype=np.float32)
        ids, out["failed"], _ = suffix_ids_of(self.lm, pairs)
        out["tokens"] = np.asarray([len(s) + self.lm.prefix_length for s in ids], dtype=np.int32)
        todo = np.flatnonzero(~out["failed"])
        buckets = length_buckets([len(ids[i]) for i in todo], self.batch_size)
        for bucket in track(buckets, description or f"{self.folder.name}: features"):
            batch = todo[bucket]
            try:
                feats, seconds = self.lm.timed_forward(
                    [ids[i] for i in batch], layers=self.layers, poolings=self.poolings, logits=self.logits)
            except RuntimeError as exc:
                if not fail_batches:
                    raise
                log_event(_log, "batch failed", level=30, model=self.folder.name, pairs=len(batch), error=str(exc)[:200])
                out["failed"][batch] = True
                continue
            for key, value in feats.items():
                out[key][batch] = value
            out["seconds"][batch] = share_seconds(seconds, [len(ids[i]) for i in batch], 1.0)
        return out
