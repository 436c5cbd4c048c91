"""A ``probe`` tier: a frozen causal LM's hidden state at one layer, read by a small linear head.

The folder holds ``relforge_tier.json`` (backend ``probe``), ``probe.json`` (layer, pooling,
prompt length) and ``probe_head.safetensors`` (:class:`ProbeHead`); the LLM itself is the
descriptor's ``base_model`` reference, resolved when the scorer is built. Scoring runs the LLM
only up to the probe's layer (:class:`~relforge.tiers.PromptedLM`). The head is fitted by
``relforge.finetune`` (``fit_probe_head``); here it is only read and applied.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from relforge.config import ModelsConfig
from relforge.errors import ModelError
from relforge.grades import GradeScale
from relforge.tiers._features import PromptEncoder
from relforge.tiers._heads import TierDescriptor, ordinal_to_probs, softmax
from relforge.tiers._lm import feature_key
from relforge.tiers._scorer import Pair, Scores, TierScorer

HEAD_FILE = "probe_head.safetensors"
PROBE_FILE = "probe.json"


@dataclass
class ProbeHead:
    """A linear head on standardised features.

    Attributes:
        head: ``softmax`` (``weight`` ``(K, H)``, ``bias`` ``(K,)``) or ``ordinal``
            (``weight`` ``(1, H)``, ``bias`` ``(K - 1,)``: CORAL).
        mean, std: the standardisation, ``(H,)``.
    """

    head: str
    mean: np.ndarray
    std: np.ndarray
    weight: np.ndarray
    bias: np.ndarray

    def logits(self, features: np.ndarray) -> np.ndarray:
        z = (np.asarray(features, dtype=np.float64) - self.mean) / self.std
        return z @ self.weight.T.astype(np.float64) + self.bias.astype(np.float64)

    def probs(self, features: np.ndarray) -> np.ndarray:
        """Grade probabilities, ``(n, K)``."""
        raw = self.logits(features)
        return ordinal_to_probs(raw) if self.head == "ordinal" else softmax(raw)

    def save(self, folder: str | Path) -> Path:
        from safetensors.numpy import save_file

        path = Path(folder) / HEAD_FILE
        arrays = {k: np.ascontiguousarray(getattr(self, k), dtype=np.float32) for k in ("mean", "std", "weight", "bias")}
        save_file(arrays, str(path), metadata={"head": self.head})
        return path

    @classmethod
    def load(cls, folder: str | Path) -> ProbeHead:
        from safetensors import safe_open

        path = Path(folder) / HEAD_FILE
        if not path.is_file():
            raise ModelError(f"{folder}: no {HEAD_FILE}")
        with safe_open(str(path), framework="numpy") as f:
            head = (f.metadata() or {}).get("head")
            arrays = {k: f.get_tensor(k) for k in ("mean", "std", "weight", "bias")}
        if head not in ("softmax", "ordinal"):
            raise ModelError(f"{path}: unknown head {head!r}")
        return cls(head=head, **arrays)


class ProbeScorer(TierScorer):
    """A probe tier: the frozen LLM's features of each pair (up to the probe's layer only), read by the head.

    Args:
        folder: the probe folder (``relforge_tier.json`` with backend ``probe``).
        scale: the grade scale (must match the descriptor's).
        models: how to resolve the descriptor's ``base_model`` (default: ``ModelsConfig()``).
        base: the LLM folder, overriding the descriptor's reference.
        name: the model's name in the ``labels`` table (default: the folder's name).
        batch_size: prompts per forward pass (default: the probe's).
        device: torch device (default: the run's compute device).
        cost_per_second: price of one second; a pair's cost is its share of the batch time.

    Example:
        >>> scorer = ProbeScorer("models/tier2", ESCI)                     # doctest: +SKIP
        >>> scorer.score([Pair("red shoes", "Trail shoe | red")]).probs.shape  # doctest: +SKIP
        (1, 4)
    """

    backend = "probe"

    def __init__(
        self,
        folder: str | Path,
        scale: GradeScale,
        models: ModelsConfig | None = None,
        base: str | Path | None = None,
        name: str | None = None,
        batch_size: int | None = None,
        device: str | None = None,
        cost_per_second: float = 1.0,
    ):
        from relforge.tiers._factory import resolve_model_ref

        folder = Path(folder)
        super().__init__(scale, name or folder.name)
        descriptor = TierDescriptor.load(folder)
        if descriptor is None or descriptor.backend != "probe":
            raise ModelError(f"{folder}: not a probe folder (relforge_tier.json with backend `probe`)")
        if descriptor.grade_scale.names != scale.names:
            raise ModelError(f"{folder}: trained on grades {descriptor.grade_scale.names}, the data's are {scale.names}")
        try:
            spec = json.loads((folder / PROBE_FILE).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ModelError(f"{folder}: no {PROBE_FILE}") from None
        self.head = ProbeHead.load(folder)
        if self.head.head != descriptor.head:
            raise ModelError(f"{folder}: descriptor says head {descriptor.head}, {HEAD_FILE} holds {self.head.head}")
        base_folder = Path(base) if base is not None else resolve_model_ref(descriptor.base_model, models or ModelsConfig())
        self.key = feature_key(spec["pooling"], int(spec["layer"]))
        self.encoder = PromptEncoder(
            base_folder, scale, layers=[int(spec["layer"])], poolings=[spec["pooling"]],
            max_length=int(spec["max_length"]), batch_size=batch_size or int(spec.get("batch_size", 16)),
            prompt=descriptor.prompt, device=device, logits=False,
        )
        if self.encoder.n_layers != int(spec["n_layers"]):
            raise ModelError(
                f"{folder}: the probe was trained on a {spec['n_layers']}-layer model, "
                f"{base_folder} has {self.encoder.n_layers} layers"
            )
        self.cost_per_second = cost_per_second

    def score(self, pairs: Sequence[Pair]) -> Scores:
        n = len(pairs)
        probs = np.full((n, self.scale.n), np.nan, dtype=np.float32)
        if n == 0:
            return Scores(probs, np.zeros(0, dtype=bool), np.zeros(0, dtype=np.float32))
        errors: list[str | None] = [None] * n
        # a torch error (out of memory, ...) fails its batch only; the run goes on
        feats = self.encoder.encode(pairs, f"{self.name}: probe", fail_batches=True)
        failed = feats["failed"].copy()
        ok = ~failed
        if ok.any():
            probs[ok] = self.head.probs(feats[self.key][ok])
        for i in np.flatnonzero(failed):
            errors[i] = "the prompt does not fit max_length, or its batch's forward pass failed"
        return Scores(probs, failed, (feats["seconds"] * self.cost_per_second).astype(np.float32), errors,
                      tokens=np.where(failed, 0, feats["tokens"]).astype(np.int32))
