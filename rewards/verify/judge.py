"""Parse and compare one gold/answer pair in the current process (no time limit of its own)."""

from __future__ import annotations

import enum
import logging
import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from rewards.verify.errors import ParseError, TooLarge
from rewards.verify.options import VerifyOptions

__all__ = ["Reason", "Verdict", "judge", "quick_judge"]

logger = logging.getLogger(__name__)


class Reason(str, enum.Enum):
    """Cause of a verdict. Each value gets its own metric in training logs."""

    EQUAL = "equal"
    NOT_EQUAL = "not_equal"
    NO_ANSWER = "no_answer"
    UNPARSED_GOLD = "unparsed_gold"
    UNPARSED_ANSWER = "unparsed_answer"
    TIMEOUT = "timeout"
    TOO_LARGE = "too_large"


@dataclass(frozen=True)
class Verdict:
    """Result of one verification. ``correct`` is None when the pair could not be judged
    (unparsable or oversized gold, timeout), never as a synonym for wrong."""

    correct: bool | None
    reason: Reason
    answer: str | None


_PLAIN_NUMBER = re.compile(r"^\s*(-?)\s*(\d+(?:\.\d+)?|\.\d+)\s*$")
_PLAIN_FRACTION = re.compile(r"^\s*(-?)\s*(?:\\[dt]?frac\{(\d+)\}\{(\d+)\}|(\d+)\s*/\s*(\d+))\s*$")
_COSMETIC = re.compile(r"\\[,;:! ]|\\(?:left|right|displaystyle)(?![a-zA-Z])|\\[dt]frac|\s|\$|\.$")


def _plain_value(text: str) -> tuple[Fraction, bool] | None:
    """Exact value of a plain integer, decimal or simple fraction, and whether it was a decimal."""
    m = _PLAIN_NUMBER.match(text)
    if m:
        sign = -1 if m.group(1) else 1
        return sign * Fraction(m.group(2)), "." in m.group(2)
    m = _PLAIN_FRACTION.match(text)
    if m:
        sign = -1 if m.group(1) else 1
        num, den = (m.group(2), m.group(3)) if m.group(2) is not None else (m.group(4), m.group(5))
        if int(den) == 0 or len(num) > 1000 or len(den) > 1000:
            return None
        return sign * Fraction(int(num), int(den)), False
    return None


def _cosmetic_key(text: str) -> str:
    return _COSMETIC.sub("", text.replace(r"\dfrac", r"\frac").replace(r"\tfrac", r"\frac"))


def quick_judge(gold: str, answer: str, options: VerifyOptions) -> bool | None:
    """Decide the common cases without sympy: identical text, or two plain numbers/fractions.

    Returns None when the full parser is needed.
    """
    if _cosmetic_key(gold) == _cosmetic_key(answer) and _cosmetic_key(gold):
        return True
    if len(gold) > 200 or len(answer) > 200:
        return None
    g, a = _plain_value(gold), _plain_value(answer)
    if g is None or a is None:
        return None
    (gv, g_decimal), (av, a_decimal) = g, a
    if gv == av:
        return True
    if not (g_decimal or a_decimal):
        return False
    if gv == 0 or av == 0:
        return abs(gv - av) <= Fraction(options.abs_tol)
    return abs(gv - av) <= Fraction(options.rel_tol) * max(abs(gv), abs(av))


_CHOICE_PREFIX = re.compile(r"^\s*(?:\\text(?:bf)?\{\s*)?\(?\s*([A-Z])\s*\)?(?:[\s.:)}]|$)")


def _choice_letter(gold: str, gold_node: Any, options: VerifyOptions) -> str | None:
    from rewards.verify import nodes

    if isinstance(gold_node, nodes.Choice):
        return gold_node.letter
    name = getattr(gold_node, "name", None)
    if isinstance(name, str) and len(name) == 1 and name in options.choices and len(gold.strip()) <= 3:
        return name
    label = _CHOICE_PREFIX.match(gold)
    if label and label.group(1) in options.choices and gold.lstrip().startswith(("(", "\\text")):
        return label.group(1)
    return None


def judge(gold: str, answer: str, options: VerifyOptions) -> tuple[bool | None, Reason]:
    """Parse both sides and compare them; bounds errors become ``too_large``."""
    from rewards.verify.compare import answers_equal
    from rewards.verify.parse import parse_answer

    try:
        gold_node = parse_answer(gold, options)
    except TooLarge:
        return None, Reason.TOO_LARGE
    except ParseError as exc:
        gold_node = None
        if _choice_letter(gold, None, options) is None:
            logger.debug("gold %r not parsed: %s", gold[:80], exc)
            return None, Reason.UNPARSED_GOLD

    gold_letter = _choice_letter(gold, gold_node, options)
    answer_label = _CHOICE_PREFIX.match(answer)
    if answer_label and answer_label.group(1) not in options.choices:
        answer_label = None
    if gold_letter is not None and answer_label:
        equal = answer_label.group(1) == gold_letter
        return equal, Reason.EQUAL if equal else Reason.NOT_EQUAL
    if (
        gold_letter is None
        and answer_label
        and answer_label.end() < len(answer)
        and (answer.lstrip().startswith(("(", "\\text")))
    ):
        # "(C) 12" against a gold of 12: the option label is not part of the value.
        answer = answer[answer_label.end() :].strip() or answer
    if gold_node is None:
        # A labelled-option gold such as "(B) 25" against an unlabelled answer: compare the value.
        label = _CHOICE_PREFIX.match(gold)
        try:
            gold_node = parse_answer(gold[label.end() :], options)
        except (ParseError, TooLarge):
            return None, Reason.UNPARSED_GOLD

    try:
        answer_node = parse_answer(answer, options)
    except TooLarge:
        return False, Reason.TOO_LARGE
    except ParseError as exc:
        logger.debug("answer %r not parsed: %s", answer[:80], exc)
        return False, Reason.UNPARSED_ANSWER

    equal = bool(answers_equal(gold_node, answer_node, options))
    return equal, Reason.EQUAL if equal else Reason.NOT_EQUAL
