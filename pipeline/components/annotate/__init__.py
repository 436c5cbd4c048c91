"""KFP component `annotate`. Generated from the step declaration by `python -m pipeline generate`; do not edit."""

from pipeline.components.annotate.component import annotate

__all__ = ["annotate"]
