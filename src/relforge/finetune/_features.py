"""What a frozen causal LM reads in a prompt: its hidden states (the probe's features) and its
zero-shot grade-token logits, from one forward pass per batch, cached on disk.

A pair's prompt is rendered exactly as the ``causal-lm`` tier renders it (the grade scale's
prompt file, the model's chat template, the item text cut to fit ``max_length``). The forward
pass returns every layer's hidden states; the encoder keeps, for each requested layer, the
state at the prompt's last token (where the answer would begin) and the mean over the
prompt's tokens.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from relforge.errors import RelforgeError
from relforge.grades import GradeScale
from relforge.logs import get_logger, log_event, track
from relforge.tiers import Pair
from relforge.tiers._causal_lm import CausalLMScorer
from relforge.tiers._local import length_buckets, share_seconds
from relforge.tiers._prompts import fit_prompt, prompt_token_ids

log = get_logger("finetune.features")

POOLINGS = ("last-token", "mean")


def layer_index(fraction: float, n_layers: int) -> int:
    """The hidden-state index for a depth fraction (0 = embeddings, 1 = last layer).

    Example:
        >>> layer_index(0.5, 30), layer_index(1.0, 30)
        (15, 30)
    """
    return round(fraction * n_layers)


def feature_key(pooling: str, layer: int) -> str:
    return f"{pooling}@{layer}"


def count_layers(folder: str | Path) -> int:
    """The number of transformer layers of a model folder, read from its configuration."""
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(str(folder), local_files_only=True)
    return int(config.get_text_config().num_hidden_layers)


class PromptEncoder:
    """A frozen causal LM that turns pairs into probe features and zero-shot grade logits.

    Args:
        folder: a causal LM folder (with its tokenizer).
        scale: the grade scale (its prompt file and grade tokens).
        layers: hidden-state indices to keep (0 = embeddings, ``n_layers`` = last).
        poolings: ``last-token`` and/or ``mean``.
        max_length: prompt tokens; the item text is cut to fit.
        batch_size: prompts per forward pass.
        prompt: a prompt file (default: the scale's).
        device: torch device.

    Example:
        >>> enc = PromptEncoder("smollm2", ESCI, layers=[15, 30])             # doctest: +SKIP
        >>> out = enc.encode([Pair("red shoes", "Trail shoe, red")])          # doctest: +SKIP
        >>> out["last-token@30"].shape, out["grade_logits"].shape              # doctest: +SKIP
        ((1, 576), (1, 4))
    """

    def __init__(
        self,
        folder: str | Path,
        scale: GradeScale,
        layers: Sequence[int] | None = None,
        poolings: Sequence[str] = POOLINGS,
        max_length: int = 256,
        batch_size: int = 8,
        prompt: str | None = None,
        device: str = "cpu",
    ):
        self.lm = CausalLMScorer(folder, scale, prompt=prompt, batch_size=batch_size, max_length=max_length, device=device)
        self.folder = Path(folder)
        self.scale = scale
        self.n_layers = int(self.lm.model.config.get_text_config().num_hidden_layers)
        self.layers = sorted({self.n_layers if layer is None else int(layer) for layer in (layers or [self.n_layers])})
        bad = [layer for layer in self.layers if not 0 <= layer <= self.n_layers]
        if bad:
            raise ValueError(f"layers {bad} outside 0..{self.n_layers}")
        unknown = set(poolings) - set(POOLINGS)
        if unknown:
            raise ValueError(f"unknown pooling(s) {sorted(unknown)}; use {POOLINGS}")
        self.poolings = tuple(poolings)
        self.max_length = max_length
        self.batch_size = batch_size
        params = inspect.signature(self.lm.model.forward).parameters
        self._takes_positions = "position_ids" in params
        self._keeps_last = "logits_to_keep" in params

    @property
    def keys(self) -> list[str]:
        return [feature_key(p, layer) for layer in self.layers for p in self.poolings]

    def identity(self) -> str:
        """A digest of what determines the features: model files, layers, length, prompt."""
        files = sorted(
            (p.name, p.stat().st_size, int(p.stat().st_mtime))
            for p in self.folder.iterdir()
            if p.is_file() and p.suffix in (".safetensors", ".bin", ".json", ".jinja")
        )
        doc = {
            "folder": str(self.folder.resolve()),
            "files": files,
            "layers": self.layers,
            "poolings": self.poolings,
            "max_length": self.max_length,
            "prompt": self.lm.prompt.model_dump(),
            "grade_ids": list(self.lm.grade_ids),
        }
        return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()[:16]

    def _forward(self, batch_ids: list[list[int]]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        import torch

        width = max(len(ids) for ids in batch_ids)
        pad = self.lm.tokenizer.pad_token_id
        device = self.lm.device
        input_ids = torch.tensor([[pad] * (width - len(ids)) + ids for ids in batch_ids], device=device)
        mask = torch.tensor([[0] * (width - len(ids)) + [1] * len(ids) for ids in batch_ids], device=device)
        kwargs = {"input_ids": input_ids, "attention_mask": mask, "output_hidden_states": True}
        if self._takes_positions:
            kwargs["position_ids"] = (mask.cumsum(-1) - 1).clamp(min=0)
        if self._keeps_last:
            kwargs["logits_to_keep"] = 1
        with torch.inference_mode():
            out = self.lm.model(**kwargs)
        logits = out.logits[:, -1, self.lm.grade_ids].float().cpu().numpy()
        feats: dict[str, np.ndarray] = {}
        weights = mask.unsqueeze(-1).float()
        for layer in self.layers:
            states = out.hidden_states[layer].float()
            if "last-token" in self.poolings:
                feats[feature_key("last-token", layer)] = states[:, -1, :].cpu().numpy()
            if "mean" in self.poolings:
                feats[feature_key("mean", layer)] = ((states * weights).sum(1) / weights.sum(1)).cpu().numpy()
        return logits, feats

    def encode(self, pairs: Sequence[Pair], description: str | None = None) -> dict[str, np.ndarray]:
        """Features of ``pairs``.

        Returns:
            ``grade_logits`` ``(n, K)``; one ``(n, hidden)`` float32 array per
            :attr:`keys`; ``seconds`` ``(n,)``, each pair's share of its batch's wall time;
            ``failed`` ``(n,)`` bool (a prompt that cannot fit; its rows are NaN).
        """
        n = len(pairs)
        hidden = int(self.lm.model.config.get_text_config().hidden_size)
        out = {"grade_logits": np.full((n, self.scale.n), np.nan, dtype=np.float32)}
        for key in self.keys:
            out[key] = np.full((n, hidden), np.nan, dtype=np.float32)
        out["seconds"] = np.zeros(n, dtype=np.float32)
        out["failed"] = np.zeros(n, dtype=bool)
        ids: list[list[int]] = [[] for _ in range(n)]
        tok, prompt = self.lm.tokenizer, self.lm.prompt
        for i, pair in enumerate(pairs):
            try:
                ids[i] = prompt_token_ids(tok, fit_prompt(tok, self.scale, pair.query, pair.text, prompt, self.max_length))
            except RelforgeError as exc:
                out["failed"][i] = True
                log_event(log, "prompt does not fit", level=30, query=pair.query[:60], error=str(exc)[:120])
        todo = np.flatnonzero(~out["failed"])
        buckets = length_buckets([len(ids[i]) for i in todo], self.batch_size)
        for bucket in track(buckets, description or f"{self.folder.name}: features"):
            batch = todo[bucket]
            start = time.perf_counter()
            logits, feats = self._forward([ids[i] for i in batch])
            out["grade_logits"][batch] = logits
            for key, value in feats.items():
                out[key][batch] = value
            out["seconds"][batch] = share_seconds(time.perf_counter() - start, [len(ids[i]) for i in batch], 1.0)
        return out


def pair_key(pair: Pair) -> str:
    return hashlib.sha1(f"{pair.query}\x00{pair.text}".encode()).hexdigest()


class FeatureCache:
    """Features of pairs on disk, one ``.npz`` per encoder identity; only missing pairs are encoded.

    Args:
        folder: where the files live (created).

    Example:
        >>> feats = FeatureCache("~/.cache/relforge/features").get(encoder, pairs)   # doctest: +SKIP
    """

    def __init__(self, folder: str | Path):
        self.folder = Path(folder).expanduser()
        self.folder.mkdir(parents=True, exist_ok=True)

    def get(
        self, encoder: PromptEncoder, pairs: Sequence[Pair], description: str | None = None, chunk: int = 64
    ) -> dict[str, np.ndarray]:
        """The encoder's features for ``pairs``, in order, computing and storing those not cached.

        Missing pairs are encoded ``chunk`` at a time and each chunk is saved at once, so an
        interrupted run keeps what it computed.
        """
        path = self.folder / f"{encoder.folder.name}-{encoder.identity()}.npz"
        stored: dict[str, np.ndarray] = {}
        if path.is_file():
            with np.load(path, allow_pickle=False) as data:
                stored = {k: data[k] for k in data.files}
        keys = np.asarray([pair_key(p) for p in pairs])
        have = {k: i for i, k in enumerate(stored.get("keys", np.asarray([], dtype=str)).tolist())}
        first = {k: i for i, k in reversed(list(enumerate(keys.tolist())))}
        unique = [k for k in dict.fromkeys(keys.tolist()) if k not in have]
        for start in range(0, len(unique), chunk):
            part = unique[start : start + chunk]
            label = f"{description or encoder.folder.name} [{start + len(part)}/{len(unique)}]"
            fresh = encoder.encode([pairs[first[k]] for k in part], label)
            fresh["keys"] = np.asarray(part)
            stored = {k: np.concatenate([stored[k], fresh[k]]) for k in fresh} if stored else fresh
            tmp = path.with_name(path.stem + ".tmp.npz")
            np.savez(tmp, **stored)
            tmp.replace(path)
            log_event(log, "features cached", done=start + len(part), missing=len(unique), file=path.name)
        have = {k: i for i, k in enumerate(stored["keys"].tolist())} if stored else {}
        rows = np.asarray([have[k] for k in keys.tolist()], dtype=np.int64)
        return {k: v[rows] for k, v in stored.items() if k != "keys"}
