"""The filters of generated queries: each rule, their order, and the counts the report shows."""

from __future__ import annotations

import numpy as np
import pytest

from relforge.coldstart import (
    FILTERS,
    FilterSettings,
    duplicate_filters,
    filter_counts,
    is_copy,
    round_trip_ranks,
    stems,
    text_filters,
)

TITLE = "Nike Air Zoom Pegasus 38 Men's Running Shoe"


@pytest.mark.parametrize(("query", "copy"), [
    (TITLE, True),                                   # the title itself
    ("nike air zoom pegasus 38 men running shoes", True),  # every title word, plural: still the title
    ("Nike Air Zoom Pegasus 38 Men's Running", True),      # 8 of 9 words, nothing added
    ("nike pegasus 38", False),                       # 3 of 9 title words: a real query
    ("running shoes for marathon", False),            # adds words the title does not have
])
def test_a_query_copies_the_title_when_it_adds_nothing_and_keeps_most_of_it(query, copy):
    assert is_copy(query, TITLE, share=0.7) is copy


def test_stems_drop_stop_words_and_fold_plurals_only_when_asked():
    assert stems("shoes for the men", drop_stopwords=True) == {"shoe", "men"}
    assert "the" in stems("shoes for the men")


def test_text_filters_then_duplicates_among_the_queries_still_in_the_first_one_kept():
    queries = ["", "red shoe", "red shoes", "shoe red", "a b c d e f g h i j k l m", "red running shoe", "x",
               "blue shirt", "Blue  Shirt!"]
    titles = ["red shoe", "blue shirt", "black mug", "red lamp", "red lamp", "blue chair", "red lamp", "green mug",
              "green mug"]
    failed = [False] * 6 + [True] + [False] * 2
    settings = FilterSettings(min_words=1, max_words=12)
    removed = text_filters(queries, titles, failed, settings)
    assert removed == ["length", None, None, None, "length", None, "failed", None, None]
    removed[7] = "round-trip"  # as if its item did not come back: it cannot make the next one a duplicate
    assert duplicate_filters(queries, removed, settings) == [
        "length",          # empty after cleaning
        None,              # kept
        "near-duplicate",  # same stems as "red shoe" (plural)
        "near-duplicate",  # same stems, another order (not the same words in order: not `duplicate`)
        "length",          # 13 words
        None,              # {red, run, shoe} vs {red, shoe}: Jaccard 0.67 < 0.8
        "failed",          # the generator failed: never filled in
        "round-trip",
        None,              # the same words as the removed "blue shirt": kept, being the first one kept
    ]


def test_an_exact_duplicate_ignores_case_and_punctuation_and_a_copy_is_found_before_it():
    settings = FilterSettings(near_duplicate_jaccard=1.0)
    queries = ["Red Shoes!", "red  shoes", "blue shirt"]
    removed = text_filters(queries, ["green lamp", "green mug", "blue shirt"], [False] * 3, settings)
    assert duplicate_filters(queries, removed, settings) == [None, "duplicate", "copy"]


def test_round_trip_rank_is_the_source_position_or_zero():
    found = np.array([[5, 3, 9], [1, -1, -1], [-1, -1, -1]])
    assert round_trip_ranks(found, np.array([9, 1, 4])).tolist() == [3, 1, 0]


def test_filter_counts_share_of_generated_and_of_those_reaching_each_filter():
    removed = ["length"] * 2 + ["copy"] * 2 + ["round-trip"] * 3 + [None] * 3
    counts = filter_counts(removed)
    assert list(counts) == [*FILTERS, "kept"]
    assert counts["length"]["share_of_generated"] == pytest.approx(0.2)
    assert counts["copy"]["share_of_reaching"] == pytest.approx(2 / 8)
    assert counts["round-trip"]["reaching"] == 6 and counts["round-trip"]["share_of_reaching"] == pytest.approx(0.5)
    assert counts["kept"]["reaching"] == 3
    assert sum(counts[f]["removed"] for f in FILTERS) + counts["kept"]["reaching"] == len(removed)
