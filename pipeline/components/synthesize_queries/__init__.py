"""KFP component `synthesize_queries`. Generated from the step declaration by `python -m pipeline generate`; do not edit."""

from pipeline.components.synthesize_queries.component import synthesize_queries

__all__ = ["synthesize_queries"]
