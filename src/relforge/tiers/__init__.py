"""Tiers: scorers that turn (query, item) pairs into calibrated-ready class probabilities.

One interface (:class:`TierScorer`: pairs in, one probability per grade out, a cost per pair)
and four backends: ``cross-encoder`` (:class:`CrossEncoderScorer`), ``causal-lm``
(:class:`CausalLMScorer`), ``tgi`` (:class:`TGIScorer`) and ``openai`` (:class:`OpenAIScorer`);
:func:`load_scorer` builds one from a tier's configuration.
"""

from relforge.tiers._prompts import (
    Prompt,
    fit_prompt,
    grade_token_ids,
    load_prompt,
    prompt_token_ids,
    render_prompt,
    server_prompt_text,
)
from relforge.tiers._scorer import Pair, Scores, TierScorer

__all__ = [
    "Pair",
    "Prompt",
    "Scores",
    "TierScorer",
    "fit_prompt",
    "grade_token_ids",
    "load_prompt",
    "prompt_token_ids",
    "render_prompt",
    "server_prompt_text",
]

from relforge.tiers._heads import DESCRIPTOR, TierDescriptor, ordinal_to_probs, softmax

__all__ += ["DESCRIPTOR", "TierDescriptor", "ordinal_to_probs", "softmax"]

# The backends import torch, transformers and huggingface_hub only when a scorer is built.
from relforge.tiers._causal_lm import CausalLMScorer, load_tokenizer
from relforge.tiers._cross_encoder import CrossEncoderScorer
from relforge.tiers._factory import load_scorer, resolve_model_ref
from relforge.tiers._openai import OpenAIScorer
from relforge.tiers._remote import RemoteError, RemotePolicy, RemoteScorer
from relforge.tiers._tgi import TGIScorer
from relforge.tiers._top_tokens import TopToken, grade_probs_from_top

__all__ += [
    "CausalLMScorer",
    "CrossEncoderScorer",
    "OpenAIScorer",
    "RemoteError",
    "RemotePolicy",
    "RemoteScorer",
    "TGIScorer",
    "TopToken",
    "grade_probs_from_top",
    "load_scorer",
    "load_tokenizer",
    "resolve_model_ref",
]
