"""Final-answer extraction from a model completion.

``extract_answer`` looks for, in order: the last ``\\boxed{}``/``\\fbox{}`` (nested braces handled),
then the last explicit cue ("the answer is ...", "Final Answer: ...", "#### ..."). With
``fallback=True`` it then tries a completion that is only an answer, the final math span or bold
text, and last the final number. Every step scans the text a bounded number of times, so a
megabyte-long completion costs milliseconds.
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["extract_answer", "completion_text", "boxed_contents"]

_BOX = re.compile(r"\\(?:boxed|fbox)\b")
_CUES = re.compile(
    r"(?:final\s+answer\s*(?:is)?|(?:the\s+)?(?:final\s+|correct\s+)?answer\s+is|\banswer\s*[:：]|####"
    r"|correct\s+(?:option|choice)\s+is)"
    r"\s*[:：]?\s*(?:\*\*)?\s*[:：]?",
    re.IGNORECASE,
)
_MATH_SPAN = re.compile(r"\$\$(.+?)\$\$|\\\[(.+?)\\\]|\\\((.+?)\\\)|\$(.+?)\$", re.DOTALL)
_BOLD = re.compile(r"\*\*([^*\n]{1,80})\*\*")
_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?(?:\s*/\s*\d+)?\s*%?|-?\.\d+\s*%?")
_QUESTION_START = re.compile(
    r"^\W*(?:find|compute|calculate|evaluate|simplify|determine|solve|what|which|how|show|prove|let|suppose|"
    r"given|if|is|are|does|do|can)\b",
    re.IGNORECASE,
)
_CONNECTOR = re.compile(r"^\s*(?:,|;|,?\s*(?:and|or)\b)\s*$", re.IGNORECASE)
_TAIL_CHARS = 4000  # fallbacks only read the end of a completion
_BARE_MAX_CHARS = 300
_MAX_CUE_CANDIDATES = 200
_LONG_ANSWER_CHARS = 20_000


def completion_text(completion: Any) -> str:
    """Return the text of a completion: a string, or the last assistant message of a chat list.

    User and system messages are never read, so a question restated in the prompt is not an answer.
    """
    if isinstance(completion, str):
        return completion
    if isinstance(completion, dict):
        return _content(completion)
    if isinstance(completion, (list, tuple)):
        messages = [m for m in completion if isinstance(m, dict)]
        if len(messages) != len(completion):
            raise TypeError(f"a chat completion must be a list of message dicts, got {completion!r:.80}")
        assistant = [m for m in messages if m.get("role", "assistant") == "assistant"]
        return _content(assistant[-1]) if assistant else ""
    raise TypeError(
        f"completion must be a string or a list of chat messages, got {type(completion).__name__}"
    )


def _content(message: dict) -> str:
    content = message.get("content", "")
    if isinstance(content, list):  # content parts, as in multimodal chat formats
        return "".join(p.get("text", "") for p in content if isinstance(p, dict))
    return content if isinstance(content, str) else ""


_BRACE_TOKEN = re.compile(r"\\.|[{}]", re.DOTALL)


def _brace_pairs(text: str, start: int) -> dict[int, int]:
    """Map each ``{`` at or after ``start`` to its closing ``}``, in one pass; escaped braces are skipped."""
    stack: list[int] = []
    pairs: dict[int, int] = {}
    for match in _BRACE_TOKEN.finditer(text, start):
        token = match.group()
        if token == "{":
            stack.append(match.start())
        elif token == "}" and stack:
            pairs[stack.pop()] = match.start()
    return pairs


def _box_content(text: str, match_end: int, pairs: dict[int, int]) -> str | None:
    """Content of the box whose command ends at ``match_end``; None when it is unclosed or empty."""
    i = match_end
    while i < len(text) and text[i] == " ":
        i += 1
    if i < len(text) and text[i] == "{":
        end = pairs.get(i)
        return text[i + 1 : end].strip() or None if end is not None else None
    if i > match_end:
        word = re.match(r"[^\s$.,]+", text[i : i + 200])
        return word.group(0) if word else None
    return None


def boxed_contents(text: str) -> list[str]:
    """Return the contents of every complete ``\\boxed{...}``/``\\fbox{...}`` in order, ``\\boxed 2`` too."""
    first = _BOX.search(text)
    if first is None:
        return []
    pairs = _brace_pairs(text, first.start())
    found = (_box_content(text, m.end(), pairs) for m in _BOX.finditer(text, first.start()))
    return [f for f in found if f]


def _last_box(text: str) -> str | None:
    first = _BOX.search(text)
    if first is None:
        return None
    pairs = _brace_pairs(text, first.start())
    matches = list(_BOX.finditer(text, first.start()))
    for match in reversed(matches):
        content = _box_content(text, match.end(), pairs)
        if content is not None:
            return content
    return None


def _clean(answer: str) -> str:
    answer = answer.strip()
    answer = re.sub(r"^\*\*|\*\*$", "", answer).strip()
    spans = list(_MATH_SPAN.finditer(answer))
    if spans and not _MATH_SPAN.sub("", answer).strip(" .,;:*"):
        answer = ", ".join(next(g for g in m.groups() if g is not None).strip() for m in spans)
    answer = answer.strip().rstrip(".").strip()
    return answer


_CUE_ANCHORS = ("answer", "####", "correct option", "correct choice")


def _last_cue(text: str) -> re.Match | None:
    """The last answer cue. Anchor words are found with ``rfind`` and the regex runs only around
    them, because one case-insensitive regex scan of a megabyte costs about half a second."""
    lower = text.lower()
    best = None
    for anchor in _CUE_ANCHORS:
        end = len(lower)
        for _ in range(_MAX_CUE_CANDIDATES):
            at = lower.rfind(anchor, 0, end)
            if at < 0 or (best is not None and at < best.start()):
                break
            match = next(
                (m for m in _CUES.finditer(text, max(0, at - 30), at + 40) if m.start() <= at < m.end()), None
            )
            if match is not None:
                if best is None or match.start() > best.start():
                    best = match
                break
            end = at
    return best


def _after_cue(text: str) -> str | None:
    last = _last_cue(text)
    if last is None:
        return None
    rest = text[last.end() :]
    if len(rest) > _LONG_ANSWER_CHARS:
        return rest.strip()  # far over any answer bound; the verifier reports it as too large
    lines = rest.split("\n", 3)
    candidate = lines[0].strip()
    if not candidate.strip("*$: ") and len(lines) > 1:
        candidate = next((line.strip() for line in lines[1:] if line.strip()), "")
    if not candidate.strip("*$: "):
        return None
    spans = list(_MATH_SPAN.finditer(candidate))
    if spans and spans[0].start() < 3:
        return _join_spans(candidate, spans)
    # Stop at the end of the sentence, but not at a decimal point.
    sentence = re.split(r"(?<=[^\d\s])\.(?:\s|$)|\.\s|\.$", candidate, maxsplit=1)[0]
    return _clean(sentence) or None


def _join_spans(text: str, spans: list) -> str:
    """Join spans linked only by commas/and/or (``$x=1$ and $x=2$``); otherwise keep the first."""
    group = [spans[0]]
    for prev, cur in zip(spans, spans[1:]):
        if _CONNECTOR.match(text[prev.end() : cur.start()]):
            group.append(cur)
        else:
            break
    return ", ".join(next(g for g in m.groups() if g is not None).strip() for m in group)


_MATH_WORDS = frozenset(
    "sqrt pi sin cos tan cot sec csc log ln exp arcsin arccos arctan infty infinity inf and or text frac "
    "dfrac "
    "tfrac cdot times left right mathrm mathbf boxed".split()
)


def _is_bare_answer(text: str) -> bool:
    """True for a completion that is only an answer: short, one line, and either without prose
    words or at most three words (``odd``, ``no solution``)."""
    if len(text) > _BARE_MAX_CHARS or "\n" in text.strip() or "?" in text:
        return False
    words = [w.lower() for w in re.findall(r"[A-Za-z]{2,}", text)]
    if all(w in _MATH_WORDS for w in words):
        return True
    return len(text.split()) <= 3 and not re.search(r"[.!;:]\s", text)


def _sentence_around(text: str, start: int, end: int) -> str:
    left = max(text.rfind(". ", 0, start), text.rfind("\n", 0, start), text.rfind("? ", 0, start))
    right_candidates = [
        p for p in (text.find(". ", end), text.find("\n", end), text.find("?", end)) if p >= 0
    ]
    right = min(right_candidates) + 1 if right_candidates else len(text)
    return text[left + 1 : right].strip()


def _is_question(sentence: str) -> bool:
    return sentence.rstrip().endswith("?") or bool(_QUESTION_START.match(sentence))


def _fallback(text: str) -> str | None:
    stripped = text.strip()
    if stripped and _is_bare_answer(stripped):
        return _clean(stripped) or None
    tail = text[-_TAIL_CHARS:]
    candidates: list[tuple[int, str]] = []

    spans = list(_MATH_SPAN.finditer(tail))
    if spans:
        group = [spans[-1]]
        for prev, cur in zip(reversed(spans[:-1]), reversed(spans)):
            if _CONNECTOR.match(tail[prev.end() : cur.start()]):
                group.insert(0, prev)
            else:
                break
        sentence = _sentence_around(tail, group[0].start(), group[-1].end())
        if not _is_question(sentence):
            value = ", ".join(next(g for g in m.groups() if g is not None).strip() for m in group)
            candidates.append((group[-1].end(), value))

    bold = [m for m in _BOLD.finditer(tail) if re.search(r"[\d\\]", m.group(1))]
    if bold:
        candidates.append((bold[-1].end(), bold[-1].group(1)))

    if candidates:
        return _clean(max(candidates)[1]) or None

    numbers = list(_NUMBER.finditer(tail))
    if numbers:
        last = numbers[-1]
        if not _is_question(_sentence_around(tail, last.start(), last.end())):
            return last.group(0).strip().rstrip(",")
    return None


def extract_answer(completion: Any, *, fallback: bool = False) -> str | None:
    """Return the final answer of a completion (a string or chat-message list), or None.

    >>> extract_answer(r"so $x = 2$, hence \\boxed{\\frac{1}{2}}.")
    '\\\\frac{1}{2}'
    >>> extract_answer("Thus the answer is 42.")
    '42'
    >>> extract_answer("She has 7 apples left.") is None
    True
    >>> extract_answer("She has 7 apples left.", fallback=True)
    '7'
    """
    text = completion_text(completion)
    boxed = _last_box(text)
    if boxed is not None:
        return boxed
    cue = _after_cue(text)
    if cue is not None:
        return cue
    return _fallback(text) if fallback else None
