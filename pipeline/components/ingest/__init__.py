"""KFP component `ingest`. Generated from the step declaration by `python -m pipeline generate`; do not edit."""

from pipeline.components.ingest.component import ingest

__all__ = ["ingest"]
