from pipeline.components.finetune_tiers.component import finetune_tiers

__all__ = ["finetune_tiers"]
