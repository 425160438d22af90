"""Difficulty bands and training order: select problems by a difficulty column, order them easy to hard
(or the reverse) band by band, or resample them with a weight per band. Imports no torch.

A difficulty column is a record key (``llama8b_solve_rate``, ``pass_rate``) or a derived column from
``DIFFICULTY_COLUMNS`` that is computed when the record lacks it (``solution_steps``).
"""

from __future__ import annotations

import bisect
import logging
import math
import random
import re
from typing import Any, Callable

from mathrl.registry import Registry

__all__ = [
    "DIFFICULTY_COLUMNS",
    "ORDERS",
    "apply_difficulty",
    "band_index",
    "difficulty_value",
    "order_by_difficulty",
    "sample_by_band",
    "select_band",
    "validate_difficulty",
]

logger = logging.getLogger(__name__)

ORDERS = ("none", "easy_to_hard", "hard_to_easy")

DIFFICULTY_COLUMNS: Registry[Callable[[dict], float | None]] = Registry("derived difficulty column")

_GSM8K_CALCULATION = re.compile(r"<<[^>]*>>")


@DIFFICULTY_COLUMNS.register("solution_steps")
def solution_steps(record: dict) -> float | None:
    """Count the reasoning lines of the worked solution (the final ``#### answer`` line excluded).

    For GSM8K this is the number of steps the annotators wrote, a common proxy for difficulty.

    >>> solution_steps({"solution": "a <<1+1=2>>2\\nb <<2*3=6>>6\\n#### 6"})
    2.0
    """
    solution = record.get("solution")
    if not isinstance(solution, str) or not solution.strip():
        return None
    lines = [line for line in solution.strip().splitlines() if line.strip() and not line.startswith("####")]
    return float(len(lines))


def difficulty_value(record: dict, column: str) -> float | None:
    """Return the record's difficulty value as a float, derived when needed; None when missing or NaN."""
    value = record.get(column)
    if value is None and column in DIFFICULTY_COLUMNS:
        value = DIFFICULTY_COLUMNS.get(column)(record)
    if value is None or isinstance(value, bool):
        return None
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(value) else value


def validate_difficulty(config: Any) -> None:
    """Raise ValueError naming the field when a DifficultyConfig is inconsistent."""
    if config.easier not in ("high", "low"):
        raise ValueError(f"data.difficulty.easier={config.easier!r} is invalid; use 'high' or 'low'")
    if config.missing not in ("drop", "keep"):
        raise ValueError(f"data.difficulty.missing={config.missing!r} is invalid; use 'drop' or 'keep'")
    if config.order not in ORDERS:
        raise ValueError(
            f"data.difficulty.order={config.order!r} is invalid; valid values: {', '.join(ORDERS)}"
        )
    if config.min is not None and config.max is not None and config.min > config.max:
        raise ValueError(f"data.difficulty.min={config.min} is above data.difficulty.max={config.max}")
    if config.bands and (len(config.bands) < 2 or sorted(config.bands) != list(config.bands)):
        raise ValueError(f"data.difficulty.bands={config.bands} must be at least two increasing edges")
    if config.band_weights:
        if len(config.band_weights) != len(config.bands) - 1:
            raise ValueError(
                f"data.difficulty.band_weights has {len(config.band_weights)} weights for "
                f"{max(len(config.bands) - 1, 0)} bands; give one weight per interval of data.difficulty.bands"
            )
        if any(weight < 0 for weight in config.band_weights) or not any(config.band_weights):
            raise ValueError(
                f"data.difficulty.band_weights={config.band_weights} must be >= 0 with one above 0"
            )


def select_band(
    records: list[dict], column: str, low: float | None, high: float | None, missing: str = "drop"
) -> tuple[list[dict], list[tuple[dict, str, dict]]]:
    """Split records into those whose value lies in [low, high] and the removed ``(record, reason, detail)``."""
    kept, removed = [], []
    for record in records:
        value = difficulty_value(record, column)
        if value is None:
            if missing == "keep":
                kept.append(record)
            else:
                removed.append((record, f"no {column}", {}))
        elif (low is not None and value < low) or (high is not None and value > high):
            removed.append((record, "outside difficulty band", {column: value}))
        else:
            kept.append(record)
    return kept, removed


