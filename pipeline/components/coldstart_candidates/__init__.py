"""KFP component `coldstart_candidates`. Generated from the step declaration by `python -m pipeline generate`; do not edit."""

from pipeline.components.coldstart_candidates.component import coldstart_candidates

__all__ = ["coldstart_candidates"]
