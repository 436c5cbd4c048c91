"""KFP component `mine`. Generated from the step declaration by `python -m pipeline generate`; do not edit."""

from pipeline.components.mine.component import mine

__all__ = ["mine"]
