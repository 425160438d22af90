"""Sample-level metrics: mean accuracy, unbiased pass@k, majority vote, per-group breakdowns. No torch."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field

__all__ = ["ProblemResult", "pass_at_k", "majority_answer", "summarize"]


@dataclass
class ProblemResult:
    """Verdicts of the k completions sampled for one problem."""

    problem: str
    gold: str
    completions: list[str]
    answers: list[str | None]
    """Extracted final answers, None where a completion has none."""
    correct: list[bool | None]
    """Per completion: True, False, or None when it could not be scored."""
    reasons: list[str]
    group: dict[str, str] = field(default_factory=dict)
    """Breakdown keys such as subject and level."""


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k estimate from n samples with c correct: 1 - C(n-c, k) / C(n, k).

    >>> pass_at_k(4, 1, 1)
    0.25
    >>> pass_at_k(4, 1, 4)
    1.0
    >>> pass_at_k(4, 0, 2)
    0.0
    """
    if not 0 < k <= n:
        raise ValueError(f"pass@k needs 0 < k <= n, got k={k}, n={n}")
    if n - c < k:
        return 1.0
    return 1.0 - math.prod((n - c - i) / (n - i) for i in range(k))


def _answer_key(answer: str) -> str:
    return " ".join(answer.split())


def majority_answer(answers: list[str | None]) -> int | None:
    """Return the index of the first completion whose answer is the most common one; None if none has an answer.

    >>> majority_answer(["4", None, " 5", "5"])
    2
    """
    keys = [_answer_key(a) if a is not None else None for a in answers]
    counts = Counter(k for k in keys if k is not None)
    if not counts:
        return None
    best = max(counts.values())
    winner = next(k for k in keys if k is not None and counts[k] == best)
    return keys.index(winner)


def _summarize_group(results: list[ProblemResult], k: int) -> dict:
    scored = [c for r in results for c in r.correct if c is not None]
    samples = sum(len(r.correct) for r in results)
    no_answer = sum(a is None for r in results for a in r.answers)
    pass_values, maj_values = [], []
    for r in results:
        n = len(r.correct)
        c = sum(bool(x) for x in r.correct)
        pass_values.append(pass_at_k(n, c, min(k, n)))
        index = majority_answer(r.answers)
        maj_values.append(float(bool(r.correct[index])) if index is not None else 0.0)
    return {
        "n": len(results),
        "samples": samples,
        "accuracy": sum(scored) / samples if samples else 0.0,
        f"pass@{k}": sum(pass_values) / len(pass_values) if pass_values else 0.0,
        f"maj@{k}": sum(maj_values) / len(maj_values) if maj_values else 0.0,
        "frac_no_answer": no_answer / samples if samples else 0.0,
        "frac_unscored": (samples - len(scored)) / samples if samples else 0.0,
    }


def summarize(results: list[ProblemResult], k: int) -> dict:
    """Return overall metrics plus a breakdown for each group key (subject, level, ...) present in the data.

    ``accuracy`` is the mean over all samples, counting unscorable ones as wrong; their share is
    reported separately as ``frac_unscored``.
    """
    metrics = _summarize_group(results, k)
    keys = sorted({key for r in results for key in r.group})
    breakdowns = {}
    for key in keys:
        buckets: dict[str, list[ProblemResult]] = defaultdict(list)
        for r in results:
            if key in r.group:
                buckets[str(r.group[key])].append(r)
        breakdowns[key] = {value: _summarize_group(rs, k) for value, rs in sorted(buckets.items())}
    metrics["by"] = breakdowns
    return metrics
