r"""Find the counterexample a completion proposes and read it as an assignment of values to variables.

``answer_candidates`` runs in the calling process and only slices text: the boxed answers (minus
any True/False verdict), the text after the last "counterexample" cue, the text after other example
cues ("for example", "take", ...), then the final answer. ``parse_assignment`` runs in a worker and
reads one candidate with the verifier's parser: ``n = 40``, ``(a, b) = (2, 3)``, ``a = 2, b = 3``,
``p(x) = x^2 - 1``, a matrix in LaTeX (``\begin{pmatrix}...``) or plain brackets (``[[1, 0], [0, 0]]``),
or a bare value when the claim has one variable.
"""

from __future__ import annotations

import re
from typing import Any

import sympy

from rewards.extract import boxed_contents, completion_text, extract_answer
from rewards.verify import nodes
from rewards.verify.errors import ParseError, TooLarge
from rewards.verify.options import VerifyOptions
from rewards.verify.parse import parse_answer

__all__ = ["answer_candidates", "parse_assignment", "strip_verdict", "EXAMPLE_CUE"]

_MAX_CANDIDATE_CHARS = 600
_MAX_STARTS = 24
_VERDICT_WORD = r"(?:\\text(?:bf)?\{\s*|\\mathrm\{\s*)?(?:true|false)(?:\s*\})?"
_LEADING_VERDICT = re.compile(rf"^\s*{_VERDICT_WORD}\s*[,;:.]?\s*", re.IGNORECASE)
_TRAILING_VERDICT = re.compile(rf"[,;:.]?\s*{_VERDICT_WORD}\s*$", re.IGNORECASE)
_COUNTEREXAMPLE_CUE = re.compile(r"counter[\s-]?examples?", re.IGNORECASE)
EXAMPLE_CUE = re.compile(
    r"counter[\s-]?examples?|for\s+(?:example|instance)|e\.g\.|\b(?:take|consider|choose|let|pick|try)\b",
    re.IGNORECASE,
)
"""Words that introduce a concrete example."""
_MATH_SPAN = re.compile(r"\$\$(.+?)\$\$|\\\[(.+?)\\\]|\\\((.+?)\\\)|\$(.+?)\$", re.DOTALL)
_SENTENCE_END = re.compile(r"(?<=[^\d\s])\.(?:\s|$)|\.\s|\.$|\n\s*\n")
_TRAILING_PROSE = re.compile(
    r"\s+(?:since|because|then|which|where|gives|giving|yields?|we|so|but|here|this|that|is|are|"
    r"and\s+(?:the|then|so|we|this|it)|for\s+which|satisf\w*|shows?|makes?|fails?|violat\w*)\b",
    re.IGNORECASE,
)
_PLAIN_MATRIX = re.compile(r"\[\s*(\[[^\[\]]*\](?:\s*,?\s*\[[^\[\]]*\])*)\s*\]")
_ROW = re.compile(r"\[([^\[\]]*)\]")
# Places where an assignment or value may start: "n =", "p(x) =", a bracket, a matrix, a number.
_START = re.compile(
    r"(?<![A-Za-z\\])[A-Za-z](?:_\{?\w+\}?)?\s*(?:\(\s*[A-Za-z]\s*\)\s*)?="
    r"|\(|\\begin|\[|-?\d|\\frac"
)


def strip_verdict(text: str) -> str:
    """Remove a leading or trailing True/False verdict from a boxed answer."""
    text = _LEADING_VERDICT.sub("", text, count=1)
    return _TRAILING_VERDICT.sub("", text, count=1).strip()


def _after(text: str, cue: re.Match) -> list[str]:
    """Candidates in the sentence after a cue: its math spans joined, and its plain text."""
    rest = text[cue.end() : cue.end() + _MAX_CANDIDATE_CHARS]
    rest = re.sub(r"^\s*(?:\*\*)?\s*(?:is|:|would\s+be|with|at|when)?\s*(?:\*\*)?\s*:?", "", rest, count=1)
    sentence_end = _SENTENCE_END.search(rest)
    limit = sentence_end.start() if sentence_end else len(rest)
    sentence = rest[:limit].strip()
    spans = [m for m in _MATH_SPAN.finditer(rest) if m.start() < limit or m.start() < 3]
    if not spans:
        return [sentence] if sentence else []
    joined = ", ".join(next(g for g in m.groups() if g is not None).strip() for m in spans)
    # "n = 3 ($F_3 = 2$)": an assignment written before the first span comes first.
    before = rest[: spans[0].start()].rstrip(" ([{")
    if "=" in before:
        return [sentence, before, joined]
    return [joined, sentence]


def answer_candidates(completion: Any) -> list[str]:
    """Return texts that may hold the proposed counterexample, most authoritative first."""
    text = completion_text(completion)
    candidates: list[str] = []
    for boxed in reversed(boxed_contents(text)):
        remainder = strip_verdict(boxed)
        if remainder:
            candidates.append(remainder[:_MAX_CANDIDATE_CHARS])
    cues = _last_matches(text, _COUNTEREXAMPLE_CUE) + _last_matches(text, EXAMPLE_CUE)
    for cue in cues:
        candidates.extend(_after(text, cue))
    final = extract_answer(text, fallback=True)
    if final:
        final = strip_verdict(final)
        if final:
            candidates.append(final[:_MAX_CANDIDATE_CHARS])
    seen: set[str] = set()
    return [c for c in candidates if not (c in seen or seen.add(c))]


