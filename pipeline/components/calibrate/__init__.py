"""KFP component `calibrate`. Generated from the step declaration by `python -m pipeline generate`; do not edit."""

from pipeline.components.calibrate.component import calibrate

__all__ = ["calibrate"]
