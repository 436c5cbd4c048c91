"""KFP component `ablate`. Generated from the step declaration by `python -m pipeline generate`; do not edit."""

from pipeline.components.ablate.component import ablate

__all__ = ["ablate"]