def _last_matches(text: str, pattern: re.Pattern, count: int = 2) -> list[re.Match]:
    """Return the last ``count`` matches of ``pattern``, last first; only the tail of a long text is read."""
    tail_start = max(0, len(text) - 20_000)
    matches = list(pattern.finditer(text, tail_start))
    return matches[::-1][:count]


def _plain_matrices(text: str) -> str:
    """Rewrite ``[[1, 2], [3, 4]]`` as a LaTeX pmatrix, which the parser reads."""

    def repl(match: re.Match) -> str:
        rows = [row.group(1).split(",") for row in _ROW.finditer(match.group(1))]
        body = r" \\ ".join(" & ".join(cell.strip() for cell in row) for row in rows)
        return r"\begin{pmatrix}" + body + r"\end{pmatrix}"

    return _PLAIN_MATRIX.sub(repl, text)


def _target_name(term: Any) -> str | None:
    if isinstance(term, sympy.Symbol):
        # "p(x) = ..." parses as one symbol named "p(x)"; the variable is "p".
        return re.sub(r"\(\s*[A-Za-z]\s*\)$", "", term.name)
    return None


def _is_target(term: Any) -> bool:
    if isinstance(term, nodes.Tup):
        return all(_target_name(item) is not None for item in term.items)
    return _target_name(term) is not None


def _pairs(node: Any, names: list[str]) -> list[tuple[str, Any]]:
    """Turn a parsed answer into (name, value) pairs; unknown names are kept for the caller to judge."""
    if isinstance(node, nodes.Seq) or (
        isinstance(node, nodes.Tup) and node.items and all(isinstance(i, nodes.Relation) for i in node.items)
    ):
        # Items that assign nothing ("A^2 = 0", "A \neq 0") are consequences the text states; skip them.
        pairs = []
        for item in node.items:
            if isinstance(item, nodes.Relation):
                try:
                    pairs.extend(_pairs(item, names))
                except ParseError:
                    continue
        if not pairs:
            raise ParseError("no item of the list assigns a variable")
        return pairs
    if isinstance(node, nodes.Relation):
        if any(op != "=" for op in node.ops):
            raise ParseError("an assignment needs '='")
        # Leading names are targets and the first other term is the value: "A = B = [[1, 0], [0, 1]]",
        # "p(x) = x^2 - 1 = (x - 1)(x + 1)".
        count = 1
        while count < len(node.terms) - 1 and _is_target(node.terms[count]):
            count += 1
        value = node.terms[count]
        pairs = []
        for target in node.terms[:count]:
            if isinstance(target, nodes.Tup) and isinstance(value, nodes.Tup):
                if len(target.items) != len(value.items):
                    raise ParseError("tuple assignment with different lengths")
                for sub_target, sub_value in zip(target.items, value.items):
                    name = _target_name(sub_target)
                    if name is None:
                        raise ParseError(f"cannot assign to {sub_target}")
                    pairs.append((name, sub_value))
                continue
            name = _target_name(target)
            if name is None:
                raise ParseError(f"cannot assign to {target}")
            pairs.append((name, value))
        return pairs
    # A bare value: for one variable it is that variable's value, for several a tuple in declared order.
    if len(names) == 1 and isinstance(node, (sympy.Expr, nodes.Matrix)):
        return [(names[0], node)]
    if isinstance(node, nodes.Tup) and len(node.items) == len(names):
        return list(zip(names, node.items))
    raise ParseError(f"{node} is not an assignment to {', '.join(names)}")


def _parse_candidate(text: str, names: list[str], options: VerifyOptions) -> list[tuple[str, Any]]:
    text = _plain_matrices(text)
    cut = _TRAILING_PROSE.search(text)
    attempts = [text[: cut.start()], text] if cut else [text]
    # A whole candidate may be a bare value; a piece that starts later in the text must be an
    # assignment, so "n = 11, since 2047 = 23 * 89" does not read 2047 as the value of n.
    pieces = [(attempt, True) for attempt in attempts]
    for attempt in attempts:
        starts = [m.start() for m in _START.finditer(attempt) if m.start() > 0][:_MAX_STARTS]
        pieces += [(attempt[start:], False) for start in starts]
    last_error: Exception = ParseError("empty answer")
    for piece, whole in pieces:
        piece = piece.strip().rstrip(".,;:").strip()
        if not piece:
            continue
        try:
            node = parse_answer(piece, options)
            if not whole and not isinstance(node, (nodes.Relation, nodes.Seq, nodes.Tup)):
                raise ParseError("a value inside the text is not an assignment")
            return _pairs(node, names)
        except TooLarge:
            raise
        except ParseError as error:
            last_error = error
    raise last_error


def parse_assignment(candidates: list[str], names: list[str], options: VerifyOptions) -> dict[str, Any]:
    """Return {variable: parsed value} from the first candidate that assigns a declared variable.

    Raises ``ParseError`` when no candidate parses, ``TooLarge`` when one exceeds a size bound, and
    ``KeyError`` (listing the names) when candidates parse but assign no declared variable.
    """
    parsed_any = False
    last_error: Exception = ParseError("no candidate answer")
    for candidate in candidates:
        try:
            pairs = _parse_candidate(candidate, names, options)
        except ParseError as error:
            last_error = error
            continue
        parsed_any = True
        known = [(name, value) for name, value in pairs if name in names]
        if not known:
            continue
        assignment: dict[str, Any] = {}
        for name, value in known:
            if name in assignment and assignment[name] != value:
                raise ParseError(f"{name} is given two different values")
            assignment[name] = value
        return assignment
    if parsed_any:
        raise KeyError(f"the answer assigns none of {', '.join(names)}")
    raise last_error
