"""KFP component `second_round`. Generated from the step declaration by `python -m pipeline generate`; do not edit."""

from pipeline.components.second_round.component import second_round

__all__ = ["second_round"]
