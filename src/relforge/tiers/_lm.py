"""The one forward pass of a local causal LM tier: grade-token logits and hidden states.

Every local LLM path (the ``causal-lm`` scorer, the probe's features for training and for
scoring, the tier measurements) runs its prompts through :class:`PromptedLM`:

- **shared prefix, computed once**: all prompts of a tier start with the same prefix
  (:class:`~relforge.tiers.PromptBuilder`); its key/value cache and its per-layer hidden
  state sums are computed once and reused by every batch, which then runs only the pairs'
  suffixes (query, item, the template's end);
- **right padding, one position**: suffixes are padded on the right, so real tokens never
  see a pad and all rows share their positions after the prefix; a row's answer position is
  its last real token;
- **only the layers needed**: when only hidden states are wanted (a probe reads one middle
  layer), the forward stops after the deepest layer asked for;
- **dtype, device and threads** from the run's compute settings (:mod:`relforge.compute`).

Hidden-state index ``l`` means what ``output_hidden_states`` means in transformers: ``0`` the
embeddings (the input of the first layer), ``1..n-1`` the outputs of layers ``0..n-2``, ``n``
the final-normed output of the last layer. ``mean`` pooling averages a layer over every
prompt token, prefix included (the prefix's sum is precomputed); ``last-token`` reads the
position where the answer begins.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from relforge.errors import ModelError
from relforge.grades import GradeScale
from relforge.tiers._prompts import Prompt, PromptBuilder, grade_token_ids

POOLINGS = ("last-token", "mean")


def load_tokenizer(folder: str | Path):
    """The tokenizer of a model folder (local files only); pads on the left, as servers' clients expect."""
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(str(folder), local_files_only=True)
    except (OSError, ValueError) as exc:
        raise ModelError(f"{folder}: no usable tokenizer: {exc}") from exc
    tokenizer.padding_side = "left"
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_causal_lm(folder: str | Path, device: str | None = None, dtype: str | None = None, tokenizer=None):
    """A local causal LM folder's model and tokenizer, on the run's compute settings.

    The one loader of every local causal LM path (:class:`PromptedLM` for grading and
    features, :class:`~relforge.tiers.LocalQueryGenerator` for generation).

    Args:
        folder: a transformers causal LM folder (with its tokenizer).
        device: torch device (default: the run's compute device).
        dtype: ``float32`` / ``bfloat16`` / ``float16`` (default: the run's compute dtype).
        tokenizer: the folder's tokenizer when the caller loaded it already.

    Returns:
        ``(model, tokenizer, device, dtype)``: the model in eval mode on ``device``; the
        tokenizer pads on the left (:func:`load_tokenizer`).

    Raises:
        ModelError: no such folder, or not a causal LM folder.
    """
    import torch
    from transformers import AutoModelForCausalLM

    from relforge import compute

    folder = Path(folder)
    if not folder.is_dir():
        raise ModelError(f"{folder}: no such model folder")
    settings = compute.current()
    device = device or settings.device
    dtype = dtype or settings.dtype
    tokenizer = tokenizer if tokenizer is not None else load_tokenizer(folder)
    try:
        model = AutoModelForCausalLM.from_pretrained(str(folder), local_files_only=True, dtype=getattr(torch, dtype))
    except (OSError, ValueError) as exc:
        raise ModelError(f"{folder}: not a causal LM folder: {exc}") from exc
    return model.to(device).eval(), tokenizer, device, dtype


def feature_key(pooling: str, layer: int) -> str:
    """The name of a feature: ``mean@15``."""
    return f"{pooling}@{layer}"


def layer_index(fraction: float, n_layers: int) -> int:
    """The hidden-state index for a depth fraction (0 = embeddings, 1 = last layer).

    Example:
        >>> layer_index(0.5, 30), layer_index(1.0, 30)
        (15, 30)
    """
    return round(fraction * n_layers)


class _Stop(Exception):
    """Raised by a hook once the deepest hidden state asked for is captured."""


