"""KFP component `curriculum`. Generated from the step declaration by `python -m pipeline generate`; do not edit."""

from pipeline.components.curriculum.component import curriculum

__all__ = ["curriculum"]
