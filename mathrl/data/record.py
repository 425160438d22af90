"""The problem record every loader yields, and the checks that turn raw rows into records.

A record is a plain dict with the Big-Math columns (``problem``, ``answer``, ``source``,
``domain``, ``llama8b_solve_rate``) plus ``id``, ``solution``, ``subject`` and ``level``.
Loaders may add dataset-specific keys (e.g. ``unit`` for OlympiadBench).
"""

from __future__ import annotations

import logging
import math
import re
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterable

__all__ = [
    "RECORD_FIELDS",
    "ProblemSet",
    "answer_to_str",
    "last_boxed",
    "make_record",
    "strip_math_delimiters",
    "validate_records",
]

logger = logging.getLogger(__name__)

# Every record has these keys; optional ones are None when a dataset does not provide them.
RECORD_FIELDS = (
    "problem",
    "answer",
    "source",
    "domain",
    "llama8b_solve_rate",
    "id",
    "solution",
    "subject",
    "level",
)

_UNESCAPED_DOLLAR = re.compile(r"(?<!\\)\$")


@dataclass
class ProblemSet:
    """Records loaded from one dataset split, with the count of rows that were skipped, per reason."""

    name: str
    split: str | None
    records: list[dict] = field(default_factory=list)
    skipped: Counter = field(default_factory=Counter)

    @property
    def num_skipped(self) -> int:
        return sum(self.skipped.values())

    def __len__(self) -> int:
        return len(self.records)


def answer_to_str(value: Any) -> str | None:
    """Render a gold answer as a string, or None when it is missing or empty.

    Integral floats lose their ``.0`` (AMC 2023 stores ``27.0``), and lists are joined with ", ".

    >>> answer_to_str(27.0), answer_to_str(-1.0), answer_to_str(0.5), answer_to_str(7)
    ('27', '-1', '0.5', '7')
    >>> answer_to_str(["3", "5"]), answer_to_str("  "), answer_to_str(None)
    ('3, 5', None, None)
    """
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, float):
        if not math.isfinite(value):
            return None
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, (list, tuple)):
        parts = [answer_to_str(item) for item in value]
        parts = [part for part in parts if part]
        return ", ".join(parts) if parts else None
    text = str(value).strip()
    return text or None


def last_boxed(text: str) -> str | None:
    r"""Return the content of the last ``\boxed{...}`` in ``text``, braces balanced, or None.

    >>> last_boxed(r"so $x = \boxed{\frac{1}{2}}$ and then \boxed{4 \text{ m}}")
    '4 \\text{ m}'
    >>> last_boxed("no box") is None
    True
    """
    start = text.rfind("\\boxed{")
    if start < 0:
        return None
    depth = 0
    content_start = start + len("\\boxed{")
    for index in range(content_start - 1, len(text)):
        char = text[index]
        # An escaped brace (\{ or \}) is a literal set brace, not a group delimiter.
        if char in "{}" and index > 0 and text[index - 1] == "\\":
            continue
        if char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return text[content_start:index].strip()
    return None


def strip_math_delimiters(text: str) -> str:
    r"""Remove unescaped ``$`` math delimiters; an escaped ``\$`` (a currency sign) stays.

    >>> strip_math_delimiters(r"$69$,$84$")
    '69,84'
    >>> strip_math_delimiters(r"\$5")
    '\\$5'
    """
    return _UNESCAPED_DOLLAR.sub("", text).strip()


def make_record(problem: Any, answer: Any, **fields: Any) -> dict:
    """Build a record with every key of RECORD_FIELDS; the answer is rendered with answer_to_str."""
    record = {name: None for name in RECORD_FIELDS}
    record.update(fields)
    record["problem"] = problem.strip() if isinstance(problem, str) else problem
    record["answer"] = answer_to_str(answer)
    if record["id"] is not None:
        record["id"] = str(record["id"])
    return record


def validate_records(name: str, split: str | None, rows: Iterable[dict]) -> ProblemSet:
    """Keep rows with a non-empty problem and answer; count the others per reason and log them once."""
    problem_set = ProblemSet(name=name, split=split)
    total = 0
    for row in rows:
        total += 1
        problem = row.get("problem")
        if not isinstance(problem, str) or not problem.strip():
            problem_set.skipped["empty problem"] += 1
            continue
        if row.get("answer") is None:
            problem_set.skipped["missing answer"] += 1
            continue
        problem_set.records.append(row)

    if problem_set.skipped:
        reasons = ", ".join(f"{reason}: {count}" for reason, count in sorted(problem_set.skipped.items()))
        logger.warning(
            "%s (split %s): skipped %d of %d rows (%s)", name, split, problem_set.num_skipped, total, reasons
        )
    return problem_set
