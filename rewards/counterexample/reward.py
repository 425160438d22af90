r"""Rewards ``counterexample`` (the proposed counterexample checks out) and ``counterexample_judgement``
(the verdict is right, plus the counterexample check on false claims that have a predicate).

Both read the claim columns ``variables`` (a dict or a JSON string; HF datasets store nested dicts
with differing keys badly, so the generated claims use JSON strings), ``predicate`` and
``judgement``. Options are ``VerifyOptions`` fields (``timeout`` defaults to 0.5 s per check) and
``workers``.
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

from rewards.counterexample.check import DEFAULT_TIMEOUT_S, CounterexampleReason, check_counterexamples
from rewards.judgement import extract_judgement, parse_judgement
from rewards.registry import register_reward
from rewards.verify.options import VerifyOptions

__all__ = ["Counterexample", "CounterexampleJudgement"]

logger = logging.getLogger(__name__)


def _column(columns: dict, name: str, size: int) -> list:
    values = columns.get(name)
    if values is None:
        return [None] * size
    if len(values) != size:
        raise ValueError(f"column {name!r} has {len(values)} rows for {size} completions")
    return list(values)


class _ClaimReward:
    def __init__(self, workers: int | None = None, **options: Any) -> None:
        options.setdefault("timeout", DEFAULT_TIMEOUT_S)
        self.options = VerifyOptions(**options)
        self.workers = workers
        self.reasons: Counter = Counter()
        """Count of every ``CounterexampleReason`` over this instance's lifetime, for metrics."""

    def _check(self, completions: list, rows: list[int], columns: dict) -> dict[int, Any]:
        size = len(completions)
        variables = _column(columns, "variables", size)
        predicates = _column(columns, "predicate", size)
        claims = [{"variables": variables[i], "predicate": predicates[i]} for i in rows]
        verdicts = check_counterexamples(
            zip(claims, (completions[i] for i in rows)), self.options, workers=self.workers
        )
        timeouts = sum(v.reason is CounterexampleReason.TIMEOUT for v in verdicts)
        if timeouts:
            logger.warning(
                "%s: %d of %d checks timed out and were not scored", type(self).__name__, timeouts, len(rows)
            )
        for verdict in verdicts:
            self.reasons[verdict.reason] += 1
        return dict(zip(rows, verdicts))


@register_reward("counterexample")
class Counterexample(_ClaimReward):
    r"""1.0 when the completion's counterexample assigns every variable inside its domain and makes the
    predicate false, else 0.0; None for claims without a predicate and for checks that time out.

    >>> reward = Counterexample()
    >>> reward([r"Counterexample: $n = 40$. \boxed{False}", r"\boxed{n = 39}", "no idea"],
    ...        variables=['{"n": "natural"}'] * 2 + [None], predicate=["isprime(n^2 + n + 41)"] * 2 + [None])
    [1.0, 0.0, None]
    """

    def __call__(self, completions: list, **columns: Any) -> list[float | None]:
        verdicts = self._check(completions, list(range(len(completions))), columns)
        return [None if v.correct is None else float(v.correct) for v in verdicts.values()]


@register_reward("counterexample_judgement")
class CounterexampleJudgement(_ClaimReward):
    r"""The verdict reward, with credit for a valid counterexample on false claims that can be checked.

    A true claim, or a false one without a predicate, scores 1.0 for the right verdict and 0.0
    otherwise. A checkable false claim scores ``(verdict + counterexample_weight * check) /
    (1 + counterexample_weight)``, where the check counts only when the verdict is False, so
    a counterexample next to a wrong verdict earns nothing. None: no gold judgement, or the check
    timed out.

    >>> reward = CounterexampleJudgement()
    >>> reward([r"Counterexample: n = 40. \boxed{False}", r"\boxed{False}", r"\boxed{True}", r"\boxed{True}"],
    ...        judgement=["false", "false", "false", "true"], variables=['{"n": "natural"}'] * 3 + [None],
    ...        predicate=["isprime(n^2 + n + 41)"] * 3 + [None])
    [1.0, 0.5, 0.0, 1.0]
    """

    def __init__(
        self, counterexample_weight: float = 1.0, workers: int | None = None, **options: Any
    ) -> None:
        if counterexample_weight < 0:
            raise ValueError(f"counterexample_weight={counterexample_weight} must be >= 0")
        super().__init__(workers=workers, **options)
        self.counterexample_weight = counterexample_weight

    def __call__(self, completions: list, **columns: Any) -> list[float | None]:
        size = len(completions)
        golds = _column(columns, "judgement", size)
        if all(gold is None for gold in golds):
            golds = _column(columns, "answer", size)
        predicates = _column(columns, "predicate", size)
        expected = [parse_judgement(gold) for gold in golds]
        verdicts = [extract_judgement(completion) for completion in completions]
        checkable = [
            i
            for i in range(size)
            if expected[i] is False
            and verdicts[i] is False
            and predicates[i]
            and self.counterexample_weight > 0
        ]
        checks = self._check(completions, checkable, columns) if checkable else {}

        scores: list[float | None] = []
        for i in range(size):
            if expected[i] is None:
                scores.append(None)
                continue
            verdict_score = float(verdicts[i] == expected[i])
            if expected[i] is True or not predicates[i] or self.counterexample_weight == 0:
                scores.append(verdict_score)
                continue
            check = checks.get(i)
            if check is not None and check.correct is None:
                scores.append(None)
                continue
            found = float(check is not None and bool(check.correct))
            weight = self.counterexample_weight
            scores.append((verdict_score + weight * found) / (1 + weight))
        return scores
