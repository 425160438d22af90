"""Dataset registry and the public entry points ``load_problems`` and ``load_problem_set``.

A name is looked up in ``DATASETS``. A string that ends in .jsonl, .json or .parquet, or that names
an existing file, is read as a local file in the problem-record layout.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

from mathrl.data import sources
from mathrl.data.arithmetic import generate_arithmetic
from mathrl.data.claims import generate_claims, read_countermath
from mathrl.data.record import ProblemSet, validate_records
from mathrl.registry import Registry

__all__ = ["DATASETS", "DatasetSpec", "load_problem_set", "load_problems", "register_dataset"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DatasetSpec:
    """A named dataset: its splits and a reader ``read(split, seed, **options) -> records``."""

    read: Callable[..., Iterable[dict]]
    splits: tuple[str, ...]
    default_split: str
    description: str = ""
    options: tuple[str, ...] = ()


DATASETS: Registry[DatasetSpec] = Registry("dataset")


def register_dataset(name: str, spec: DatasetSpec) -> DatasetSpec:
    """Add a dataset under ``name``; it then loads with ``load_problems(name)``."""
    DATASETS.add(name, spec)
    return spec


def _shipped(name: str, description: str) -> DatasetSpec:
    def read(split: str, seed: int) -> Iterable[dict]:
        return sources.read_shipped(name, split)

    return DatasetSpec(read=read, splits=("test",), default_split="test", description=description)


def _read_arithmetic(split: str, seed: int, **options: Any) -> Iterable[dict]:
    return generate_arithmetic(split=split, seed=seed, **options)


def _read_big_math(split: str, seed: int, **options: Any) -> Iterable[dict]:
    return sources.read_big_math(split=split, **options)


def _read_gsm8k(split: str, seed: int) -> Iterable[dict]:
    return sources.read_gsm8k(split)


def _read_claims(split: str, seed: int, **options: Any) -> Iterable[dict]:
    return generate_claims(split=split, seed=seed, **options)


def _read_countermath(split: str, seed: int, path: str | None = None) -> Iterable[dict]:
    return read_countermath(path)


register_dataset(
    "big_math",
    DatasetSpec(
        read=_read_big_math,
        splits=("train",),
        default_split="train",
        description=f"Big-Math RL set from the hub ({sources.BIG_MATH_HUB_ID}) or a local file",
        options=("path", "hub_id", "revision", "sources", "min_solve_rate", "max_solve_rate"),
    ),
)
register_dataset(
    "gsm8k",
    DatasetSpec(read=_read_gsm8k, splits=("train", "test"), default_split="train", description="GSM8K"),
)
register_dataset(
    "arithmetic",
    DatasetSpec(
        read=_read_arithmetic,
        splits=("train", "test"),
        default_split="train",
        description="seeded synthetic arithmetic",
        options=("n", "levels", "ops"),
    ),
)
register_dataset(
    "counterexample_claims",
    DatasetSpec(
        read=_read_claims,
        splits=("train", "test"),
        default_split="train",
        description="seeded true/false claims with checkable counterexamples",
        options=("n", "levels", "true_fraction", "families"),
    ),
)
register_dataset(
    "countermath",
    DatasetSpec(
        read=_read_countermath,
        splits=("test",),
        default_split="test",
        description="a CounterMATH-format file you provide (path=...); not shipped",
        options=("path",),
    ),
)
for _name, _description in (
    ("math500", "MATH-500 test subset (400 of 500 shipped)"),
    ("aime24", "AIME 2024 I and II"),
    ("aime25", "AIME 2025 I and II"),
    ("amc23", "AMC 2023 (40 problems)"),
    ("minerva_math", "Minerva OCW courses set"),
    ("olympiadbench", "OlympiadBench English text-only math"),
):
    register_dataset(_name, _shipped(_name, _description))


def _read_local(path: str | Path) -> Iterable[dict]:
    """Read a local file in the problem-record layout, or in the CounterMATH layout (statement, judgement)."""
    rows = sources.read_rows(path)
    columns = set().union(*(row.keys() for row in rows)) if rows else set()
    if "problem" not in columns and {"statement", "judgement"} <= columns:
        return read_countermath(path)
    return sources.read_local_file(path)


def _is_local_path(name_or_path: str | Path) -> bool:
    if isinstance(name_or_path, Path):
        return True
    if name_or_path in DATASETS:
        return False
    return name_or_path.lower().endswith(sources.LOCAL_SUFFIXES) or Path(name_or_path).is_file()


def load_problem_set(
    name_or_path: str | Path,
    split: str | None = None,
    limit: int | None = None,
    seed: int = 0,
    shuffle: bool = False,
    **options: Any,
) -> ProblemSet:
    """Load records by dataset name or local file path, with the count of skipped rows.

    ``shuffle`` reorders the records with ``seed`` before ``limit`` keeps the first ones. ``seed``
    is also the default seed of generated datasets. ``options`` go to the dataset's reader, e.g.
    ``n``, ``levels`` for arithmetic or ``path``, ``sources``, ``min_solve_rate`` for big_math.
    """
    if limit is not None and limit < 1:
        raise ValueError(f"invalid limit={limit}; pass a positive number of problems, or None for all")

    if name_or_path == sources.BIG_MATH_HUB_ID:
        name_or_path = "big_math"

    if _is_local_path(name_or_path):
        if split is not None:
            logger.info("split=%r is ignored for the local file %s", split, name_or_path)
        if options:
            raise ValueError(
                f"options {sorted(options)} are not supported for a local file ({name_or_path}); remove them"
            )
        name = str(name_or_path)
        problem_set = validate_records(name, None, _read_local(name_or_path))
    else:
        name = str(name_or_path)
        if name not in DATASETS:
            raise ValueError(
                f"unknown dataset {name!r}; valid names: {', '.join(DATASETS.names())}, "
                f"or a path to a {', '.join(sources.LOCAL_SUFFIXES)} file"
            )
        spec = DATASETS.get(name)
        split = spec.default_split if split is None else split
        if split not in spec.splits:
            raise ValueError(
                f"invalid split {split!r} for dataset {name!r}; valid splits: {', '.join(spec.splits)}"
            )
        unknown = sorted(set(options) - set(spec.options))
        if unknown:
            valid = ", ".join(spec.options) if spec.options else "none"
            raise ValueError(f"unknown options {unknown} for dataset {name!r}; valid options: {valid}")
        problem_set = validate_records(name, split, spec.read(split, seed, **options))

    if not problem_set.records:
        detail = (
            f" ({problem_set.num_skipped} rows skipped: {dict(problem_set.skipped)})"
            if problem_set.skipped
            else ""
        )
        raise ValueError(
            f"dataset {name!r} (split {problem_set.split}) has no usable rows{detail}; "
            "each row needs a non-empty 'problem' and an 'answer'"
        )

    if shuffle:
        random.Random(seed).shuffle(problem_set.records)
    if limit is not None:
        problem_set.records = problem_set.records[:limit]
    return problem_set


def load_problems(
    name_or_path: str | Path,
    split: str | None = None,
    limit: int | None = None,
    seed: int = 0,
    shuffle: bool = False,
    **options: Any,
) -> list[dict]:
    """Return the records of a dataset name or local file; see ``load_problem_set`` for the arguments."""
    return load_problem_set(
        name_or_path, split=split, limit=limit, seed=seed, shuffle=shuffle, **options
    ).records
