"""KFP component `teacher_label`. Generated from the step declaration by `python -m pipeline generate`; do not edit."""

from pipeline.components.teacher_label.component import teacher_label

__all__ = ["teacher_label"]
