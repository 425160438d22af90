"""``accuracy``: 1.0 when the completion's final answer equals the gold answer, else 0.0."""

from __future__ import annotations

import logging
from collections import Counter
from typing import Any

from rewards.registry import register_reward
from rewards.verify import Reason, verify_many
from rewards.verify.options import VerifyOptions

__all__ = ["Accuracy"]

logger = logging.getLogger(__name__)


@register_reward("accuracy")
class Accuracy:
    """Verifiable-answer reward over the ``answer`` column.

    Returns 1.0 for a correct final answer and 0.0 for a wrong, missing, unparsable or oversized
    one. Returns None (not scored) when the gold answer is missing or cannot be parsed, or when the
    verification ran past ``timeout``. Keyword arguments are ``VerifyOptions`` fields; ``workers``
    sets the number of verifier processes.

    >>> reward = Accuracy(timeout=0)
    >>> reward([r"... so the total is \\boxed{\\frac{1}{2}}", "I think it is 3.", "no idea"],
    ...        answer=["0.5", "3", "7"])
    [1.0, 1.0, 0.0]
    >>> reward([[{"role": "assistant", "content": r"\\boxed{4}"}]], answer=[r"\\text{unparsable \\frac"])
    [None]
    """

    def __init__(self, workers: int | None = None, **options: Any) -> None:
        self.options = VerifyOptions(**options)
        self.workers = workers
        self.reasons: Counter = Counter()
        """Count of every ``Reason`` over this instance's lifetime, for metrics."""

    def __call__(self, completions: list, answer: list | None = None, **columns: Any) -> list[float | None]:
        if answer is None:
            raise ValueError("the accuracy reward needs an 'answer' column aligned with the completions")
        if len(answer) != len(completions):
            raise ValueError(f"accuracy reward: {len(completions)} completions but {len(answer)} answers")
        scores: list[float | None] = [None] * len(completions)
        rows = [i for i, gold in enumerate(answer) if isinstance(gold, str) and gold.strip()]
        verdicts = verify_many(
            ((answer[i], completions[i]) for i in rows), self.options, workers=self.workers
        )
        for i, verdict in zip(rows, verdicts):
            self.reasons[verdict.reason] += 1
            scores[i] = None if verdict.correct is None else float(verdict.correct)
        timeouts = sum(v.reason is Reason.TIMEOUT for v in verdicts)
        if timeouts:
            logger.warning(
                "accuracy: %d of %d verifications timed out and were not scored", timeouts, len(verdicts)
            )
        if len(rows) < len(completions):
            logger.warning(
                "accuracy: %d rows have no gold answer and were not scored", len(completions) - len(rows)
            )
        return scores