def band_index(value: float, edges: list[float]) -> int:
    """Return the band of ``value`` for increasing ``edges``; the last band includes its upper edge.

    >>> [band_index(v, [0.0, 0.3, 0.7, 1.0]) for v in (0.0, 0.3, 0.69, 1.0, 1.5)]
    [0, 1, 1, 2, 2]
    """
    index = bisect.bisect_right(edges, value) - 1
    return min(max(index, 0), len(edges) - 2)


def _ease(value: float, easier: str) -> float:
    return value if easier == "high" else -value


def order_by_difficulty(
    records: list[dict],
    column: str,
    order: str,
    easier: str = "high",
    bands: list[float] | None = None,
    seed: int = 0,
) -> list[dict]:
    """Order records easy to hard (or hard to easy); with ``bands``, band by band, shuffled within a band.

    Rows without a value go last.
    """
    if order == "none":
        return list(records)
    rng = random.Random(seed)
    known = [(record, difficulty_value(record, column)) for record in records]
    unknown = [record for record, value in known if value is None]
    known = [(record, value) for record, value in known if value is not None]
    hardest_first = order == "hard_to_easy"
    if bands:
        groups: dict[int, list[dict]] = {}
        for record, value in known:
            groups.setdefault(band_index(value, bands), []).append(record)
        # Bands run from low to high values; with easier == "high" the easiest band is the last one.
        band_order = sorted(groups, reverse=(easier == "high") != hardest_first)
        ordered = []
        for band in band_order:
            group = groups[band]
            rng.shuffle(group)
            ordered += group
    else:
        rng.shuffle(known)  # ties keep a seeded random order rather than the file order
        known.sort(key=lambda item: _ease(item[1], easier), reverse=not hardest_first)
        ordered = [record for record, _ in known]
    return ordered + unknown


def sample_by_band(
    records: list[dict],
    column: str,
    bands: list[float],
    weights: list[float],
    seed: int = 0,
    size: int | None = None,
) -> list[dict]:
    """Draw ``size`` records (default: as many as given) with replacement, band b with weight weights[b].

    Within a band every record is equally likely. Bands with no records are skipped and their weight
    is spread over the others; rows without a value are not drawn.
    """
    groups: dict[int, list[dict]] = {}
    for record in records:
        value = difficulty_value(record, column)
        if value is not None:
            groups.setdefault(band_index(value, bands), []).append(record)
    present = [band for band in range(len(weights)) if groups.get(band) and weights[band] > 0]
    if not present:
        raise ValueError(
            f"no training problem falls in a band with weight > 0 (bands {bands}, weights {weights}, column "
            f"{column!r}); change data.difficulty.bands or band_weights"
        )
    rng = random.Random(seed)
    size = len(records) if size is None else size
    chosen_bands = rng.choices(present, weights=[weights[band] for band in present], k=size)
    return [rng.choice(groups[band]) for band in chosen_bands]


def apply_difficulty(records: list[dict], config: Any, seed: int = 0) -> tuple[list[dict], list[tuple]]:
    """Apply a DifficultyConfig: band selection, then band resampling or ordering.

    Returns the training records and the removed ``(record, reason, detail)`` of the band selection.
    """
    removed: list[tuple] = []
    needs_values = (
        config.min is not None or config.max is not None or config.order != "none" or config.band_weights
    )
    if needs_values and not any(difficulty_value(record, config.column) is not None for record in records):
        raise ValueError(
            f"data.difficulty uses column {config.column!r}, but no training record has a value for it; "
            f"use a column the data has (e.g. llama8b_solve_rate, pass_rate or {', '.join(DIFFICULTY_COLUMNS)})"
        )
    if config.min is not None or config.max is not None:
        records, removed = select_band(records, config.column, config.min, config.max, config.missing)
        if not records:
            raise ValueError(
                f"no training problem has {config.column} in [{config.min}, {config.max}]; widen data.difficulty"
            )
        logger.info(
            "difficulty band %s in [%s, %s]: kept %d, removed %d",
            config.column,
            config.min,
            config.max,
            len(records),
            len(removed),
        )
    if config.band_weights:
        records = sample_by_band(records, config.column, config.bands, config.band_weights, seed)
    records = order_by_difficulty(
        records, config.column, config.order, config.easier, config.bands or None, seed
    )
    return records, removed
