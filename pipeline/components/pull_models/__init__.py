"""KFP component `pull_models`. Generated from the step declaration by `python -m pipeline generate`; do not edit."""

from pipeline.components.pull_models.component import pull_models

__all__ = ["pull_models"]
