"""Tiers: scorers that turn (query, item) pairs into calibrated-ready class probabilities."""

from relforge.tiers._prompts import Prompt, grade_token_ids, load_prompt, render_prompt
from relforge.tiers._scorer import Pair, Scores, TierScorer

__all__ = ["Pair", "Prompt", "Scores", "TierScorer", "grade_token_ids", "load_prompt", "render_prompt"]

from relforge.tiers._heads import DESCRIPTOR, TierDescriptor, ordinal_to_probs, softmax  # noqa: E402

__all__ += ["DESCRIPTOR", "TierDescriptor", "ordinal_to_probs", "softmax"]
