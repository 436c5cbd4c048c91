"""KFP component `export_index`. Generated from the step declaration by `python -m pipeline generate`; do not edit."""

from pipeline.components.export_index.component import export_index

__all__ = ["export_index"]
