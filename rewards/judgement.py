r"""``judgement``: 1.0 when the completion's true/false verdict on a claim matches the gold judgement.

``extract_judgement`` reads the verdict from, in order: the last boxed answer that starts or ends
with a verdict word (``\boxed{False}``, ``\boxed{\text{True}}``, ``\boxed{False, n = 40}``), then
the last sentence that states one ("the statement is false", "this claim is not true", "the
statement does not hold", "Answer: True"), then a completion that is only a verdict word.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from typing import Any

from rewards.extract import boxed_contents, completion_text
from rewards.registry import register_reward

__all__ = ["Judgement", "extract_judgement", "parse_judgement"]

logger = logging.getLogger(__name__)

_TRUE_WORDS = {"true", "t", "yes", "correct", "valid", "holds", "right"}
_FALSE_WORDS = {"false", "f", "no", "incorrect", "invalid", "wrong"}
_BOX_WORD = re.compile(
    r"^\s*(?:\\(?:text|textbf|mathrm|mathbf|textsf)\s*\{)?\s*([A-Za-z]+)\s*\}?\s*(?:[,;:.]|$)"
    r"|(?:[,;:]|^)\s*(?:\\(?:text|textbf|mathrm|mathbf|textsf)\s*\{)?\s*([A-Za-z]+)\s*\}?\s*$"
)
_SUBJECT = r"(?:statement|claim|proposition|assertion|conjecture|it|this|that|answer|judg(?:e)?ment|verdict)"
_STATED = re.compile(
    rf"\b{_SUBJECT}\s+(?:is|was|would\s+be|seems|must\s+be)\s+(not\s+)?(?:\w+\s+)?(true|false|correct|incorrect|valid|invalid)\b"
    rf"|\b{_SUBJECT}\s+(does\s+not|doesn't|fails\s+to)\s+hold\b"
    rf"|\b{_SUBJECT}\s+(holds)\b"
    r"|\b(?:final\s+)?(?:answer|judg(?:e)?ment|verdict)\s*[:：]\s*\**\s*(true|false)\b",
    re.IGNORECASE,
)
_TAIL_CHARS = 4000


def parse_judgement(value: Any) -> bool | None:
    """Read a gold judgement (True/False, "true"/"false", "True"/"False") as a bool; None if missing.

    >>> parse_judgement("False"), parse_judgement(True), parse_judgement(None)
    (False, True, None)
    """
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        word = value.strip().lower()
        if word in ("true", "false"):
            return word == "true"
        if not word:
            return None
    if value is None:
        return None
    raise ValueError(f"invalid judgement {value!r}; use true or false")


def _word_verdict(word: str | None) -> bool | None:
    if word is None:
        return None
    word = word.lower()
    if word in _TRUE_WORDS:
        return True
    if word in _FALSE_WORDS:
        return False
    return None


def _stated_verdict(match: re.Match) -> bool | None:
    negated, word, fails, holds, cue_word = match.groups()
    if fails:
        return False
    if holds:
        return True
    if cue_word:
        return cue_word.lower() == "true"
    verdict = _word_verdict(word)
    if verdict is None:
        return None
    return (not verdict) if negated else verdict


def extract_judgement(completion: Any) -> bool | None:
    r"""Return the verdict a completion gives on a claim (True or False), or None when it gives none.

    >>> extract_judgement(r"Take n = 40. \boxed{False}"), extract_judgement("So the statement is not true.")
    (False, False)
    >>> extract_judgement(r"\boxed{\text{True}}"), extract_judgement("The claim holds for every n.")
    (True, True)
    >>> extract_judgement("n = 40") is None
    True
    """
    text = completion_text(completion)
    for boxed in reversed(boxed_contents(text)):
        match = _BOX_WORD.search(boxed)
        if match:
            verdict = _word_verdict(match.group(1) or match.group(2))
            if verdict is not None:
                return verdict
    tail = text[-_TAIL_CHARS:]
    for match in reversed(list(_STATED.finditer(tail))):
        verdict = _stated_verdict(match)
        if verdict is not None:
            return verdict
    bare = tail.strip().strip("*.$ ").lower()
    return _word_verdict(bare) if bare in ("true", "false") else None


@register_reward("judgement")
class Judgement:
    r"""Claim-verdict reward over the ``judgement`` column (or ``answer`` when there is none).

    Returns 1.0 when the completion's verdict matches, 0.0 when it differs or is missing, and None
    when the row has no gold judgement.

    >>> Judgement()([r"n = 40 fails. \boxed{False}", "The statement is true.", "unsure"],
    ...             judgement=["false", "false", "true"])
    [1.0, 0.0, 0.0]
    """

    def __init__(self) -> None:
        self.reasons: Counter = Counter()
        """Count of ``match``, ``mismatch``, ``no_verdict`` and ``no_gold`` over this instance's lifetime."""

    def __call__(
        self, completions: list, judgement: list | None = None, answer: list | None = None, **columns: Any
    ) -> list[float | None]:
        golds = judgement if judgement is not None else answer
        if golds is None:
            raise ValueError(
                "the judgement reward needs a 'judgement' (or 'answer') column aligned with the completions"
            )
        if len(golds) != len(completions):
            raise ValueError(f"judgement reward: {len(completions)} completions but {len(golds)} judgements")
        scores: list[float | None] = []
        for completion, gold in zip(completions, golds):
            expected = parse_judgement(gold)
            if expected is None:
                self.reasons["no_gold"] += 1
                scores.append(None)
                continue
            verdict = extract_judgement(completion)
            if verdict is None:
                outcome = "no_verdict"
            elif verdict == expected:
                outcome = "match"
            else:
                outcome = "mismatch"
            self.reasons[outcome] += 1
            scores.append(1.0 if outcome == "match" else 0.0)
        missing = sum(score is None for score in scores)
        if missing:
            logger.warning(
                "judgement: %d of %d rows have no gold judgement and were not scored", missing, len(scores)
            )
        return scores
