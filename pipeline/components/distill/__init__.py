"""KFP component `distill`. Generated from the step declaration by `python -m pipeline generate`; do not edit."""

from pipeline.components.distill.component import distill

__all__ = ["distill"]
