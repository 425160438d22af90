"""Readers for the shipped evaluation and training sets, local files and Big-Math.

Each reader yields raw rows already mapped into the problem record; rows without an answer keep
``answer=None`` so that the caller counts them (see ``validate_records``).
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any, Iterator, Sequence

from mathrl.data.record import last_boxed, make_record, strip_math_delimiters

__all__ = [
    "BIG_MATH_HUB_ID",
    "FILES_DIR",
    "LOCAL_SUFFIXES",
    "read_big_math",
    "read_gsm8k",
    "read_local_file",
    "read_rows",
    "read_shipped",
]

logger = logging.getLogger(__name__)

FILES_DIR = Path(__file__).parent / "files"
LOCAL_SUFFIXES = (".jsonl", ".json", ".parquet")
BIG_MATH_HUB_ID = "SynthLabsAI/Big-Math-RL-Verified"

_GSM8K_FINAL = re.compile(r"####\s*(.+?)\s*$")


def read_rows(path: str | Path) -> list[dict]:
    """Read a .jsonl, .json (a list of objects) or .parquet file into a list of dicts."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"dataset file not found: {path}; check the path")
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        return _read_jsonl(path)
    if suffix == ".json":
        with path.open(encoding="utf-8") as handle:
            try:
                data = json.load(handle)
            except json.JSONDecodeError as err:
                raise ValueError(f"invalid JSON in {path}: {err}") from None
        if not isinstance(data, list) or not all(isinstance(row, dict) for row in data):
            raise ValueError(f"{path} must contain a JSON list of objects (one per problem)")
        return data
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.read_table(path).to_pylist()
    raise ValueError(
        f"unsupported dataset file type {suffix!r} for {path}; use one of {', '.join(LOCAL_SUFFIXES)}"
    )


