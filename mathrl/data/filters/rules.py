r"""Rule-based filters for problems without one closed-form answer: multiple choice, true/false and
yes/no, multi-part and proof problems; plus a hook for a model-based classifier.

The rules err towards keeping a row: each needs a clear marker (three option letters, two part
labels, a proof verb without a question to answer), because a wrongly removed row is lost training
data while a wrongly kept one costs one noisy group.
"""

from __future__ import annotations

import re

from mathrl.data.filters.base import RowFilter, register_filter

__all__ = ["BinaryAnswer", "MultiPart", "MultipleChoice", "ProofProblem"]

# "(A)", "\textbf{(B)}", "\mathrm{(C)}", "A.", "A)" or "A:" at a line start, "A. " after whitespace.
_OPTION_PAREN = re.compile(r"\(\s*([A-E])\s*\)")
_OPTION_LINE = re.compile(r"(?m)^\s*(?:\\item\s*)?([A-E])\s*[.):：]\s*\S")
_OPTION_INLINE = re.compile(r"(?:(?<=\s)|(?<=\$)|(?<=^))([A-E])[.:：]\s+(?=\S)")
_CHOICE_PHRASES = re.compile(
    r"which of the following|the following (?:options|choices|statements)|choose the (?:correct|right)|"
    r"select the (?:correct|right)|answer choices|options?\s*:",
    re.IGNORECASE,
)
_CHOICE_ANSWER = re.compile(r"^\s*(?:\\text(?:bf)?\{\s*)?\(?\s*([A-E])\s*\)?\s*\}?\s*\.?\s*$")


def _option_letters(text: str) -> set[str]:
    letters = set(_OPTION_PAREN.findall(text)) | set(_OPTION_LINE.findall(text))
    if len(letters) < 3:
        letters |= set(_OPTION_INLINE.findall(text))
    return letters


@register_filter
class MultipleChoice(RowFilter):
    r"""Remove multiple-choice problems: options A, B and C present, or a choice phrase with a letter answer."""

    name = "multiple_choice"

    def __init__(self, min_options: int = 3):
        if min_options < 2:
            raise ValueError(f"multiple_choice min_options={min_options} must be >= 2")
        self.min_options = min_options

    def check(self, record: dict):
        problem = record.get("problem") or ""
        answer = record.get("answer") or ""
        letters = _option_letters(problem)
        # The options must start at A and run on without a gap (A, B, C), so "point C" alone does not count.
        run = 0
        for letter in "ABCDE":
            if letter not in letters:
                break
            run += 1
        if run >= self.min_options:
            return "multiple choice", {"options": "".join(sorted(letters))}
        if _CHOICE_ANSWER.match(answer) and (run >= 2 or _CHOICE_PHRASES.search(problem)):
            return "multiple choice", {"answer_letter": _CHOICE_ANSWER.match(answer).group(1)}
        return None


_TRUE_FALSE_ANSWERS = {"true", "false", "t", "f", "correct", "incorrect", "wrong", "right"}
_YES_NO_ANSWERS = {"yes", "no", "y", "n"}
_TRUE_FALSE_PHRASE = re.compile(
    r"\btrue\s+or\s+false\s*[:?]|\(\s*true\s*/\s*false\s*\)|\b(?:is|are)\s+(?:it|this|the\s+following\s+statements?)\s+true\s+or\s+false\b",
    re.I,
)
_YES_NO_PHRASE = re.compile(
    r"\b(?:answer|reply|respond)\s+(?:with\s+)?['\"]?yes['\"]?\s+or\s+['\"]?no\b", re.I
)
_ANSWER_WRAPPER = re.compile(r"\\(?:text|textbf|mathrm|mbox)\{([^{}]*)\}")


def _plain_answer(answer: str) -> str:
    answer = _ANSWER_WRAPPER.sub(r"\1", answer)
    return re.sub(r"[\s$.!{}\\]", "", answer).lower()


@register_filter
class BinaryAnswer(RowFilter):
    """Remove true/false and yes/no problems, by their answer or by an explicit "true or false" phrase."""

    name = "binary_answer"

    def check(self, record: dict):
        answer = _plain_answer(record.get("answer") or "")
        problem = record.get("problem") or ""
        if answer in _TRUE_FALSE_ANSWERS or _TRUE_FALSE_PHRASE.search(problem):
            return "true/false", {"answer": record.get("answer")}
        if answer in _YES_NO_ANSWERS or _YES_NO_PHRASE.search(problem):
            return "yes/no", {"answer": record.get("answer")}
        return None


# Part labels at a line start or after a sentence end: "(a)", "a)", "(1)", "(i)", "Part 2", "(I)".
_PART_LABEL = re.compile(
    r"(?:^|(?<=[.?!:;])|(?<=\n))\s*(?:\(\s*([a-d]|i{1,3}|iv|I{1,3}|IV|[1-4])\s*\)|([a-d])\)|[Pp]art\s+\(?([a-d1-4]|I{1,3})\)?)"
)
_PART_ORDER = ("a", "b", "c", "d")
_ROMAN = ("i", "ii", "iii", "iv")
_NUMBERS = ("1", "2", "3", "4")
_ANSWER_PARTS = re.compile(r"\(\s*(?:[a-d]|i{1,3}|[1-4])\s*\)|\b[Pp]art\s+[a-d1-4]\b")


def _part_count(labels: set[str]) -> int:
    best = 0
    for sequence in (_PART_ORDER, _ROMAN, _NUMBERS):
        run = 0
        for label in sequence:
            if label not in labels:
                break
            run += 1
        best = max(best, run)
    return best


@register_filter
class MultiPart(RowFilter):
    """Remove problems with two or more labelled parts ((a)/(b), (1)/(2), (i)/(ii), Part 1/Part 2),
    or whose answer carries part labels."""

    name = "multi_part"

    def check(self, record: dict):
        problem = record.get("problem") or ""
        labels = {
            next(group for group in match.groups() if group).lower()
            for match in _PART_LABEL.finditer(problem)
        }
        parts = _part_count(labels)
        if parts >= 2:
            return "multi-part", {"parts": parts}
        if len(_ANSWER_PARTS.findall(record.get("answer") or "")) >= 2:
            return "multi-part", {"answer": record.get("answer")}
        return None


_PROOF_VERBS = re.compile(r"\b(?:prove|proof|show|demonstrate|verify|justify)\b(?:\s+that\b)?", re.IGNORECASE)
_QUESTION_CUES = re.compile(
    r"\b(?:find|compute|calculate|evaluate|determine|what|how\s+many|how\s+much|which|solve|simplify|express)\b|\?",
    re.IGNORECASE,
)
_PROOF_ANSWERS = {
    "proof",
    "seeproof",
    "qed",
    "q.e.d",
    "blacksquare",
    "shown",
    "proven",
    "proved",
    "provedabove",
    "seesolution",
    "seeexplanation",
    "none",
}


@register_filter
class ProofProblem(RowFilter):
    """Remove proof problems: a placeholder answer ("proof", "QED", ...), or a proof verb with no question.

    "Show that f is odd and find f(2)" is kept, because it also asks for a value.
    """

    name = "proof"

    def check(self, record: dict):
        answer = _plain_answer(record.get("answer") or "")
        if answer in _PROOF_ANSWERS:
            return "proof", {"answer": record.get("answer")}
        problem = record.get("problem") or ""
        verb = _PROOF_VERBS.search(problem)
        if verb and not _QUESTION_CUES.search(problem):
            return "proof", {"phrase": verb.group(0)}
        return None
