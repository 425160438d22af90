r"""Claim records: the seeded claim generator and the loader for CounterMATH-format files.

A claim record is a problem record plus ``statement`` (text with LaTeX), ``judgement`` ("true" or
"false"), ``field``, and, when it can be checked mechanically, ``variables`` and ``predicate``.
``variables`` is a JSON string that maps each variable to its domain, because HF datasets cannot
hold dicts whose keys differ from row to row. ``problem`` is the statement plus ``INSTRUCTION`` and
``answer`` is "True" or "False", so claim sets load, train and evaluate like any problem set.

The split of a generated claim (train or test) is a function of its statement alone, so the two
splits never share a claim, whatever the seed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
from pathlib import Path
from typing import Any, Iterator, Sequence

from mathrl.data.arithmetic import split_of
from mathrl.data.claim_families import FAMILIES, ClaimSpec
from mathrl.data.record import make_record
from mathrl.data.sources import read_rows

__all__ = ["CLAIM_FIELDS", "INSTRUCTION", "LEVELS", "claim_record", "generate_claims", "read_countermath"]

logger = logging.getLogger(__name__)

SOURCE = "counterexample_claims"
INSTRUCTION = "Is this statement true or false? If it is false, give a counterexample."
CLAIM_FIELDS = ("statement", "judgement", "field", "variables", "predicate", "counterexample", "family")
"""Keys every claim record has besides the problem-record fields (None where unknown)."""
LEVELS = (1, 2, 3)
SPLITS = ("train", "test")

# A family gives up on a judgement after this many draws in a row that are duplicates, belong to
# the other split or cannot have that judgement.
MAX_CONSECUTIVE_MISSES = 400


def _solution(spec: ClaimSpec) -> str:
    if spec.judgement:
        return "The statement is true. \\boxed{True}"
    return f"The statement is false. Counterexample: {spec.counterexample}. \\boxed{{False}}"


def claim_record(
    statement: str,
    judgement: bool,
    *,
    field: str | None = None,
    variables: dict | str | None = None,
    predicate: str | None = None,
    **fields: Any,
) -> dict:
    """Build a claim record; ``variables`` is stored as a JSON string."""
    if isinstance(variables, dict):
        variables = json.dumps(variables)
    record = make_record(
        f"{statement.strip()}\n{INSTRUCTION}",
        "True" if judgement else "False",
        statement=statement.strip(),
        judgement="true" if judgement else "false",
        field=field,
        variables=variables,
        predicate=predicate,
        **fields,
    )
    for key in CLAIM_FIELDS:
        record.setdefault(key, None)
    return record


def generate_claims(
    n: int = 1000,
    levels: Sequence[int] = LEVELS,
    seed: int = 0,
    split: str = "train",
    true_fraction: float = 0.5,
    families: Sequence[str] | None = None,
) -> list[dict]:
    """Generate ``n`` distinct claims of ``split`` from the families of the given ``levels``.

    Families take turns in name order; each claim is true with probability ``true_fraction``.
    The same arguments always give the same list. Raises ValueError when the families run out of
    distinct claims for the split.
    """
    if split not in SPLITS:
        raise ValueError(f"invalid counterexample_claims split {split!r}; valid splits: {', '.join(SPLITS)}")
    if n < 1:
        raise ValueError(f"invalid counterexample_claims n={n}; request at least 1 claim")
    if not 0 <= true_fraction <= 1:
        raise ValueError(f"invalid true_fraction={true_fraction}; use a value from 0 to 1")
    levels = [int(level) for level in levels]
    if not levels or any(level not in LEVELS for level in levels):
        raise ValueError(f"invalid counterexample_claims levels {levels}; choose from {', '.join(map(str, LEVELS))}")
    names = sorted(families) if families is not None else sorted(FAMILIES)
    unknown = [name for name in names if name not in FAMILIES]
    if unknown:
        raise ValueError(f"unknown claim families {unknown}; valid families: {', '.join(sorted(FAMILIES))}")
    chosen = [FAMILIES[name] for name in names if FAMILIES[name].level in levels]
    if not chosen:
        raise ValueError(f"no claim family among {names} has a level in {levels}")

    rng = random.Random(f"counterexample_claims/{seed}")
    seen: set[str] = set()
    exhausted: set[tuple[str, bool]] = set()
    records: list[dict] = []
    turn = 0
    while len(records) < n:
        truth = rng.random() < true_fraction
        open_families = [f for f in chosen if (f.name, truth) not in exhausted]
        if not open_families:
            other_drawn = true_fraction < 1 if truth else true_fraction > 0
            if not other_drawn or all((f.name, t) in exhausted for f in chosen for t in (True, False)):
                raise ValueError(
                    f"the claim families ran out of distinct {split} claims after {len(records)}; "
                    f"request fewer than n={n} or add levels"
                )
            continue
        family = open_families[turn % len(open_families)]
        turn += 1
        for _ in range(MAX_CONSECUTIVE_MISSES):
            spec = family.draw(rng, truth)
            if spec is not None and spec.statement not in seen and split_of(spec.statement) == split:
                break
        else:
            exhausted.add((family.name, truth))
            continue
        seen.add(spec.statement)
        digest = hashlib.sha256(spec.statement.encode("utf-8")).hexdigest()[:12]
        records.append(
            claim_record(
                spec.statement,
                spec.judgement,
                field=family.field,
                variables=spec.variables,
                predicate=spec.predicate,
                counterexample=spec.counterexample,
                family=family.name,
                source=SOURCE,
                domain=[f"Mathematics -> {family.field.title()}"],
                id=f"claim-{digest}",
                solution=_solution(spec),
                subject=family.field,
                level=family.level,
            )
        )
    realized = sum(r["judgement"] == "true" for r in records) / len(records)
    if abs(realized - true_fraction) > 0.1:
        logger.warning(
            "counterexample_claims: %.0f%% of the %d %s claims are true (requested %.0f%%) because the families "
            "ran out of distinct claims of one judgement; request fewer claims for a closer balance",
            100 * realized, len(records), split, 100 * true_fraction,
        )
    return records


def _countermath_judgement(value: Any, row_number: int, path: Path) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    raise ValueError(f"row {row_number} of {path}: invalid judgement {value!r}; use true or false")


def read_countermath(path: str | Path | None = None) -> Iterator[dict]:
    """Yield claim records from a CounterMATH-format file (``statement``, ``rationale``, ``field``,
    ``judgement``) in .jsonl, .json or .parquet.

    mathrl ships no CounterMATH data because the benchmark's labels carry no licence; pass the path
    of a copy you obtained yourself. Rows without a judgement keep ``answer=None`` and are counted
    as skipped.
    """
    if path is None:
        raise ValueError(
            "the countermath dataset needs a file: load_problems('countermath', path='countermath.jsonl'); "
            "mathrl does not ship CounterMATH because its labels carry no licence"
        )
    path = Path(path)
    rows = read_rows(path)
    if rows and not any("statement" in row for row in rows):
        raise ValueError(f"{path} has no 'statement' column; a CounterMATH file needs statement, judgement, field")
    for index, row in enumerate(rows):
        statement = row.get("statement")
        judgement = _countermath_judgement(row.get("judgement"), index + 1, path)
        if not isinstance(statement, str) or judgement is None:
            yield make_record(statement, None, source="countermath", id=str(index))
            continue
        rationale = row.get("rationale")
        record = claim_record(
            statement,
            judgement,
            field=row.get("field"),
            source="countermath",
            id=str(row.get("id") or row.get("txt") or index),
            subject=row.get("field"),
            rationale=rationale,
            solution=rationale,
        )
        yield record