def _read_jsonl(path: Path) -> list[dict]:
    rows = []
    with path.open(encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(f"invalid JSON on line {line_number} of {path}: {err}") from None
            if not isinstance(row, dict):
                raise ValueError(f"line {line_number} of {path} is not a JSON object")
            rows.append(row)
    return rows


def _require_columns(rows: Sequence[dict], columns: Sequence[str], where: str) -> None:
    """Raise when no row has one of ``columns``: a misnamed column would otherwise skip every row."""
    present = set().union(*(row.keys() for row in rows)) if rows else set()
    missing = [column for column in columns if column not in present]
    if rows and missing:
        raise ValueError(
            f"{where} has no {', '.join(map(repr, missing))} column (columns: {', '.join(sorted(present))}); "
            "rename the columns to the problem-record names"
        )


def _record_from_row(row: dict) -> dict:
    """Map a row already in record layout; unknown keys are kept as they are."""
    extra = {key: value for key, value in row.items() if key not in ("problem", "answer")}
    return make_record(row.get("problem"), row.get("answer"), **extra)


def read_local_file(path: str | Path) -> Iterator[dict]:
    """Yield records from a file whose rows have at least ``problem`` and ``answer``."""
    rows = read_rows(path)
    _require_columns(rows, ("problem", "answer"), str(path))
    for row in rows:
        yield _record_from_row(row)


def read_big_math(
    split: str = "train",
    path: str | Path | None = None,
    hub_id: str = BIG_MATH_HUB_ID,
    revision: str | None = None,
    sources: Sequence[str] | None = None,
    min_solve_rate: float | None = None,
    max_solve_rate: float | None = None,
) -> Iterator[dict]:
    """Yield Big-Math records from a local file (``path``) or from the hub through ``datasets``.

    ``sources`` keeps only rows whose ``source`` is listed. The solve-rate bounds are inclusive and
    drop rows whose ``llama8b_solve_rate`` is null; filtered rows are logged with their count.
    """
    if path is not None:
        rows: Any = read_rows(path)
        where = str(path)
    else:
        rows = _load_from_hub(hub_id, split, revision)
        where = f"{hub_id} (split {split})"
    if isinstance(rows, list):
        _require_columns(rows, ("problem", "answer"), where)
    elif "problem" not in rows.column_names or "answer" not in rows.column_names:
        _require_columns([dict.fromkeys(rows.column_names)], ("problem", "answer"), where)

    allowed_sources = set(sources) if sources is not None else None
    filtered = 0
    for row in rows:
        rate = row.get("llama8b_solve_rate")
        if allowed_sources is not None and row.get("source") not in allowed_sources:
            filtered += 1
            continue
        if min_solve_rate is not None and (rate is None or rate < min_solve_rate):
            filtered += 1
            continue
        if max_solve_rate is not None and (rate is None or rate > max_solve_rate):
            filtered += 1
            continue
        yield _record_from_row(row)
    if filtered:
        logger.info(
            "big_math: %d rows filtered out by sources=%s, min_solve_rate=%s, max_solve_rate=%s",
            filtered,
            sources,
            min_solve_rate,
            max_solve_rate,
        )


def _load_from_hub(hub_id: str, split: str, revision: str | None):
    import datasets

    try:
        return datasets.load_dataset(hub_id, split=split, revision=revision)
    except OSError as err:
        # datasets raises ConnectionError (an OSError) offline, and FileNotFoundError subclasses
        # when the hub has no such repository or the cache has no copy.
        raise ConnectionError(
            f"cannot load {hub_id!r} from the Hugging Face Hub ({err}); the hub is unreachable or offline "
            "and no cached copy exists. Download the data set elsewhere and pass a local file: "
            "load_problems('big_math', path='big_math.parquet')"
        ) from err


def read_gsm8k(split: str) -> Iterator[dict]:
    """Yield GSM8K records; the answer is the number after ``####`` with thousands separators removed."""
    for index, row in enumerate(_read_jsonl(FILES_DIR / "gsm8k" / f"{split}.jsonl")):
        solution = row.get("answer") or ""
        last_line = solution.strip().splitlines()[-1] if solution.strip() else ""
        match = _GSM8K_FINAL.search(last_line)
        answer = match.group(1).replace(",", "") if match else None
        yield make_record(
            row.get("question"), answer, source="gsm8k", id=f"{split}-{index}", solution=solution
        )


def _shipped_math500(row: dict, index: int) -> dict:
    return make_record(
        row.get("problem"),
        row.get("answer"),
        source="math500",
        id=row.get("unique_id"),
        solution=row.get("solution"),
        subject=row.get("subject"),
        level=row.get("level"),
    )


def _shipped_aime(name: str):
    def mapper(row: dict, index: int) -> dict:
        # Some AIME 2024 answers are zero-padded ("025"); the canonical integer string is "25".
        answer = row.get("answer")
        if isinstance(answer, str) and answer.strip().isdigit():
            answer = str(int(answer))
        return make_record(
            row.get("problem"),
            answer,
            source=name,
            id=row.get("id", f"{name}-{index}"),
            solution=row.get("solution"),
            url=row.get("url"),
        )

    return mapper


def _shipped_amc23(row: dict, index: int) -> dict:
    return make_record(
        row.get("problem"), row.get("answer"), source="amc23", id=row.get("id"), url=row.get("url")
    )


def _shipped_minerva(row: dict, index: int) -> dict:
    solution = row.get("solution") or ""
    return make_record(
        row.get("problem"),
        last_boxed(solution),
        source="minerva_math",
        id=row.get("idx"),
        solution=solution,
        subject=row.get("type"),
    )


def _shipped_olympiadbench(row: dict, index: int) -> dict:
    # Multiple answers sit inside one list item as "$a$,$b$"; without the $ they read "a,b".
    final_answer = row.get("final_answer") or []
    answers = [strip_math_delimiters(item) for item in final_answer if isinstance(item, str)]
    solution = row.get("solution")
    if isinstance(solution, list):
        solution = "\n\n".join(solution)
    return make_record(
        row.get("question"),
        answers,
        source="olympiadbench",
        id=row.get("id"),
        solution=solution,
        subject=row.get("subfield"),
        final_answer=final_answer,
        is_multiple_answer=row.get("is_multiple_answer"),
        unit=row.get("unit"),
        answer_type=row.get("answer_type"),
    )


_SHIPPED_MAPPERS = {
    "math500": _shipped_math500,
    "aime24": _shipped_aime("aime24"),
    "aime25": _shipped_aime("aime25"),
    "amc23": _shipped_amc23,
    "minerva_math": _shipped_minerva,
    "olympiadbench": _shipped_olympiadbench,
}


def read_shipped(name: str, split: str = "test") -> Iterator[dict]:
    """Yield records of one of the evaluation sets shipped under ``mathrl/data/files``."""
    mapper = _SHIPPED_MAPPERS[name]
    for index, row in enumerate(_read_jsonl(FILES_DIR / name / f"{split}.jsonl")):
        yield mapper(row, index)
