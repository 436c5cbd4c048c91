"""Tiers: scorers that turn (query, item) pairs into grade probabilities; every tier model's
forward pass lives here, written once.

One interface (:class:`TierScorer`: pairs in, one probability per grade out, a cost per pair)
and its backends: ``cross-encoder`` (:class:`CrossEncoderScorer`), ``causal-lm``
(:class:`CausalLMScorer`, and :class:`ProbeScorer` for a probe folder), ``tgi``
(:class:`TGIScorer`), ``openai`` (:class:`OpenAIScorer`) and ``bi-encoder``
(:class:`BiEncoderScorer`: an embedding model's cosine through an ordered-logit map; the
embedding model and its item-vector cache, :func:`load_encoder` / :class:`EmbeddingCache`,
are shared with the dense mining channel); :func:`load_scorer` builds one from a tier's
configuration; :class:`TierPool` operates the Kubernetes pool serving a remote tier (model,
scale-up from zero, readiness, scale-down). :class:`PromptedLM` is the one forward pass of a local causal LM
(shared prompt prefix computed once, only the layers needed); :class:`PromptEncoder` reads
features for the probes; :class:`PromptBuilder` renders and fits the prompts for local and
remote backends alike. Generation is a tier capability too: :class:`QueryGenerator` (local
causal LM, ``tgi``, ``openai``; :func:`load_generator`) writes queries from the chats of a
:class:`QueryPrompt` (the prompt file ``prompts/query-writer.yaml``).

The backends import torch, transformers and huggingface_hub only when they are used.
"""

from relforge._lazy import lazy_exports

_EXPORTS = {
    # interface and heads
    "Pair": "relforge.tiers._scorer",
    "Scores": "relforge.tiers._scorer",
    "TierScorer": "relforge.tiers._scorer",
    "DESCRIPTOR": "relforge.tiers._heads",
    "TierDescriptor": "relforge.tiers._heads",
    "head_probs": "relforge.tiers._heads",
    "ordinal_to_probs": "relforge.tiers._heads",
    "softmax": "relforge.tiers._heads",
    # prompts
    "FIELD_SEPARATOR": "relforge.tiers._prompts",
    "Prompt": "relforge.tiers._prompts",
    "PromptBuilder": "relforge.tiers._prompts",
    "fit_fields": "relforge.tiers._prompts",
    "grade_token_ids": "relforge.tiers._prompts",
    "load_prompt": "relforge.tiers._prompts",
    "prompt_token_ids": "relforge.tiers._prompts",
    "render_prompt": "relforge.tiers._prompts",
    "server_prompt_text": "relforge.tiers._prompts",
    # local models
    "POOLINGS": "relforge.tiers._lm",
    "PromptedLM": "relforge.tiers._lm",
    "feature_key": "relforge.tiers._lm",
    "layer_index": "relforge.tiers._lm",
    "load_tokenizer": "relforge.tiers._lm",
    "load_causal_lm": "relforge.tiers._lm",
    "CausalLMScorer": "relforge.tiers._causal_lm",
    "DEFAULT_LLM_MAX_LENGTH": "relforge.tiers._causal_lm",
    "length_for": "relforge.tiers._causal_lm",
    "prompt_for": "relforge.tiers._causal_lm",
    "PromptEncoder": "relforge.tiers._features",
    "count_layers": "relforge.tiers._features",
    "HEAD_FILE": "relforge.tiers._probe",
    "PROBE_FILE": "relforge.tiers._probe",
    "ProbeHead": "relforge.tiers._probe",
    "ProbeScorer": "relforge.tiers._probe",
    "CrossEncoderScorer": "relforge.tiers._cross_encoder",
    "BiEncoder": "relforge.tiers._bi_encoder",
    "BiEncoderScorer": "relforge.tiers._bi_encoder",
    "DEFAULT_BI_MAX_LENGTH": "relforge.tiers._bi_encoder",
    "EmbeddingCache": "relforge.tiers._encoder",
    "Encoder": "relforge.tiers._encoder",
    "has_words": "relforge.tiers._encoder",
    "load_encoder": "relforge.tiers._encoder",
    "model_fingerprint": "relforge.tiers._encoder",
    "cross_encoder_inputs": "relforge.tiers._cross_encoder",
    "length_buckets": "relforge.tiers._local",
    "share_seconds": "relforge.tiers._local",
    # remote servers
    "OpenAIScorer": "relforge.tiers._openai",
    "RemoteError": "relforge.tiers._remote",
    "RemotePolicy": "relforge.tiers._remote",
    "RemoteScorer": "relforge.tiers._remote",
    "TGIScorer": "relforge.tiers._tgi",
    "TopToken": "relforge.tiers._top_tokens",
    "grade_probs_from_top": "relforge.tiers._top_tokens",
    "Sent": "relforge.tiers._remote",
    "send_all": "relforge.tiers._remote",
    # generation (query synthesis)
    "GENERATING_BACKENDS": "relforge.tiers._generate",
    "Generations": "relforge.tiers._generate",
    "QueryGenerator": "relforge.tiers._generate",
    "LocalQueryGenerator": "relforge.tiers._generate",
    "RemoteQueryGenerator": "relforge.tiers._generate",
    "TGIQueryGenerator": "relforge.tiers._generate",
    "OpenAIQueryGenerator": "relforge.tiers._generate",
    "load_generator": "relforge.tiers._generate",
    "Example": "relforge.tiers._query_prompt",
    "QUERY_WRITER": "relforge.tiers._query_prompt",
    "QueryPrompt": "relforge.tiers._query_prompt",
    "clean_query": "relforge.tiers._query_prompt",
    "load_query_prompt": "relforge.tiers._query_prompt",
    "render_chat": "relforge.tiers._query_prompt",
    # from a configuration
    "load_scorer": "relforge.tiers._factory",
    "resolve_model_ref": "relforge.tiers._factory",
    # the Kubernetes pools serving remote tiers
    "TierPool": "relforge.tiers._pool",
    "PooledScorer": "relforge.tiers._pool",
    "pool_for": "relforge.tiers._pool",
    "rollout_waiting": "relforge.tiers._pool",
}
__all__ = list(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
