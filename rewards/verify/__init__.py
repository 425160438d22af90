"""Verification of a completion's final answer against a gold answer.

``verify`` extracts the answer, settles plain numbers and identical text in the calling process,
and sends everything else to a worker process (``rewards.verify.pool``) under a hard time limit.
Nothing here evaluates model text as code: ``rewards.verify.parse`` builds sympy objects directly.
"""

from __future__ import annotations

from typing import Any, Iterable

from rewards.extract import extract_answer
from rewards.verify.judge import Reason, Verdict, judge, quick_judge
from rewards.verify.options import VerifyOptions, resolve_options
from rewards.verify.parse import parse_answer, parse_math

__all__ = ["Reason", "Verdict", "VerifyOptions", "parse_answer", "parse_math", "verify", "verify_many"]


def _prepare(gold: str, completion: Any, options: VerifyOptions) -> Verdict | tuple[str, str]:
    """Return a finished Verdict, or the ``(gold, answer)`` pair that needs the full parser."""
    if not isinstance(gold, str):
        raise TypeError(f"gold answer must be a string, got {type(gold).__name__}: {gold!r:.80}")
    answer = extract_answer(completion, fallback=options.fallback)
    if answer is None:
        return Verdict(False, Reason.NO_ANSWER, None)
    gold = gold.strip()
    if gold.startswith(("\\boxed", "\\fbox")):
        gold = extract_answer(gold) or gold
    if len(gold) > options.max_answer_chars:
        return Verdict(None, Reason.TOO_LARGE, answer[: options.max_answer_chars])
    if len(answer) > options.max_answer_chars:
        return Verdict(False, Reason.TOO_LARGE, answer[: options.max_answer_chars])
    quick = quick_judge(gold, answer, options)
    if quick is not None:
        return Verdict(quick, Reason.EQUAL if quick else Reason.NOT_EQUAL, answer)
    return gold, answer


def verify(gold: str, completion: Any, options: VerifyOptions | None = None, **overrides: Any) -> Verdict:
    """Verify a completion (string or chat-message list) against the gold answer.

    Keyword ``overrides`` set fields of ``VerifyOptions`` (``timeout=2.0``, ``percent="value"``, ...).

    >>> verify("\\\\frac{1}{2}", "so the answer is $0.5$.").correct
    True
    >>> verify("3", "The answer is \\\\boxed{n=3k}.").reason
    <Reason.NOT_EQUAL: 'not_equal'>
    """
    return verify_many([(gold, completion)], options, **overrides)[0]


def verify_many(
    pairs: Iterable[tuple[str, Any]],
    options: VerifyOptions | None = None,
    workers: int | None = None,
    **overrides: Any,
) -> list[Verdict]:
    """Verify ``(gold, completion)`` pairs, in parallel over ``workers`` processes (default: see
    ``rewards.verify.pool.default_workers``). Results keep the order of ``pairs``."""
    opts = resolve_options(options, **overrides)
    verdicts: list[Verdict | None] = []
    slow: list[int] = []
    tasks: list[tuple[str, str, VerifyOptions]] = []
    for gold, completion in pairs:
        prepared = _prepare(gold, completion, opts)
        if isinstance(prepared, Verdict):
            verdicts.append(prepared)
            continue
        slow.append(len(verdicts))
        verdicts.append(None)
        tasks.append((prepared[0], prepared[1], opts))

    if tasks:
        if opts.timeout > 0:
            from rewards.verify.pool import get_pool

            results = get_pool(workers).run(tasks)
        else:
            results = [judge(gold, answer, opts) for gold, answer, _ in tasks]
        for index, (gold_answer, (correct, reason)) in zip(slow, zip(tasks, results)):
            verdicts[index] = Verdict(correct, reason, gold_answer[1])
    return verdicts  # type: ignore[return-value]
