"""The curriculum's rules: DESIGN.md's defaults, first match wins, and the rules are data."""

import numpy as np
import pytest

from relforge.config import CurriculumConfig, CurriculumRule, load_config
from relforge.curriculum import DEFAULT_RULE, LEFT_OUT, assign_levels, resolve_grade, stages_of
from relforge.errors import ConfigError


def _levels(cfg, rows):
    bucket = np.array([r[0] for r in rows], dtype=object)
    grade = np.array([r[1] for r in rows])
    conf = np.array([r[2] for r in rows])
    return assign_levels(bucket, grade, conf, cfg.rules, cfg.default_level, n_grades=4)


def test_the_default_rules_give_designs_five_levels():
    cfg = CurriculumConfig()
    rows = [("consensus", 3, 0.9), ("random", 0, 0.9), ("lexical_only", 3, 0.9), ("single", 0, 0.9),
            ("partial", 2, 0.9), ("consensus", 1, 0.9)]
    levels, _ = _levels(cfg, rows)
    assert levels.tolist() == [1, 2, 3, 4, 5, 5]


def test_low_confidence_comes_first_and_wins_over_an_easy_positive():
    levels, rules = _levels(CurriculumConfig(), [("consensus", 3, 0.2)])
    assert levels.tolist() == [5]
    assert CurriculumConfig().rules[int(rules[0])].name == "low confidence"


def test_a_row_no_rule_matches_gets_the_default_level_or_is_left_out():
    cfg = CurriculumConfig()
    levels, rules = _levels(cfg, [("partial", 3, 0.9)])  # a top-grade partial item: no rule of its own
    assert levels.tolist() == [5] and rules.tolist() == [DEFAULT_RULE]
    left = CurriculumConfig(default_level=None)
    levels, rules = _levels(left, [("partial", 3, 0.9)])
    assert levels.tolist() == [0] and rules.tolist() == [LEFT_OUT]


def test_rules_are_data_lexical_only_items_need_not_be_hard_positives():
    # ESCI-150's mining report: lexical-only items are not harder positives; a config can say so
    cfg = CurriculumConfig(rules=[
        CurriculumRule(level=1, name="easy positive", buckets=["consensus", "lexical_only"], min_grade=-1),
        CurriculumRule(level=4, name="hard negative", buckets=["single"], max_grade=0),
    ])
    levels, _ = _levels(cfg, [("lexical_only", 3, 0.9), ("single", 0, 0.9)])
    assert levels.tolist() == [1, 4]


def test_negative_grades_count_from_the_top():
    assert resolve_grade(-1, 4) == 3 and resolve_grade(-2, 3) == 1 and resolve_grade(0, 4) == 0


def test_a_rows_stage_is_the_first_stage_that_trains_its_level():
    stages = {1: [1, 2], 2: [1, 2, 3, 4], 3: [1, 2, 3, 4, 5]}
    assert stages_of(np.array([1, 2, 3, 4, 5]), stages).tolist() == [1, 1, 2, 2, 3]


def test_bad_curricula_are_refused_naming_the_field():
    with pytest.raises(ConfigError, match="curriculum"):
        load_config(overrides=["curriculum.splits=[train, test]"])
    with pytest.raises(ConfigError, match="no stage"):
        load_config(overrides=["curriculum.stages={1: [1, 2]}"])
