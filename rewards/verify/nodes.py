"""Answer shapes the parser produces around sympy expressions.

Scalars are plain sympy expressions. The wrappers below keep what sympy would lose or misread:
the order of a tuple versus a set, an interval's open ends, a percent sign, a unit, a text answer.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = [
    "Choice",
    "Degrees",
    "Ellipsis_",
    "Interval",
    "Matrix",
    "Percent",
    "Relation",
    "Seq",
    "SetOf",
    "Text",
    "Tup",
    "Union",
]


@dataclass(frozen=True)
class Seq:
    """Answers listed without brackets (``1, 2``, ``x = 1 or x = 2``), compared as a multiset.
    ``joiner`` is ``and`` when the text joined items with "and" (``x > 1 and x < 3`` is an
    intersection), else ``or``."""

    items: tuple
    joiner: str = "or"


@dataclass(frozen=True)
class Tup:
    """A bracketed ordered list. ``(a, b)`` with two items may also be read as an open interval."""

    items: tuple
    opener: str = "("
    closer: str = ")"


@dataclass(frozen=True)
class SetOf:
    """``\\{a, b\\}``: an unordered set."""

    items: tuple


@dataclass(frozen=True)
class Interval:
    lo: Any
    hi: Any
    lo_open: bool
    hi_open: bool


@dataclass(frozen=True)
class Union:
    """A union of intervals (``(-\\infty, 1) \\cup (2, \\infty)``, ``x < 1 or x > 2``)."""

    parts: tuple


@dataclass(frozen=True)
class Relation:
    """A chain ``a op b op c``; ``ops`` has one entry fewer than ``terms``. Ops: = < <= > >= != in."""

    terms: tuple
    ops: tuple


@dataclass(frozen=True)
class Matrix:
    rows: tuple  # tuple of tuples of sympy expressions


@dataclass(frozen=True)
class Percent:
    value: Any


@dataclass(frozen=True)
class Degrees:
    value: Any


@dataclass(frozen=True)
class Text:
    """A word answer, normalised to lower case with single spaces."""

    text: str


@dataclass(frozen=True)
class Choice:
    letter: str


@dataclass(frozen=True)
class Ellipsis_:
    """``\\ldots`` inside a list."""
