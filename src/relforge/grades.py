"""Grade scales: the names, order and NDCG gains of a data set's relevance grades.

A grade is an int8 from 0 (worst) to ``len(names) - 1`` (best). The scale travels with the
tables as metadata so that every later step knows what the integers mean.
"""

from __future__ import annotations

import json
from typing import Protocol

from pydantic import BaseModel, field_validator, model_validator

from relforge.errors import NotCommittedError

#: The key under which ingest records the grade scale in every table's manifest metadata.
GRADE_SCALE_KEY = "grade_scale"


class GradeScale(BaseModel):
    """Ordered relevance grades, worst first.

    Args:
        name: a short identifier, also the name of the prompt file for the LLM tiers.
        names: grade names, worst first (``names[g]`` is grade ``g``).
        gains: NDCG gain per grade, non-decreasing.

    Example:
        >>> s = GradeScale(name="3-level", names=["irrelevant", "partial", "exact"], gains=[0, 1, 2])
        >>> s.grade_of("partial")
        1
    """

    name: str
    names: list[str]
    gains: list[float]

    @field_validator("names")
    @classmethod
    def _names_distinct(cls, v: list[str]) -> list[str]:
        if len(v) < 2:
            raise ValueError("a grade scale needs at least two grades")
        if len({n.lower() for n in v}) != len(v):
            raise ValueError(f"grade names must be distinct: {v}")
        return v

    @model_validator(mode="after")
    def _gains_match(self) -> GradeScale:
        if len(self.gains) != len(self.names):
            raise ValueError("one gain per grade name is needed")
        if any(b < a for a, b in zip(self.gains, self.gains[1:])):
            raise ValueError(f"gains must not decrease with the grade: {self.gains}")
        return self

    @property
    def n(self) -> int:
        return len(self.names)

    def grade_of(self, name: str) -> int:
        """The integer grade of a name (case-insensitive); ``KeyError`` if it is not on the scale."""
        lowered = [n.lower() for n in self.names]
        try:
            return lowered.index(name.strip().lower())
        except ValueError:
            raise KeyError(name) from None

    def to_json(self) -> str:
        return self.model_dump_json()

    @classmethod
    def from_json(cls, text: str | bytes) -> GradeScale:
        return cls.model_validate(json.loads(text))

    @classmethod
    def from_names(cls, names: list[str], gains: list[float] | None = None) -> GradeScale:
        """A scale from names alone; gains default to ``2**g - 1``."""
        return cls(
            name=f"{len(names)}-level",
            names=names,
            gains=gains if gains is not None else [float(2**g - 1) for g in range(len(names))],
        )


#: ESCI (Reddy et al. 2022): Irrelevant < Complement < Substitute < Exact, with the KDD Cup
#: 2022 gains (E 1.0, S 0.1, C 0.01, I 0.0).
ESCI = GradeScale(
    name="esci",
    names=["Irrelevant", "Complement", "Substitute", "Exact"],
    gains=[0.0, 0.01, 0.1, 1.0],
)


class _TablesWithMetadata(Protocol):
    """What :func:`read_grade_scale` needs of a data bus (``relforge.bus.DataBus``)."""

    root: str

    def is_committed(self, name: str) -> bool: ...

    def manifest(self, name: str): ...


def read_grade_scale(bus: _TablesWithMetadata) -> GradeScale:
    """The grade scale that ingest recorded with the tables on ``bus``.

    Read from the judgments manifest (``metadata["grade_scale"]``), else from the queries
    or catalog manifest.

    Raises:
        NotCommittedError: when no ingested table is committed on the bus.

    Example:
        >>> read_grade_scale(DataBus("runs/esci")).names          # doctest: +SKIP
        ['Irrelevant', 'Complement', 'Substitute', 'Exact']
    """
    for table in ("judgments", "queries", "catalog"):
        if bus.is_committed(table):
            meta = bus.manifest(table).metadata
            if GRADE_SCALE_KEY in meta:
                return GradeScale.model_validate(meta[GRADE_SCALE_KEY])
    raise NotCommittedError(
        f"{bus.root}: no grade scale found; ingest the data first (relforge ingest ...)"
    )
