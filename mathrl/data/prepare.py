"""Apply a recipe's data section (filters, then the difficulty band and order) to the training records."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from mathrl.data.curriculum import apply_difficulty
from mathrl.data.filters import run_filters, write_outputs
from mathrl.data.filters.pipeline import FilterReport

__all__ = ["prepare_training_records"]

logger = logging.getLogger(__name__)


def prepare_training_records(
    records: list[dict], data: Any, seed: int = 0, out_dir: str | Path | None = None, source: str = "train"
) -> list[dict]:
    """Run ``data.filters`` and ``data.difficulty`` (a recipe DataConfig) over ``records``.

    With ``out_dir`` the kept rows, the removed rows (filters and band) and the report are written
    there (``kept.jsonl``, ``removed.jsonl``, ``report.json``, ``report.md``).
    """
    if not data.filters and data.difficulty == type(data.difficulty)():
        return records

    result = run_filters(records, data.filters)
    if not result.kept:
        raise ValueError(
            f"the data filters removed every training problem ({len(records)} rows); loosen data.filters"
        )
    kept, band_removed = apply_difficulty(result.kept, data.difficulty, seed)
    if band_removed:
        reasons: dict[str, int] = {}
        for record, reason, detail in band_removed:
            row = dict(record)
            row["removed_by"] = {"filter": "difficulty", "reason": reason, "detail": detail}
            result.removed.append(row)
            reasons[reason] = reasons.get(reason, 0) + 1
        result.steps.append(
            FilterReport(
                "difficulty",
                {"column": data.difficulty.column, "min": data.difficulty.min, "max": data.difficulty.max},
                len(result.kept),
                len(band_removed),
                reasons,
                0.0,
            )
        )
    result.kept = kept
    if out_dir is not None:
        write_outputs(result, out_dir, source, extra={"difficulty_order": data.difficulty.order})
        logger.info(
            "training data: %d of %d problems kept; removed rows and report in %s",
            len(kept),
            len(records),
            out_dir,
        )
    return kept
