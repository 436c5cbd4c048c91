"""KFP component `train_two_tower`. Generated from the step declaration by `python -m pipeline generate`; do not edit."""

from pipeline.components.train_two_tower.component import train_two_tower

__all__ = ["train_two_tower"]