class PromptedLM:
    """A causal LM reading a tier's prompts (see the module docstring).

    Args:
        folder: a transformers causal LM folder (with its tokenizer).
        scale: the grade scale (its prompt and grade tokens).
        prompt: the prompt (default: the scale's shipped prompt).
        max_length: tokens per prompt, prefix included.
        device: torch device (default: the run's compute device).
        dtype: ``float32`` / ``bfloat16`` / ``float16`` (default: the run's compute dtype).

    Raises:
        ModelError: not a causal LM folder, or grade tokens that are not single tokens.

    Example:
        >>> lm = PromptedLM("smollm2", ESCI, max_length=192)                       # doctest: +SKIP
        >>> out = lm.forward([lm.builder.suffix_ids("red shoes", "Trail shoe | red")], layers=[15])  # doctest: +SKIP
        >>> out["grade_logits"].shape, out["mean@15"].shape                          # doctest: +SKIP
        ((1, 4), (1, 576))
    """

    def __init__(
        self,
        folder: str | Path,
        scale: GradeScale,
        prompt: Prompt | None = None,
        max_length: int = 256,
        device: str | None = None,
        dtype: str | None = None,
    ):
        import torch

        self.folder = Path(folder)
        if not self.folder.is_dir():
            raise ModelError(f"{folder}: no such model folder")
        self.tokenizer = load_tokenizer(folder)
        self.builder = PromptBuilder(self.tokenizer, scale, prompt, max_length=max_length)
        self.grade_ids = grade_token_ids(self.tokenizer, scale, self.builder.prompt)  # checked before the weights load
        self.model, _, self.device, self.dtype = load_causal_lm(folder, device, dtype, tokenizer=self.tokenizer)
        text = self.model.config.get_text_config()
        self.n_layers, self.hidden_size = int(text.num_hidden_layers), int(text.hidden_size)
        decoder = self.model.get_decoder()
        self._layers, self._norm = decoder.layers, getattr(decoder, "norm", None)
        if len(self._layers) != self.n_layers or self._norm is None:
            raise ModelError(f"{folder}: unsupported layout (expected decoder.layers and decoder.norm)")
        self.pad_id = self.tokenizer.pad_token_id
        self._prefix = None
        # The grade tokens' logits from the normed last hidden state and the output embeddings'
        # grade rows (4 logits per pair, not the whole vocabulary), with the model's final
        # soft-capping where it has one; a model with any other output scaling goes through
        # its own head instead.
        self._softcap = getattr(text, "final_logit_softcapping", None)
        scaled = any(getattr(text, a, None) not in (None, 1, 1.0) for a in ("logit_scale", "logits_scaling"))
        head = self.model.get_output_embeddings()
        self._own_head = scaled or head is None or not hasattr(head, "weight")
        if not self._own_head:
            rows = torch.tensor(self.grade_ids, device=self.device)
            self._grade_weight = head.weight.detach()[rows].float()
            bias = getattr(head, "bias", None)
            self._grade_bias = None if bias is None else bias.detach()[rows].float()

    @property
    def prefix_length(self) -> int:
        return len(self.builder.prefix_ids)

    # -- the prefix, once ------------------------------------------------------------------
    def _prefix_state(self):
        """The prefix's key/value cache and the sum over its tokens of every hidden state."""
        import torch

        if self._prefix is None:
            ids = torch.tensor([self.builder.prefix_ids], device=self.device)
            with torch.inference_mode():
                out = self.model(input_ids=ids, use_cache=True, output_hidden_states=True, logits_to_keep=1)
            sums = torch.stack([h[0].float().sum(0) for h in out.hidden_states])  # (n_layers + 1, H)
            self._prefix = (out.past_key_values, sums)
        return self._prefix

    # -- hidden states by hooks ------------------------------------------------------------
    def _hooks(self, layers: Sequence[int], captured: dict[int, object], stop_after: int | None) -> list:
        handles = []
        for layer in sorted(set(layers)):
            if not 0 <= layer <= self.n_layers:
                raise ValueError(f"layer {layer} outside 0..{self.n_layers}")

            def keep(tensor, layer=layer):
                captured[layer] = tensor
                if stop_after is not None and layer == stop_after:
                    raise _Stop

            if layer == 0:
                handles.append(self._layers[0].register_forward_pre_hook(
                    lambda module, args, kwargs, keep=keep: keep(args[0] if args else kwargs["hidden_states"]),
                    with_kwargs=True))
            else:
                module = self._norm if layer == self.n_layers else self._layers[layer - 1]
                handles.append(module.register_forward_hook(
                    lambda module, args, output, keep=keep: keep(output[0] if isinstance(output, tuple) else output)))
        return handles

    # -- one batch -------------------------------------------------------------------------
    def forward(
        self,
        suffixes: Sequence[Sequence[int]],
        layers: Sequence[int] = (),
        poolings: Sequence[str] = POOLINGS,
        logits: bool = True,
    ) -> dict[str, np.ndarray]:
        """One forward pass over a batch of suffixes (each follows the shared prefix).

        Args:
            suffixes: each pair's suffix token ids (:meth:`PromptBuilder.suffix_ids`).
            layers: hidden-state indices to return (0..n_layers).
            poolings: ``last-token`` and/or ``mean``.
            logits: return the grade tokens' next-token logits (runs every layer); without
                them the pass stops after the deepest layer asked for.

        Returns:
            ``grade_logits`` ``(B, K)`` when ``logits``; one ``(B, H)`` float32 array per
            :func:`feature_key` of ``poolings`` x ``layers``.
        """
        import torch

        unknown = set(poolings) - set(POOLINGS)
        if unknown:
            raise ValueError(f"unknown pooling(s) {sorted(unknown)}; use {POOLINGS}")
        if not logits and not layers:
            raise ValueError("ask for logits, hidden states, or both")
        cache, sums = self._prefix_state()
        b, p = len(suffixes), self.prefix_length
        lens = torch.tensor([len(s) for s in suffixes], device=self.device)
        width = int(lens.max())
        ids = torch.full((b, width), self.pad_id, dtype=torch.long, device=self.device)
        for row, s in enumerate(suffixes):
            ids[row, : len(s)] = torch.tensor(s, dtype=torch.long, device=self.device)
        real = torch.arange(width, device=self.device)[None, :] < lens[:, None]
        mask = torch.cat([torch.ones((b, p), dtype=torch.long, device=self.device), real.long()], dim=1)
        positions = (p + torch.arange(width, device=self.device)).expand(b, width)
        batch_cache = copy.deepcopy(cache)
        batch_cache.batch_repeat_interleave(b)
        captured: dict[int, object] = {}
        handles = self._hooks(layers, captured, None if logits else max(layers))
        last = lens - 1
        kwargs = {"input_ids": ids, "attention_mask": mask, "position_ids": positions,
                  "past_key_values": batch_cache, "use_cache": True}
        out: dict[str, np.ndarray] = {}
        rows = torch.arange(b, device=self.device)
        try:
            with torch.inference_mode():
                if logits and self._own_head:
                    keep = torch.unique(last)  # the answer positions of this batch (few distinct values)
                    result = self.model(**kwargs, logits_to_keep=keep)
                    chosen = result.logits[rows, torch.searchsorted(keep, last)]
                    out["grade_logits"] = chosen[:, self.grade_ids].float().cpu().numpy()
                elif logits:
                    hidden = self.model.get_decoder()(**kwargs).last_hidden_state[rows, last].float()
                    grade = hidden @ self._grade_weight.T
                    if self._grade_bias is not None:
                        grade = grade + self._grade_bias
                    if self._softcap:
                        grade = torch.tanh(grade / self._softcap) * self._softcap
                    out["grade_logits"] = grade.cpu().numpy()
                else:
                    try:
                        self.model.get_decoder()(**kwargs)
                    except _Stop:
                        pass
        finally:
            for handle in handles:
                handle.remove()
        for layer in layers:
            states = captured[layer].float()
            if "last-token" in poolings:
                out[feature_key("last-token", layer)] = states[torch.arange(b, device=self.device), last].cpu().numpy()
            if "mean" in poolings:
                total = (states * real[..., None]).sum(1) + sums[layer]
                out[feature_key("mean", layer)] = (total / (p + lens)[:, None]).cpu().numpy()
        return out

    def timed_forward(self, suffixes: Sequence[Sequence[int]], **kwargs) -> tuple[dict[str, np.ndarray], float]:
        """:meth:`forward` and its wall seconds."""
        start = time.perf_counter()
        out = self.forward(suffixes, **kwargs)
        return out, time.perf_counter() - start
