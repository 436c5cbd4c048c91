"""KFP component `evaluate`. Generated from the step declaration by `python -m pipeline generate`; do not edit."""

from pipeline.components.evaluate.component import evaluate

__all__ = ["evaluate"]
