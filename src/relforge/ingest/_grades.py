"""Judgment values to integer grades, and the grade scale recorded with the tables.

A judgment's value is a grade name (``exact``, case-insensitive) or an integer grade
(``0`` .. ``n-1``); or, with a value map, one of its values (ESCI's ``"100.000"``) and
nothing else; or, with score bins, any number: ``bins = [1.5, 2.5]`` gives grade 0 below 1.5, grade 1 from 1.5 to
below 2.5 and grade 2 from 2.5 up (``n - 1`` ascending thresholds for ``n`` grades).
"""

from __future__ import annotations

import bisect
import itertools
import math
from collections.abc import Sequence

import pyarrow as pa
import pyarrow.compute as pc

from relforge.errors import ConfigError
from relforge.grades import GradeScale
from relforge.ingest._source import Source, is_scalar


class GradeMapper:
    """Turns a column of judgment values into int8 grades on ``scale``.

    Args:
        scale: the grade scale.
        value_map: the only values accepted, and their grade, e.g. ``{"100.000": 3}``.
        score_bins: ``n - 1`` ascending thresholds turning numeric scores into grades.

    Example:
        >>> m = GradeMapper(GradeScale.from_names(["bad", "ok", "good"]), score_bins=[1.5, 2.5])
        >>> m.grade_of(2.4), m.grade_of("3")
        (1, 2)
    """

    def __init__(
        self,
        scale: GradeScale,
        value_map: dict[str, int] | None = None,
        score_bins: Sequence[float] | None = None,
    ):
        self.scale = scale
        self.value_map = dict(value_map or {})
        self.score_bins = list(score_bins) if score_bins is not None else None
        if self.score_bins is not None:
            check_score_bins(self.score_bins, scale)

    def describe(self) -> str:
        if self.score_bins is not None:
            return f"a number, binned at {', '.join(f'{b:g}' for b in self.score_bins)}"
        if self.value_map:
            return "one of " + ", ".join(
                f"{v} ({self.scale.names[g]})" for v, g in sorted(self.value_map.items(), key=lambda x: x[1])
            )
        names = " < ".join(self.scale.names)
        return f"a grade name ({names}) or an integer 0..{self.scale.n - 1}"

    def grade_of(self, value: object) -> int:
        """The grade of one value; ``ValueError`` with the reason when it is not on the scale."""
        if value is None:
            raise ValueError("is empty")
        key = value.strip() if isinstance(value, str) else value
        if self.value_map:
            if isinstance(key, str) and key in self.value_map:
                return self.value_map[key]
            raise ValueError(f"{value!r} is not on the grade scale: expected {self.describe()}")
        if isinstance(key, str) and key == "":
            raise ValueError("is empty")
        if self.score_bins is not None:
            number = _number(key)
            if number is None or math.isnan(number):
                raise ValueError(f"{value!r} is not a number ({self.describe()})")
            return bisect.bisect_right(self.score_bins, number)
        if isinstance(key, str):
            try:
                return self.scale.grade_of(key)
            except KeyError:
                pass
        number = _number(key)
        if number is None or isinstance(key, bool):
            raise ValueError(f"{value!r} is not on the grade scale: expected {self.describe()}")
        if not float(number).is_integer():
            raise ValueError(
                f"{value!r} is not an integer grade; expected {self.describe()} "
                "(use score bins for numeric scores)"
            )
        grade = int(number)
        if not 0 <= grade < self.scale.n:
            raise ValueError(
                f"grade {grade} is outside the scale 0..{self.scale.n - 1} ({' < '.join(self.scale.names)})"
            )
        return grade

    def grades(self, src: Source, field: str = "grade") -> pa.Array:
        """Column ``field`` of ``src`` as int8 grades; the first bad value is an :class:`InputError`."""
        col = src.table.column(field)
        if pa.types.is_dictionary(col.type):
            col = col.cast(col.type.value_type)
        if not is_scalar(col.type):
            raise src.fail(None, field, f"is {col.type}; expected {self.describe()}")
        uniques = pc.unique(col).to_pylist()
        lookup: dict[object, int] = {}
        for value in uniques:
            try:
                lookup[_hashable(value)] = self.grade_of(value)
            except ValueError as exc:
                mask = pc.is_null(col) if value is None else pc.equal(col, pa.scalar(value, col.type))
                raise src.fail(src.first(mask), field, str(exc)) from None
        return pa.array([lookup[_hashable(v)] for v in col.to_pylist()], pa.int8())


def check_score_bins(bins: Sequence[float], scale: GradeScale) -> None:
    """Score bins must be ``n - 1`` finite, strictly ascending numbers."""
    if len(bins) != scale.n - 1:
        raise ConfigError(
            f"score bins {list(bins)}: {len(bins)} threshold(s) given; "
            f"{scale.n} grades need {scale.n - 1}"
        )
    if any(not math.isfinite(b) for b in bins):
        raise ConfigError(f"score bins {list(bins)}: thresholds must be finite numbers")
    if any(b2 <= b1 for b1, b2 in itertools.pairwise(bins)):
        raise ConfigError(f"score bins {list(bins)}: thresholds must ascend strictly")


def _number(value: object) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _hashable(value: object) -> object:
    return tuple(value) if isinstance(value, list) else value
