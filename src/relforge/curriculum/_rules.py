"""The curriculum's rules, applied: a difficulty level per labelled candidate, and its stage.

The rules are configuration (:class:`relforge.config.CurriculumRule`), matched in order; the
first rule whose every set condition holds gives the level. Conditions: the candidate's mining
bucket, its grade (a negative bound counts from the top of the scale, ``-1`` the top grade) and
its confidence. A row's stage is the first stage whose levels include its level.

Example:
    >>> import numpy as np
    >>> from relforge.config import CurriculumConfig
    >>> cfg = CurriculumConfig()
    >>> levels, rules = assign_levels(np.array(["consensus", "single"], dtype=object), np.array([3, 0]),
    ...                               np.array([0.9, 0.9]), cfg.rules, cfg.default_level, n_grades=4)
    >>> levels.tolist(), [cfg.rules[r].name for r in rules]
    ([1, 4], ['easy positive', 'hard negative'])
    >>> stages_of(levels, cfg.stages).tolist()
    [1, 2]
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from relforge.config import CurriculumRule

#: The rule index of a row that no rule matched and that got the default level.
DEFAULT_RULE = -1
#: The rule index of a row left out (no rule matched and no default level).
LEFT_OUT = -2


def resolve_grade(grade: int | None, n_grades: int) -> int | None:
    """A rule's grade bound on a scale of ``n_grades``: negative values count from the top."""
    if grade is None:
        return None
    return n_grades + grade if grade < 0 else grade


def rule_mask(rule: CurriculumRule, bucket: np.ndarray, grade: np.ndarray, confidence: np.ndarray,
              n_grades: int) -> np.ndarray:
    """Which rows satisfy every condition ``rule`` sets."""
    mask = np.ones(len(grade), dtype=bool)
    if rule.buckets is not None:
        mask &= np.isin(bucket.astype(str), np.asarray(rule.buckets, dtype=str))
    low, high = resolve_grade(rule.min_grade, n_grades), resolve_grade(rule.max_grade, n_grades)
    if low is not None:
        mask &= grade >= low
    if high is not None:
        mask &= grade <= high
    conf = np.nan_to_num(confidence.astype(np.float64), nan=1.0)
    if rule.min_confidence is not None:
        mask &= conf >= rule.min_confidence
    if rule.max_confidence is not None:
        mask &= conf <= rule.max_confidence
    return mask


def assign_levels(
    bucket: np.ndarray,
    grade: np.ndarray,
    confidence: np.ndarray,
    rules: Sequence[CurriculumRule],
    default_level: int | None,
    n_grades: int,
) -> tuple[np.ndarray, np.ndarray]:
    """The level of each row and the index of the rule that gave it.

    Args:
        bucket: the mining bucket of each row (strings; ``unmined`` for pairs no channel found).
        grade: the grade of each row.
        confidence: the label's confidence (NaN: treated as certain).
        rules: the rules, first match wins.
        default_level: the level of a row no rule matches (``None``: left out).
        n_grades: grades on the scale.

    Returns:
        ``(level, rule)``: int8 levels (0 where left out) and the matching rule's index
        (:data:`DEFAULT_RULE` for the default level, :data:`LEFT_OUT` for rows left out).
    """
    n = len(grade)
    level = np.zeros(n, dtype=np.int8)
    rule_of = np.full(n, LEFT_OUT, dtype=np.int64)
    open_ = np.ones(n, dtype=bool)
    for i, rule in enumerate(rules):
        hit = open_ & rule_mask(rule, bucket, grade, confidence, n_grades)
        level[hit] = rule.level
        rule_of[hit] = i
        open_ &= ~hit
    if default_level is not None:
        level[open_] = default_level
        rule_of[open_] = DEFAULT_RULE
    return level, rule_of


def stages_of(level: np.ndarray, stages: dict[int, list[int]]) -> np.ndarray:
    """The first stage whose levels include each row's level (0 where none does)."""
    out = np.zeros(len(level), dtype=np.int8)
    for stage in sorted(stages, reverse=True):
        out[np.isin(level, stages[stage])] = stage
    return out


def rule_names(rules: Sequence[CurriculumRule], rule_of: np.ndarray) -> list[str]:
    """The name of the rule behind each row (``default`` / ``left out`` for the others)."""
    names = {i: r.name for i, r in enumerate(rules)} | {DEFAULT_RULE: "default", LEFT_OUT: "left out"}
    return [names[int(r)] for r in rule_of]
