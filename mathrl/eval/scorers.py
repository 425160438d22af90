"""Scorer registry: how sampled completions of a problem set become metrics, by dataset kind.

``math`` verifies final answers against ``answer``; ``claims`` scores true/false verdicts and
counterexamples (``mathrl.eval.claims``). ``scorer_kind`` picks ``claims`` for records that all
carry a ``judgement``, so generated claims, CounterMATH files and local claim files use it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from rewards import VerifyOptions, verify_many

from mathrl.eval.metrics import ProblemResult, summarize
from mathrl.registry import Registry

__all__ = ["SCORERS", "GROUP_KEYS", "Scorer", "scorer_kind", "score_math"]

GROUP_KEYS = ("subject", "level", "source")
"""Record fields that get a per-value breakdown when the data has them."""


@dataclass(frozen=True)
class Scorer:
    score: Callable[..., tuple[dict, list[ProblemResult]]]
    """``score(records, completions, samples, verify_options) -> (metrics, results)``."""
    report_lines: Callable[[dict], list[str]] | None = None
    """Extra Markdown lines for report.md, from the metrics."""


SCORERS: Registry[Scorer] = Registry("scorer")


def score_math(records: list[dict], completions: list[list[str]], samples: int,
               verify_options: VerifyOptions | None = None) -> tuple[dict, list[ProblemResult]]:
    """Verify every completion's final answer against the record's ``answer``."""
    pairs = [(record["answer"], completion)
             for record, group in zip(records, completions) for completion in group]
    verdicts = iter(verify_many(pairs, options=verify_options))
    results = []
    for record, group in zip(records, completions):
        group_verdicts = [next(verdicts) for _ in group]
        results.append(ProblemResult(
            problem=record["problem"],
            gold=record["answer"],
            completions=group,
            answers=[v.answer for v in group_verdicts],
            correct=[v.correct for v in group_verdicts],
            reasons=[str(getattr(v.reason, "value", v.reason)) for v in group_verdicts],
            group={key: str(record[key]) for key in GROUP_KEYS if record.get(key) not in (None, "")},
        ))
    return summarize(results, k=samples), results


def _score_claims(*args, **kwargs):
    from mathrl.eval.claims import score_claims

    return score_claims(*args, **kwargs)


def _claim_report_lines(metrics: dict) -> list[str]:
    from mathrl.eval.claims import claim_report_lines

    return claim_report_lines(metrics)


SCORERS.add("math", Scorer(score_math))
SCORERS.add("claims", Scorer(_score_claims, _claim_report_lines))


def scorer_kind(records: list[dict]) -> str:
    """Return ``claims`` when every record has a judgement, else ``math``."""
    if records and all(record.get("judgement") not in (None, "") for record in records):
        return "claims"
    return "math"
