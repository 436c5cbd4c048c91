"""KFP component `finetune_tiers`. Generated from the step declaration by `python -m pipeline generate`; do not edit."""

from pipeline.components.finetune_tiers.component import finetune_tiers

__all__ = ["finetune_tiers"]
