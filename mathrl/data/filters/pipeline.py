"""Run filters in order and write the kept rows, a side file of every removed row, and a report.

Output folder layout (see data_cards/filtered.md): ``kept.jsonl``, ``removed.jsonl`` (each row with
a ``removed_by`` object: filter, reason, detail), ``report.json`` and ``report.md``.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from mathrl.data.filters.base import Filter, build_filter

__all__ = [
    "BIG_MATH_FILTERS",
    "FilterReport",
    "PipelineResult",
    "build_filters",
    "run_filters",
    "write_outputs",
]

logger = logging.getLogger(__name__)

BIG_MATH_FILTERS = (
    "missing_answer",
    "exact_dedup",
    "near_dedup",
    "multiple_choice",
    "binary_answer",
    "multi_part",
    "proof",
    "figures_links",
    "non_english",
    "unparsable_answer",
    "decontaminate",
)
"""The default curation, in order: cheap row checks run before the set-level steps."""


@dataclass
class FilterReport:
    name: str
    options: dict[str, Any]
    input_rows: int
    removed: int
    reasons: dict[str, int]
    seconds: float
    examples: list[dict] = field(default_factory=list)
    """Up to five removed rows (id, reason, detail), or every removal when the filter is decontaminate."""


@dataclass
class PipelineResult:
    kept: list[dict]
    removed: list[dict]
    steps: list[FilterReport]

    def summary(self) -> dict[str, Any]:
        total = len(self.kept) + len(self.removed)
        return {
            "input_rows": total,
            "kept": len(self.kept),
            "removed": len(self.removed),
            "steps": [step.__dict__ for step in self.steps],
        }


def build_filters(specs: Iterable[Any]) -> list[Filter]:
    """Build filters from names, ``{"name": ..., "options": {...}}`` dicts, FilterSpec objects or Filters."""
    filters = []
    for spec in specs:
        if isinstance(spec, Filter):
            filters.append(spec)
        elif isinstance(spec, str):
            filters.append(build_filter(spec))
        elif isinstance(spec, dict):
            unknown = sorted(set(spec) - {"name", "options"})
            if "name" not in spec or unknown:
                raise ValueError(f"invalid filter spec {spec!r}; expected {{name: ..., options: {{...}}}}")
            filters.append(build_filter(spec["name"], spec.get("options")))
        else:
            filters.append(build_filter(spec.name, spec.options))
    return filters


def _example(record: dict, reason: str, detail: dict) -> dict:
    problem = record.get("problem") or ""
    return {"id": record.get("id"), "reason": reason, "detail": detail, "problem": problem[:160]}


def run_filters(records: list[dict], filters: Iterable[Any]) -> PipelineResult:
    """Apply ``filters`` in order; every removed row is returned with ``removed_by`` set, none is dropped."""
    kept = list(records)
    removed: list[dict] = []
    steps: list[FilterReport] = []
    for step in build_filters(filters):
        started = time.perf_counter()
        result = step.apply(kept)
        seconds = time.perf_counter() - started
        if len(result.kept) + len(result.removed) != len(kept):
            raise RuntimeError(
                f"filter {step.name!r} returned {len(result.kept)} kept + {len(result.removed)} removed rows "
                f"for {len(kept)} input rows; a filter must account for every row"
            )
        reasons = Counter(removal.reason for removal in result.removed)
        limit = None if step.name == "decontaminate" else 5
        examples = [_example(r.record, r.reason, r.detail) for r in result.removed[:limit]]
        steps.append(
            FilterReport(
                step.name,
                step.options(),
                len(kept),
                len(result.removed),
                dict(reasons),
                round(seconds, 3),
                examples,
            )
        )
        for removal in result.removed:
            row = dict(removal.record)
            row["removed_by"] = {"filter": step.name, "reason": removal.reason, "detail": removal.detail}
            removed.append(row)
        logger.info(
            "filter %s: removed %d of %d rows%s",
            step.name,
            len(result.removed),
            len(kept),
            f" ({', '.join(f'{k}: {v}' for k, v in reasons.items())})" if reasons else "",
        )
        kept = result.kept
    return PipelineResult(kept, removed, steps)


def _write_jsonl(path: Path, rows: Iterable[dict]) -> None:
    with path.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False, default=str) + "\n")


def _report_markdown(source: str, result: PipelineResult) -> str:
    summary = result.summary()
    lines = [
        f"# Filter report: {source}",
        "",
        f"{summary['input_rows']} rows in, {summary['kept']} kept, {summary['removed']} removed.",
        "",
        "| step | filter | rows in | removed | reasons | seconds |",
        "|---|---|---|---|---|---|",
    ]
    for number, step in enumerate(result.steps, start=1):
        reasons = ", ".join(f"{reason}: {count}" for reason, count in sorted(step.reasons.items())) or "-"
        lines.append(
            f"| {number} | {step.name} | {step.input_rows} | {step.removed} | {reasons} | {step.seconds} |"
        )
    for step in result.steps:
        if step.name == "decontaminate" and step.examples:
            lines += [
                "",
                "## Decontamination matches",
                "",
                "| id | eval set | eval id | match | overlap |",
                "|---|---|---|---|---|",
            ]
            for example in step.examples:
                detail = example["detail"]
                lines.append(
                    f"| {example['id']} | {detail['eval_set']} | {detail['eval_id']} | {detail['match']} "
                    f"| {detail['overlap']} |"
                )
    return "\n".join(lines) + "\n"


def write_outputs(
    result: PipelineResult, out_dir: str | Path, source: str, extra: dict | None = None
) -> Path:
    """Write kept.jsonl, removed.jsonl, report.json and report.md under ``out_dir``; return the folder."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    _write_jsonl(out_dir / "kept.jsonl", result.kept)
    _write_jsonl(out_dir / "removed.jsonl", result.removed)
    report = {"source": source, **(extra or {}), **result.summary()}
    (out_dir / "report.json").write_text(json.dumps(report, indent=2, ensure_ascii=False, default=str) + "\n")
    (out_dir / "report.md").write_text(_report_markdown(source, result))
    return out_dir
