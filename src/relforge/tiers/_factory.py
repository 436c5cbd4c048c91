"""A tier's scorer from its configuration (:class:`relforge.config.TierSpec`)."""

from __future__ import annotations

from pathlib import Path

from relforge.config import BusConfig, ModelsConfig, TierSpec
from relforge.errors import ConfigError, ModelError
from relforge.grades import GradeScale
from relforge.tiers._heads import TierDescriptor
from relforge.tiers._scorer import TierScorer


def resolve_model_ref(ref: str, models: ModelsConfig | None = None, bus: BusConfig | None = None) -> Path:
    """The local folder of a model reference: an existing folder as is, anything else
    (``packaged:...``, ``s3://...``, a hub id) through :func:`relforge.models.resolve_model`."""
    folder = Path(ref).expanduser()
    if folder.is_dir():
        return folder
    try:
        from relforge.models import resolve_model
    except ImportError as exc:  # pragma: no cover - relforge.models ships with relforge
        raise ModelError(f"model reference {ref!r} is not a local folder and relforge.models is unavailable") from exc
    return Path(resolve_model(ref, models, bus=bus))


def load_scorer(
    spec: TierSpec,
    scale: GradeScale,
    models_config: ModelsConfig | None = None,
    *,
    bus: BusConfig | None = None,
) -> TierScorer:
    """The scorer of one tier.

    The model comes from ``spec.model``, else from ``models.<tier name>``; for the remote
    backends (``tgi``, ``openai``) the folder supplies the tokenizer, chat template and prompt
    while ``spec.url`` serves the model.

    Args:
        spec: the tier's spec (``tiers.specs.<name>``).
        scale: the grade scale of the data.
        models_config: the ``models`` section (cache folder; default model per tier).
        bus: S3 settings for ``s3://`` model references.

    Returns:
        A :class:`TierScorer`; use it as a context manager, or call ``close()``.

    Raises:
        ConfigError: no model, or no url for a remote backend.
        ModelError: the model cannot be resolved or does not fit the backend or the scale.

    Example:
        >>> cfg = load_config(overrides=["tiers.specs.tier1.model=models/tier1"])   # doctest: +SKIP
        >>> with load_scorer(cfg.tiers.spec("tier1"), ESCI, cfg.models) as scorer:   # doctest: +SKIP
        ...     scores = scorer.score(pairs)
    """
    ref = spec.model or (getattr(models_config, spec.name, None) if models_config and spec.name else None)
    if not ref:
        raise ConfigError(f"tier `{spec.name}`: no model; set tiers.specs.{spec.name}.model or models.{spec.name}")
    folder = resolve_model_ref(ref, models_config, bus)
    descriptor = TierDescriptor.load(folder)
    if descriptor is not None and descriptor.backend == "probe":
        if spec.backend != "causal-lm":
            raise ModelError(f"{folder}: a `probe` tier model is not served by the `{spec.backend}` backend")
        from relforge.tiers._probe import ProbeScorer  # a probe reads a local causal LM's features

        return ProbeScorer(
            folder, scale, models=models_config, name=str(ref), batch_size=spec.batch_size,
            device=spec.device, cost_per_second=spec.cost_per_second,
        )
    if spec.backend == "bi-encoder" or (descriptor is not None and descriptor.backend == "bi-encoder"):
        if spec.backend != "bi-encoder":
            raise ModelError(f"{folder}: a bi-encoder tier model, but tier `{spec.name}` uses the `{spec.backend}` backend")
        from relforge.tiers._bi_encoder import BiEncoderScorer

        return BiEncoderScorer(
            folder, scale, models=models_config, name=str(ref), batch_size=spec.batch_size,
            max_length=spec.max_length, device=spec.device, cost_per_second=spec.cost_per_second,
        )
    if descriptor is not None and spec.backend == "cross-encoder" and descriptor.backend != "cross-encoder":
        raise ModelError(f"{folder}: a `{descriptor.backend}` model, but tier `{spec.name}` uses the cross-encoder backend")
    if descriptor is not None and spec.backend != "cross-encoder" and descriptor.backend == "cross-encoder":
        raise ModelError(f"{folder}: a cross-encoder, but tier `{spec.name}` uses the `{spec.backend}` backend")
    name = str(ref)

    if spec.backend == "cross-encoder":
        from relforge.tiers._cross_encoder import CrossEncoderScorer

        return CrossEncoderScorer(
            folder, scale, name=name, batch_size=spec.batch_size, max_length=spec.max_length,
            device=spec.device, cost_per_second=spec.cost_per_second,
        )
    if spec.backend == "causal-lm":
        from relforge.tiers._causal_lm import CausalLMScorer

        return CausalLMScorer(
            folder, scale, name=name, prompt=spec.prompt, batch_size=spec.batch_size,
            max_length=spec.max_length, device=spec.device, cost_per_second=spec.cost_per_second,
        )

    from relforge.tiers._causal_lm import length_for, prompt_for
    from relforge.tiers._lm import load_tokenizer
    from relforge.tiers._remote import RemotePolicy

    if not spec.url:
        raise ConfigError(f"tier `{spec.name}`: backend `{spec.backend}` needs tiers.specs.{spec.name}.url")
    common = {
        "scale": scale,
        "name": spec.served_model or name,
        "tokenizer": load_tokenizer(folder),
        "prompt": prompt_for(folder, scale, spec.prompt),
        "policy": RemotePolicy.from_spec(spec),
        "max_length": length_for(folder, spec.max_length),
        "cost_per_request": spec.cost_per_request,
        "cost_per_second": spec.cost_per_second,
    }
    if spec.backend == "tgi":
        from relforge.tiers._tgi import TGIScorer

        return TGIScorer(spec.url, top_n=spec.top_n or 5, **common)
    if spec.backend == "openai":
        from relforge.tiers._openai import OpenAIScorer

        return OpenAIScorer(spec.url, served_model=spec.served_model, top_n=spec.top_n or 20, **common)
    raise ConfigError(f"tier `{spec.name}`: unknown backend `{spec.backend}`")
