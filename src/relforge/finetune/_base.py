"""The base model a tier is fine-tuned from: its reference in the configuration.

References resolve to folders through :func:`relforge.tiers.resolve_model_ref`.
"""

from __future__ import annotations

from relforge.config import RelforgeConfig
from relforge.errors import ConfigError


def base_reference(config: RelforgeConfig, tier: str) -> str:
    """The model reference of ``tier``: ``tiers.specs.<tier>.model``, else ``models.<tier>``.

    Raises:
        ConfigError: when neither is set.
    """
    spec = config.tiers.spec(tier)
    ref = spec.model or getattr(config.models, tier, None)
    if not ref:
        raise ConfigError(f"tier `{tier}` has no model: set tiers.specs.{tier}.model")
    return str(ref)
