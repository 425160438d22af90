"""Turn LaTeX or plain-text math into tokens, after normalising spacing, separators and symbols.

The lexer only reads characters; nothing here evaluates text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from rewards.verify.errors import ParseError, TooLarge

__all__ = ["Token", "normalize", "tokenize", "FUNCTIONS", "UNITS"]

FUNCTIONS = frozenset(
    "sin cos tan cot sec csc arcsin arccos arctan sinh cosh tanh log ln lg exp sqrt abs lcm gcd max min "
    "floor ceil det".split()
)
CONSTANTS = {
    "pi": "pi",
    "infty": "oo",
    "infinity": "oo",
    "inf": "oo",
    "oo": "oo",
    "emptyset": "empty",
    "varnothing": "empty",
}
CONNECTORS = frozenset({"and", "or"})
# Short unit names that would otherwise read as products of one-letter variables.
UNITS = frozenset(
    "cm mm km ft yd mi kg mg lb lbs oz sec hr hrs ml mph kph kmh cm2 cm3 m2 m3 sq am pm ms mins".split()
)
TEXT_COMMANDS = frozenset(
    "text textbf textit textrm textsf texttt textnormal mathrm mathbf mathit mathsf mathtt mbox emph "
    "operatorname boldsymbol bm".split()
)
# Commands dropped before tokenizing: sizing, spacing and style.
_DROP_COMMANDS = re.compile(
    r"\\(?:left|right|bigl|bigr|Bigl|Bigr|biggl|biggr|Biggl|Biggr|big|Big|bigg|Bigg|displaystyle|textstyle|"
    r"scriptstyle|limits|nolimits|middle)(?![a-zA-Z])"
)
_SPACES = re.compile(
    r"\\(?:quad|qquad|enspace|thinspace|medspace|thickspace|hspace\{[^{}]*\})(?![a-zA-Z])|(?<!\\)\\[,;:! ]|~"
)
_UNICODE = {
    "π": r"\pi ",
    "∞": r"\infty ",
    "×": r"\times ",
    "·": r"\cdot ",
    "⋅": r"\cdot ",
    "−": "-",
    "–": "-",
    "≤": r"\le ",
    "≥": r"\ge ",
    "≠": r"\ne ",
    "∪": r"\cup ",
    "∩": r"\cap ",
    "∈": r"\in ",
    "√": r"\sqrt ",
    "°": r"\deg ",
    "÷": r"\div ",
    "±": r"\pm ",
    "∓": r"\mp ",
    "…": r"\ldots ",
    "⋯": r"\ldots ",
    "∅": r"\emptyset ",
    "′": "'",
    "：": ":",
    "，": ",",
}
_UNICODE_RE = re.compile("|".join(map(re.escape, _UNICODE)))
_DEGREE = re.compile(r"\^\s*\{?\s*\\circ\s*\}?|\\circ|\\degree|\^\s*\{\s*\\text\{o\}\s*\}")
_LATEX_THOUSANDS = re.compile(r"(\d),\\!\s*(?=\d{3}(?!\d))|(\d)\{,\}(?=\d{3}(?!\d))|(\d)\\,(?=\d{3}(?!\d))")
_TIMES_TEN = re.compile(r"(\d)\s*[xX]\s*10\s*\^")
_LEADING_RELATION = re.compile(r"^\s*(?:\\approx|\\sim|=)\s*")
_PLAIN_THOUSANDS = re.compile(r"(?<![\d.,])[1-9]\d{0,2}(?:,\d{3})+(?![\d,]|\.\d*,)")


@dataclass(frozen=True)
class Token:
    kind: str  # num, id, func, const, word, text, cmd, op, begin, end
    value: str
    space: bool = False  # whitespace precedes the token
    command: str = ""  # for text tokens: the command that produced them (text, mathrm, ...)


def _join_plain_thousands(text: str) -> str:
    """Remove commas from ``12,345`` unless brackets around it make it a list (``(1,000)``)."""

    def repl(match: re.Match) -> str:
        before = text[: match.start()].rstrip()
        after = text[match.end() :].lstrip()
        if before.endswith(("(", "[", "\\{", ",")) or after.startswith((")", "]", "\\}")):
            return match.group(0)
        return match.group(0).replace(",", "")

    return _PLAIN_THOUSANDS.sub(repl, text)


def normalize(text: str) -> str:
    """Rewrite spacing, thousands separators, degree marks and Unicode symbols into plain LaTeX."""
    text = text.strip()
    text = _UNICODE_RE.sub(lambda m: _UNICODE[m.group(0)], text)
    text = _LATEX_THOUSANDS.sub(lambda m: m.group(1) or m.group(2) or m.group(3), text)
    text = _DEGREE.sub(r" \\deg ", text)
    text = _DROP_COMMANDS.sub(" ", text)
    text = text.replace(r"\left.", " ").replace(r"\right.", " ")
    text = _SPACES.sub(" ", text)
    text = re.sub(r"\\[dtc]frac(?![a-zA-Z])", r"\\frac", text)
    text = re.sub(r"\\[dt]binom(?![a-zA-Z])", r"\\binom", text)
    text = text.replace(r"\$", " ").replace("$", " ").replace(r"\%", "%").replace("**", "^")
    text = _TIMES_TEN.sub(r"\1 \\times 10^", text)
    text = _LEADING_RELATION.sub("", text)
    text = _join_plain_thousands(text)
    return text


def _read_group(text: str, i: int) -> tuple[str, int]:
    """Read a ``{...}`` group starting at ``text[i] == '{'``; return its content and the index after it."""
    depth = 0
    j = i
    while j < len(text):
        c = text[j]
        if c == "\\":
            j += 2
            continue
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return text[i + 1 : j], j + 1
        j += 1
    raise ParseError(f"unclosed brace in {text[i : i + 40]!r}")


_NUMBER = re.compile(r"\d+(?:\.\d*)?|\.\d+")
_EXPONENT = re.compile(r"[eE][+-]?\d+(?![\d.a-zA-Z])")


def tokenize(text: str, max_depth: int) -> list[Token]:
    """Split normalised text into tokens; raise ``TooLarge`` when brackets nest deeper than ``max_depth``."""
    tokens: list[Token] = []
    depth = 0
    i = 0
    n = len(text)
    while i < n:
        space = False
        while i < n and text[i].isspace():
            i += 1
            space = True
        if i >= n:
            break
        c = text[i]

        if c.isdigit() or (c == "." and i + 1 < n and text[i + 1].isdigit()):
            m = _NUMBER.match(text, i)
            value = m.group(0)
            i = m.end()
            e = _EXPONENT.match(text, i)
            if e:
                value += e.group(0)
                i = e.end()
            tokens.append(Token("num", value, space))
            continue

        if c.isalpha():
            j = i
            while j < n and text[j].isalpha() and text[j].isascii():
                j += 1
            if j == i:  # a non-ASCII letter such as a Greek character
                tokens.append(Token("id", c, space))
                i += 1
                continue
            word = text[i:j]
            i = j
            tokens.extend(_word_tokens(word, space))
            continue

        if c == "\\":
            m = re.match(r"\\([a-zA-Z]+)", text[i : i + 40])
            if not m:
                pair = text[i : i + 2]
                i += 2
                if pair in ("\\{", "\\}"):
                    depth += 1 if pair == "\\{" else -1
                    if depth > max_depth:
                        raise TooLarge(f"brackets nest deeper than {max_depth}")
                tokens.append(Token("op", pair, space))
                continue
            name = m.group(1)
            i += len(m.group(0))
            if name in TEXT_COMMANDS:
                while i < n and text[i].isspace():
                    i += 1
                if i < n and text[i] == "{":
                    content, i = _read_group(text, i)
                else:
                    content = ""
                if name == "operatorname":
                    tokens.append(Token("func", content.strip(), space))
                else:
                    tokens.append(Token("text", content, space, name))
                continue
            if name in ("begin", "end"):
                while i < n and text[i].isspace():
                    i += 1
                if i < n and text[i] == "{":
                    env, i = _read_group(text, i)
                else:
                    raise ParseError(f"\\{name} without an environment name")
                if name == "begin" and env.strip() == "array":
                    while i < n and text[i].isspace():
                        i += 1
                    if i < n and text[i] == "{":
                        _, i = _read_group(text, i)  # column specification
                tokens.append(Token(name, env.strip(), space))
                continue
            if name == "mathbb":
                while i < n and text[i].isspace():
                    i += 1
                content, i = _read_group(text, i) if i < n and text[i] == "{" else (text[i : i + 1], i + 1)
                tokens.append(Token("const", "mathbb" + content.strip(), space))
                continue
            if name in FUNCTIONS:
                tokens.append(Token("func", name, space))
            elif name in CONSTANTS:
                tokens.append(Token("const", CONSTANTS[name], space))
            else:
                tokens.append(Token("cmd", name, space))
            continue

        if c in "([{":
            depth += 1
            if depth > max_depth:
                raise TooLarge(f"brackets nest deeper than {max_depth}")
        elif c in ")]}":
            depth -= 1
        two = text[i : i + 2]
        if two in ("<=", ">=", "!=", "=>", "->", "==") or text[i : i + 3] == "...":
            if text[i : i + 3] == "...":
                tokens.append(Token("cmd", "ldots", space))
                i += 3
                continue
            tokens.append(Token("op", {"==": "="}.get(two, two), space))
            i += 2
            continue
        tokens.append(Token("op", c, space))
        i += 1
    return tokens


def _word_tokens(word: str, space: bool) -> list[Token]:
    """Classify a run of ASCII letters: a function, constant, connector, unit, word, or variables."""
    lower = word.lower()
    if lower in ("degree", "degrees", "deg"):
        return [Token("cmd", "deg", space)]
    if lower == "percent":
        return [Token("op", "%", space)]
    if word in FUNCTIONS or lower in ("sqrt", "ln", "log", "exp", "sin", "cos", "tan"):
        return [Token("func", lower, space)]
    if lower in CONSTANTS and not (lower == "inf" and word != lower):
        return [Token("const", CONSTANTS[lower], space)]
    if lower in CONNECTORS:
        return [Token("word", lower, space)]
    if lower in UNITS or len(word) >= 3:
        return [Token("word", word, space)]
    return [Token("id", ch, space if k == 0 else False) for k, ch in enumerate(word)]
