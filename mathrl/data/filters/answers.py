r"""Filters on the gold answer and on the difficulty columns: missing answers, answers the verifier
cannot parse, solve-rate bands and rows without GRPO signal."""

from __future__ import annotations

import logging
import math

from mathrl.data.filters.base import Filter, FilterResult, Removal, RowFilter, register_filter

__all__ = ["MissingAnswer", "NoSignal", "SolveRateBand", "UnparsableAnswer"]

logger = logging.getLogger(__name__)

_PLACEHOLDER_ANSWERS = {"", "none", "null", "n/a", "na", "nan", "?", "-", "\\text{none}"}


@register_filter
class MissingAnswer(RowFilter):
    """Remove rows with an empty problem, or an answer that is missing, empty or a placeholder (None, N/A)."""

    name = "missing_answer"

    def check(self, record: dict):
        problem = record.get("problem")
        if not isinstance(problem, str) or not problem.strip():
            return "empty problem", {}
        answer = record.get("answer")
        if answer is None:
            return "missing answer", {}
        if str(answer).strip().lower() in _PLACEHOLDER_ANSWERS:
            return "missing answer", {"answer": answer}
        return None


@register_filter
class UnparsableAnswer(Filter):
    r"""Remove rows whose gold answer the verifier cannot parse (verdict ``correct is None``).

    Each gold answer is verified against the completion ``\boxed{0}``: a parseable gold gives a
    True/False verdict, an unparseable, oversized or timed-out one gives None with its reason.
    ``verify_options`` are the verifier's options (``timeout``, ...). Needs ``rewards.verify``.
    """

    name = "unparsable_answer"

    def __init__(self, verify_options: dict | None = None, workers: int | None = None):
        self.verify_options = dict(verify_options or {})
        self.workers = workers

    def apply(self, records: list[dict]) -> FilterResult:
        import rewards

        if not hasattr(rewards, "verify"):
            raise RuntimeError(
                "filter 'unparsable_answer' needs the answer verifier (rewards.verify), which this install "
                "lacks; update mathrl or remove the filter from the list"
            )
        probe = "\\boxed{0}"
        checked = [record for record in records if isinstance(record.get("answer"), str)]
        pairs = [(record["answer"], probe) for record in checked]
        if hasattr(rewards, "verify_many"):
            verdicts = rewards.verify_many(pairs, workers=self.workers, **self.verify_options)
        else:
            verdicts = [rewards.verify(gold, completion, **self.verify_options) for gold, completion in pairs]

        unparsable = set()
        removed = []
        for record, verdict in zip(checked, verdicts):
            if verdict.correct is None:
                unparsable.add(id(record))
                reason = getattr(verdict.reason, "value", verdict.reason)
                removed.append(Removal(record, "unparsable answer", {"verifier_reason": str(reason)}))
        kept = []
        for record in records:
            if not isinstance(record.get("answer"), str):
                removed.append(Removal(record, "missing answer", {}))
            elif id(record) not in unparsable:
                kept.append(record)
        return FilterResult(kept, removed)


def _rate(record: dict, column: str) -> float | None:
    value = record.get(column)
    if value is None or isinstance(value, bool):
        return None
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(value) else value


@register_filter
class SolveRateBand(Filter):
    """Keep rows whose ``column`` (default ``llama8b_solve_rate``) lies in [min, max].

    When no row has the column the step keeps everything and logs a warning. Rows without a value
    are removed (``missing: drop``) or kept (``missing: keep``).
    """

    name = "solve_rate_band"

    def __init__(
        self,
        column: str = "llama8b_solve_rate",
        min: float | None = None,
        max: float | None = None,
        missing: str = "drop",
    ):
        if missing not in ("drop", "keep"):
            raise ValueError(f"solve_rate_band missing={missing!r} is invalid; use 'drop' or 'keep'")
        if min is not None and max is not None and min > max:
            raise ValueError(f"solve_rate_band min={min} is above max={max}")
        self.column, self.min, self.max, self.missing = column, min, max, missing

    def apply(self, records: list[dict]) -> FilterResult:
        if not any(_rate(record, self.column) is not None for record in records):
            logger.warning("solve_rate_band: no row has a %r value; the band is not applied", self.column)
            return FilterResult(list(records), [])
        kept, removed = [], []
        for record in records:
            rate = _rate(record, self.column)
            if rate is None:
                if self.missing == "keep":
                    kept.append(record)
                else:
                    removed.append(Removal(record, f"no {self.column}", {}))
            elif (self.min is not None and rate < self.min) or (self.max is not None and rate > self.max):
                removed.append(Removal(record, "outside band", {self.column: rate}))
            else:
                kept.append(record)
        return FilterResult(kept, removed)


@register_filter
class NoSignal(RowFilter):
    """Remove rows whose pass rate (from ``mathrl data pass-rate``) is 0 or 1: every completion of such a
    problem gets the same reward, so its GRPO advantage is zero. Rows without the column are kept."""

    name = "no_signal"

    def __init__(self, column: str = "pass_rate"):
        self.column = column

    def check(self, record: dict):
        rate = _rate(record, self.column)
        if rate == 0.0:
            return "never solved", {self.column: rate}
        if rate == 1.0:
            return "always solved", {self.column: rate}
        return None
