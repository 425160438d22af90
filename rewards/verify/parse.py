"""A recursive-descent parser from LaTeX or plain-text math to sympy objects, without ``eval``.

Every sympy object is built by calling a constructor on other sympy objects; no string reaches
``sympify`` or ``parse_expr`` (both call ``eval``). Powers, factorials and binomials are checked
against ``VerifyOptions`` bounds before sympy evaluates them, so ``9^{9^{9^9}}`` raises ``TooLarge``
instead of computing.

Grammar, loosest binding first::

    answer   := item ((',' | ';' | 'and' | 'or') item)*
    item     := setexpr (relop setexpr)* | setexpr (':' setexpr)+          # relation chain, ratio
    setexpr  := expr ('\\cup' expr)*
    expr     := ['+' | '-' | '\\pm'] term (('+' | '-' | '\\pm' | '\\mp') term)*
    term     := unary (('*' | '/' | '\\times' | '\\cdot' | '\\div' | implicit) unary)*
    unary    := ('-' | '+')* power
    power    := postfix ('^' unary)?
    postfix  := primary ('!' | '%' | "'" | degree)*
"""

from __future__ import annotations

import math
from typing import Any

import sympy

from rewards.verify import nodes
from rewards.verify.errors import ParseError, TooLarge
from rewards.verify.lexer import CONSTANTS, FUNCTIONS, Token, normalize, tokenize
from rewards.verify.options import VerifyOptions

__all__ = ["parse_answer", "parse_math", "PLUS_MINUS"]

# Stands for the sign of ``\pm``; an item that contains it expands into two answers.
PLUS_MINUS = sympy.Dummy("pm")

_RELOPS = {
    "=": "=",
    "<": "<",
    ">": ">",
    "<=": "<=",
    ">=": ">=",
    "!=": "!=",
    "le": "<=",
    "leq": "<=",
    "leqslant": "<=",
    "ge": ">=",
    "geq": ">=",
    "geqslant": ">=",
    "lt": "<",
    "gt": ">",
    "ne": "!=",
    "neq": "!=",
    "in": "in",
    "approx": "=",
    "equiv": "=",
}
_GREEK = frozenset(
    "alpha beta gamma delta epsilon varepsilon zeta eta theta vartheta iota kappa lambda mu nu xi omicron "
    "rho sigma tau upsilon phi varphi chi psi omega Gamma Delta Theta Lambda Xi Sigma Upsilon Phi Psi "
    "Omega".split()
)
_FUNCS_1 = {
    "sin": sympy.sin,
    "cos": sympy.cos,
    "tan": sympy.tan,
    "cot": sympy.cot,
    "sec": sympy.sec,
    "csc": sympy.csc,
    "arcsin": sympy.asin,
    "arccos": sympy.acos,
    "arctan": sympy.atan,
    "sinh": sympy.sinh,
    "cosh": sympy.cosh,
    "tanh": sympy.tanh,
    "exp": sympy.exp,
    "ln": sympy.log,
    "abs": sympy.Abs,
    "floor": sympy.floor,
    "ceil": sympy.ceiling,
}
_MULT_OPS = {"*", "times", "cdot", "ast", "/", "div"}
_MAX_LITERAL_DIGITS = 4000  # CPython refuses int() of strings longer than 4300 digits by default


class _Parser:
    def __init__(self, tokens: list[Token], options: VerifyOptions):
        self.tokens = tokens
        self.pos = 0
        self.options = options
        self.percent = False
        self.degrees = False
        self.saw_and = False

    # ----- token helpers

    def peek(self, offset: int = 0) -> Token | None:
        k = self.pos + offset
        return self.tokens[k] if k < len(self.tokens) else None

    def next(self) -> Token:
        tok = self.peek()
        if tok is None:
            raise ParseError("unexpected end of answer")
        self.pos += 1
        return tok

    def at(self, kind: str, *values: str, offset: int = 0) -> bool:
        tok = self.peek(offset)
        return tok is not None and tok.kind == kind and (not values or tok.value in values)

    def expect(self, kind: str, value: str) -> None:
        tok = self.next()
        if tok.kind != kind or tok.value != value:
            raise ParseError(f"expected {value!r}, found {tok.value!r}")

    # ----- answer and items

    def parse(self) -> Any:
        items = self.item_list(stop=())
        if self.peek() is not None:
            raise ParseError(f"unexpected {self.peek().value!r}")
        if not items:
            raise ParseError("empty answer")
        return items[0] if len(items) == 1 else nodes.Seq(tuple(items), "and" if self.saw_and else "or")

    def _at_separator(self) -> bool:
        return (
            self.at("op", ",", ";")
            or self.at("word", "and", "or")
            or (self.at("text") and self.peek().value.strip().lower() in ("and", "or", ","))
        )

    def item_list(self, stop: tuple) -> list:
        items: list = []
        while True:
            while self._at_separator():
                tok = self.next()
                if tok.value.strip().lower() == "and":
                    self.saw_and = True
            tok = self.peek()
            if tok is None or (tok.kind in ("op", "end", "cmd") and tok.value in stop):
                return items
            items.extend(self.item())
            if not self._at_separator():
                return items

    def item(self) -> list:
        """Parse one answer item; ``\\pm`` inside it yields two items."""
        self.percent = self.degrees = False
        first = self._function_name() or self.setexpr()
        terms, ops = [first], []
        while True:
            op = self._relop()
            if op is None:
                break
            ops.append(op)
            terms.append(self.setexpr())
        if ops:
            node: Any = nodes.Relation(tuple(terms), tuple(ops))
        elif self.at("op", ":"):
            parts = [first]
            while self.at("op", ":"):
                self.next()
                parts.append(self.setexpr())
            node = nodes.Tup(tuple(parts), ":", ":")
        else:
            node = first
            if self.percent:
                node = nodes.Percent(node)
            elif self.degrees:
                node = nodes.Degrees(node)
        return _expand_plus_minus(node)

    def _function_name(self) -> Any:
        """Read ``f(x)`` before ``=`` as the name of a function, not as ``f*x``."""
        if not (self.at("id") and self.at("op", "(", offset=1)):
            return None
        depth = 0
        for k in range(self.pos + 1, len(self.tokens)):
            tok = self.tokens[k]
            if tok.kind == "op" and tok.value == "(":
                depth += 1
            elif tok.kind == "op" and tok.value == ")":
                depth -= 1
                if depth == 0:
                    after = self.tokens[k + 1] if k + 1 < len(self.tokens) else None
                    if after is None or after.kind != "op" or after.value != "=":
                        return None
                    name = "".join(t.value for t in self.tokens[self.pos : k + 1])
                    self.pos = k + 1
                    return sympy.Symbol(name)
        return None

    def _relop(self) -> str | None:
        tok = self.peek()
        if tok is None:
            return None
        if tok.kind == "op" and tok.value in _RELOPS:
            self.next()
            return _RELOPS[tok.value]
        if tok.kind == "cmd" and tok.value in _RELOPS:
            self.next()
            return _RELOPS[tok.value]
        if tok.kind == "cmd" and tok.value in ("Rightarrow", "implies", "to", "rightarrow", "Longrightarrow"):
            self.next()
            return "="
        return None

    def setexpr(self) -> Any:
        left = self.expr()
        if not self.at("cmd", "cup"):
            return left
        parts = [left]
        while self.at("cmd", "cup"):
            self.next()
            parts.append(self.expr())
        return nodes.Union(tuple(parts))

    # ----- arithmetic

    def expr(self) -> Any:
        sign = self._sign()
        left = self.term()
        if sign is not None:
            left = _mul(sign, _scalar(left))
        while True:
            tok = self.peek()
            if tok is None:
                return left
            if tok.kind == "op" and tok.value in "+-":
                self.next()
                right = _scalar(self.term())
                left = sympy.Add(_scalar(left), right if tok.value == "+" else -right)
            elif tok.kind == "cmd" and tok.value in ("pm", "mp"):
                self.next()
                right = _scalar(self.term())
                factor = PLUS_MINUS if tok.value == "pm" else -PLUS_MINUS
                left = sympy.Add(_scalar(left), factor * right)
            else:
                return left

    def _sign(self) -> Any:
        if self.at("cmd", "pm"):
            self.next()
            return PLUS_MINUS
        if self.at("cmd", "mp"):
            self.next()
            return -PLUS_MINUS
        return None

    def term(self) -> Any:
        left = self.unary()
        while True:
            tok = self.peek()
            if tok is None:
                return left
            if (tok.kind == "op" and tok.value in ("*", "/")) or (
                tok.kind == "cmd" and tok.value in _MULT_OPS
            ):
                self.next()
                right = _scalar(self.unary())
                if tok.value in ("/", "div"):
                    left = _mul(_scalar(left), _power(right, sympy.Integer(-1), self.options))
                else:
                    left = _mul(_scalar(left), right)
            elif tok.kind in ("word", "text") and self._unit_follows():
                self._skip_unit()
            elif self._starts_implicit_factor(tok):
                right = _scalar(self.unary(implicit=True))
                left = _mul(_scalar(left), right)
            else:
                return left

    def _unit_follows(self) -> bool:
        tok = self.peek()
        if tok.kind == "word":
            return tok.value.lower() not in ("and", "or")
        content = tok.value.strip().lower()
        if content in ("and", "or", ",", ""):
            return False
        # \text{m} after a number is a unit; \mathrm{e} and \mathrm{i} are constants.
        return _is_wordy(tok.value) or (
            tok.command in ("text", "mbox", "textrm") or content not in ("e", "i", "d")
        )

    def _skip_unit(self) -> None:
        while self.peek() is not None and self.peek().kind in ("word", "text") and self._unit_follows():
            unit = self.next().value.strip().lower()
            if unit in ("degree", "degrees", "deg"):
                self.degrees = True
                continue
            if unit == "percent":
                self.percent = True
                continue
            if not self.options.strip_units:
                raise ParseError(f"unit {unit!r} after a number and strip_units=False")
            if self.at("op", "^"):
                self.next()
                self.primary()
            if (
                self.at("op", "/")
                and self.peek(1) is not None
                and self.peek(1).kind in ("word", "text", "id")
            ):
                self.next()
                self.next()

    def _starts_implicit_factor(self, tok: Token) -> bool:
        if tok.kind in ("id", "func", "const"):
            return True
        if tok.kind == "num":
            return False
        if tok.kind == "op":
            return tok.value == "(" or (tok.value == "{")
        if tok.kind == "cmd":
            return (
                tok.value in ("frac", "sqrt", "binom", "pi", "lfloor", "lceil", "exp") or tok.value in _GREEK
            )
        if tok.kind == "text":
            return not _is_wordy(tok.value)
        return False

    def unary(self, implicit: bool = False) -> Any:
        negate = False
        while self.at("op", "-", "+"):
            if implicit:
                raise ParseError("sign after an implicit product")
            if self.next().value == "-":
                negate = not negate
        value = self.power()
        return _mul(sympy.Integer(-1), _scalar(value)) if negate else value

    def power(self) -> Any:
        base = self.postfix()
        if self.at("op", "^"):
            self.next()
            exponent = _scalar(self._exponent())
            base = _power(_scalar(base), exponent, self.options)
            base = self._postfix_ops(base)
        return base

    def _exponent(self) -> Any:
        if self.at("op", "{"):
            return self._group()
        if self.at("op", "-", "+"):
            return self.unary()
        return self.power()

    def postfix(self) -> Any:
        return self._postfix_ops(self.primary())

    def _postfix_ops(self, value: Any) -> Any:
        while True:
            if self.at("op", "!"):
                self.next()
                value = _factorial(_scalar(value), self.options)
            elif self.at("op", "%"):
                self.next()
                self.percent = True
            elif self.at("cmd", "deg"):
                self.next()
                self.degrees = True
            elif self.at("op", "'"):
                raise ParseError("derivative marks are not supported")
            else:
                return value

    # ----- primaries

    def _group(self) -> Any:
        """Parse ``{...}`` as one expression."""
        self.expect("op", "{")
        items = self.item_list(stop=("}",))
        self.expect("op", "}")
        if len(items) != 1:
            return nodes.SetOf(tuple(items))
        return items[0]

    def _arg(self) -> Any:
        """Parse a macro argument: ``{...}``, or one token as in ``\\frac12`` and ``\\sqrt2``."""
        if self.at("op", "{"):
            return _scalar(self._group())
        tok = self.peek()
        if tok is None:
            raise ParseError("missing argument")
        if tok.kind == "num" and len(tok.value) > 1:
            # TeX reads one character as an argument: \frac58 is 5/8.
            self.tokens[self.pos] = Token("num", tok.value[1:], False)
            return (
                sympy.Integer(int(tok.value[0]))
                if tok.value[0].isdigit()
                else _number(tok.value[0], self.options)
            )
        return _scalar(self.primary())

    def primary(self) -> Any:
        tok = self.next()
        kind, value = tok.kind, tok.value

        if kind == "num":
            return self._number_or_mixed(tok)
        if kind == "id":
            return self._symbol(value)
        if kind == "const":
            return self._constant(value)
        if kind == "func":
            return self._function(value)
        if kind == "text":
            return self._text(value)
        if kind == "word":
            raise ParseError(f"unexpected word {value!r}")
        if kind == "begin":
            return self._matrix(value)

        if kind == "op":
            if value in ("(", "["):
                return self._bracket(value)
            if value == "{":
                self.pos -= 1
                return self._group()
            if value == "\\{":
                items = self.item_list(stop=("\\}", "|", "mid", ":"))
                if len(items) == 1 and (self.at("op", "|", ":") or self.at("cmd", "mid")):
                    # Set-builder notation {x | condition}: the condition is the answer.
                    self.next()
                    condition = self.item_list(stop=("\\}",))
                    self.expect("op", "\\}")
                    return condition[0] if len(condition) == 1 else nodes.Seq(tuple(condition), "and")
                self.expect("op", "\\}")
                return nodes.SetOf(tuple(items))
            if value in ("|", "\\|"):
                inner = _scalar(self.expr())
                self.expect("op", value)
                return sympy.Abs(inner)
        if kind == "cmd":
            return self._command(value)
        raise ParseError(f"unexpected {value!r}")

    def _number_or_mixed(self, tok: Token) -> Any:
        number = _number(tok.value, self.options)
        if not isinstance(number, sympy.Integer):
            return number
        # Mixed numbers: 2\frac{1}{3} and "2 1/3" mean 2 + 1/3.
        if self.at("cmd", "frac"):
            saved = self.pos
            self.next()
            try:
                num, den = self._arg(), self._arg()
            except ParseError:
                self.pos = saved
                return number
            if isinstance(num, sympy.Integer) and isinstance(den, sympy.Integer) and den != 0:
                return number + sympy.Rational(num, den)
            self.pos = saved
            return number
        nxt, slash, den = self.peek(), self.peek(1), self.peek(2)
        if (
            nxt is not None
            and nxt.kind == "num"
            and nxt.space
            and nxt.value.isdigit()
            and slash is not None
            and slash.kind == "op"
            and slash.value == "/"
            and den is not None
            and den.kind == "num"
            and den.value.isdigit()
            and int(den.value) != 0
            and not self.at("op", "^", offset=3)
        ):
            self.pos += 3
            return number + sympy.Rational(int(nxt.value), int(den.value))
        return number

    def _symbol(self, name: str) -> Any:
        if self.at("op", "_"):
            self.next()
            sub = self.next() if not self.at("op", "{") else None
            if sub is None:
                content = self._raw_group_text()
            else:
                content = sub.value
            return sympy.Symbol(f"{name}_{content}")
        if name == "e":
            return sympy.E
        if name == "i":
            return sympy.I
        return sympy.Symbol(name)

    def _raw_group_text(self) -> str:
        self.expect("op", "{")
        parts = []
        depth = 1
        while True:
            tok = self.next()
            if tok.kind == "op" and tok.value == "{":
                depth += 1
            elif tok.kind == "op" and tok.value == "}":
                depth -= 1
                if depth == 0:
                    return "".join(parts)
            parts.append(tok.value)

    def _constant(self, value: str) -> Any:
        if value == "pi":
            return sympy.pi
        if value == "oo":
            return sympy.oo
        if value == "empty":
            return nodes.SetOf(())
        if value in ("mathbbR", "mathbbr"):
            return nodes.Interval(-sympy.oo, sympy.oo, True, True)
        raise ParseError(f"unsupported constant {value!r}")

    def _function(self, name: str) -> Any:
        power = None
        base = None
        if name in ("log", "lg") and self.at("op", "_"):
            self.next()
            base = self._arg()
        if self.at("op", "^"):
            self.next()
            power = _scalar(self._exponent() if not self.at("op", "{") else self._group())
        if name == "sqrt":
            index = None
            if self.at("op", "["):
                self.next()
                index = _scalar(self.expr())
                self.expect("op", "]")
            radicand = self._arg() if not self.at("op", "(") else self._paren_arg()
            result = sympy.sqrt(radicand) if index is None else sympy.root(radicand, index)
        else:
            argument = self._function_argument()
            if name in _FUNCS_1:
                result = _FUNCS_1[name](argument)
            elif name in ("log", "lg"):
                if base is None and name == "lg":
                    base = sympy.Integer(10)
                result = sympy.log(argument) if base is None else sympy.log(argument, base)
            else:
                raise ParseError(f"unsupported function {name!r}")
        if power is not None:
            if power == -1 and name in ("sin", "cos", "tan"):
                raise ParseError(f"inverse notation {name}^{{-1}} is not supported")
            result = _power(result, power, self.options)
        return result

    def _paren_arg(self) -> Any:
        self.expect("op", "(")
        inner = _scalar(self.expr())
        self.expect("op", ")")
        return inner

    def _function_argument(self) -> Any:
        if self.at("op", "("):
            return self._paren_arg()
        if self.at("op", "{"):
            return _scalar(self._group())
        value = _scalar(self.power())
        # \sin 2x reads as sin(2x).
        while self.peek() is not None and self.peek().kind == "id":
            value = _mul(value, _scalar(self.power()))
        return value

    def _text(self, content: str) -> Any:
        stripped = content.strip()
        letter = stripped.strip("() .")
        if (
            len(letter) == 1
            and letter in self.options.choices
            and stripped.startswith("(") == stripped.endswith(")")
        ):
            if stripped != letter or self.peek() is None:
                return nodes.Choice(letter)
        if not _is_wordy(content) or stripped.lower() in CONSTANTS or stripped.lower() in FUNCTIONS:
            inner = tokenize(normalize(content), self.options.max_depth)
            if not inner:
                raise ParseError("empty \\text{}")
            self.tokens[self.pos : self.pos] = inner
            return self.primary()
        return nodes.Text(_normalize_text(content))

    def _bracket(self, opener: str) -> Any:
        items = self.item_list(stop=(")", "]"))
        closer = self.next()
        if closer.kind != "op" or closer.value not in (")", "]"):
            raise ParseError(f"expected a closing bracket, found {closer.value!r}")
        if len(items) == 1 and opener == "(" and closer.value == ")":
            return items[0]
        if len(items) == 1 and opener == "[" and closer.value == "]":
            return items[0]
        if len(items) == 2 and (opener, closer.value) != ("(", ")"):
            lo, hi = items
            return nodes.Interval(_scalar(lo), _scalar(hi), opener == "(", closer.value == ")")
        return nodes.Tup(tuple(items), opener, closer.value)

    def _matrix(self, env: str) -> Any:
        rows: list[list] = [[]]
        while True:
            if self.at("end"):
                self.next()
                break
            if self.peek() is None:
                raise ParseError(f"\\begin{{{env}}} without \\end")
            if self.at("op", "&"):
                self.next()
                continue
            if self.at("op", "\\\\"):
                self.next()
                rows.append([])
                continue
            rows[-1].append(_scalar(self.expr()))
        rows = [r for r in rows if r]
        if not rows or len({len(r) for r in rows}) != 1:
            raise ParseError(f"ragged or empty {env}")
        if env in ("vmatrix", "Vmatrix"):
            return sympy.Matrix(rows).det()
        return nodes.Matrix(tuple(tuple(r) for r in rows))

    def _command(self, name: str) -> Any:
        if name == "frac":
            num, den = self._arg(), self._arg()
            return _mul(num, _power(den, sympy.Integer(-1), self.options))
        if name == "binom":
            n, k = self._arg(), self._arg()
            return _binomial(n, k, self.options)
        if name in ("pi",):
            return sympy.pi
        if name in ("infty", "infinity"):
            return sympy.oo
        if name in ("ldots", "cdots", "dots", "dotsc", "dotsb"):
            return nodes.Ellipsis_()
        if name in ("lfloor", "lceil"):
            inner = _scalar(self.expr())
            self.expect("cmd", "rfloor" if name == "lfloor" else "rceil")
            return sympy.floor(inner) if name == "lfloor" else sympy.ceiling(inner)
        if name in ("lvert", "vert", "lVert"):
            inner = _scalar(self.expr())
            if not self.at("cmd", "rvert", "vert", "rVert"):
                raise ParseError("unclosed \\lvert")
            self.next()
            return sympy.Abs(inner)
        if name in _GREEK:
            return sympy.Symbol(name)
        if name in ("overline", "bar", "vec", "hat", "tilde", "mathcal", "overrightarrow"):
            inner = self._raw_group_text() if self.at("op", "{") else self.next().value
            return sympy.Symbol(f"{name}({inner})")
        if name == "boxed":
            return self._group()
        raise ParseError(f"unsupported command \\{name}")


_SHORT_WORDS = frozenset({"no", "ok", "up", "on", "in", "at", "it", "is", "we", "he"})


def _is_word_answer(tokens: list[Token]) -> bool:
    """True for answers made only of words (``yes``, ``no solution``, ``Monday``)."""
    if len(tokens) == 2 and all(t.kind == "id" for t in tokens) and not tokens[1].space:
        return (tokens[0].value + tokens[1].value).lower() in _SHORT_WORDS
    if not any(t.kind == "word" and t.value.lower() not in ("and", "or") for t in tokens):
        return False
    return all(t.kind in ("word", "id") or (t.kind == "text" and _is_wordy(t.value)) for t in tokens)


def _is_wordy(text: str) -> bool:
    """Return True when ``text`` contains a word of two or more letters, or several words."""
    letters = [w for w in "".join(ch if ch.isalpha() else " " for ch in text).split()]
    return any(len(w) >= 2 for w in letters) or len(letters) > 1


def _normalize_text(text: str) -> str:
    return " ".join(text.lower().replace("\\", " ").replace("~", " ").split()).strip(" .")


def _scalar(value: Any) -> Any:
    if isinstance(value, sympy.Basic):
        return value
    raise ParseError(f"{type(value).__name__} cannot be used inside arithmetic")


def _mul(a: Any, b: Any) -> Any:
    return sympy.Mul(a, b)


def _number(text: str, options: VerifyOptions) -> Any:
    mantissa, _, exponent = text.lower().partition("e")
    digits = len(mantissa.replace(".", "").lstrip("0"))
    if digits > _MAX_LITERAL_DIGITS:
        raise TooLarge(f"number literal with {digits} digits")
    if exponent and abs(int(exponent)) > options.max_digits:
        raise TooLarge(f"exponent {exponent} in {text!r}")
    if "." not in mantissa and not exponent:
        return sympy.Integer(int(mantissa))
    if "." not in mantissa and exponent and int(exponent) >= 0:
        return sympy.Integer(int(mantissa)) * sympy.Integer(10) ** int(exponent)
    # Decimal literals become Floats with enough precision for every written digit; their Float type
    # marks the answer as approximate for the comparison.
    return sympy.Float(text, max(20, digits + 5))


def _log10_abs(value: Any) -> float | None:
    """Return log10 of |value| for a number, or None when it is not a finite nonzero number."""
    if isinstance(value, sympy.Rational):
        p, q = abs(int(value.p)), int(value.q)
        if p == 0:
            return None
        return _int_log10(p) - _int_log10(q)
    if value.is_number:
        try:
            magnitude = abs(complex(sympy.N(value, 15)))
        except (TypeError, ValueError, OverflowError):
            return None
        if magnitude == 0 or math.isinf(magnitude) or math.isnan(magnitude):
            return None
        return math.log10(magnitude)
    return None


def _int_log10(n: int) -> float:
    bits = n.bit_length()
    if bits < 1000:
        return math.log10(n)
    return (bits - 1) * math.log10(2)


def _power(base: Any, exponent: Any, options: VerifyOptions) -> Any:
    """Build ``base**exponent`` after checking that its value has at most ``max_digits`` digits."""
    if exponent.is_number and base.is_number and exponent.is_real:
        try:
            size = abs(float(sympy.N(exponent, 15)))
        except (TypeError, ValueError, OverflowError):
            raise TooLarge("exponent too large to estimate") from None
        log_base = _log10_abs(base)
        if log_base is not None and size * abs(log_base) > options.max_digits:
            raise TooLarge(f"a power with about {size * abs(log_base):.3g} digits")
        if size > 10 * options.max_digits and base not in (0, 1, -1):
            raise TooLarge(f"exponent {size:.3g} is too large")
    elif exponent.is_number and exponent.is_real:
        try:
            if abs(float(sympy.N(exponent, 15))) > options.max_digits:
                raise TooLarge("exponent of a symbolic base is too large")
        except (TypeError, ValueError, OverflowError):
            raise TooLarge("exponent too large to estimate") from None
    return sympy.Pow(base, exponent)


def _factorial(value: Any, options: VerifyOptions) -> Any:
    if isinstance(value, sympy.Integer):
        if value < 0:
            raise ParseError("factorial of a negative integer")
        if value > options.max_factorial:
            raise TooLarge(f"factorial of {value} exceeds max_factorial={options.max_factorial}")
        return sympy.factorial(value)
    if value.is_number:
        raise ParseError("factorial of a non-integer number")
    return sympy.factorial(value)


def _binomial(n: Any, k: Any, options: VerifyOptions) -> Any:
    if isinstance(n, sympy.Integer) and abs(n) > options.max_factorial:
        raise TooLarge(f"binomial of {n} exceeds max_factorial={options.max_factorial}")
    if isinstance(k, sympy.Integer) and abs(k) > options.max_factorial:
        raise TooLarge(f"binomial with k={k} exceeds max_factorial={options.max_factorial}")
    return sympy.binomial(n, k)


def _expand_plus_minus(node: Any) -> list:
    if isinstance(node, sympy.Basic) and node.has(PLUS_MINUS):
        return [node.xreplace({PLUS_MINUS: sympy.Integer(1)}), node.xreplace({PLUS_MINUS: sympy.Integer(-1)})]
    if isinstance(node, nodes.Relation) and any(
        isinstance(t, sympy.Basic) and t.has(PLUS_MINUS) for t in node.terms
    ):
        out = []
        for sign in (1, -1):
            terms = tuple(
                t.xreplace({PLUS_MINUS: sympy.Integer(sign)}) if isinstance(t, sympy.Basic) else t
                for t in node.terms
            )
            out.append(nodes.Relation(terms, node.ops))
        return out
    return [node]


def parse_answer(text: str, options: VerifyOptions | None = None) -> Any:
    """Parse an answer into a sympy expression or one of the shapes in ``rewards.verify.nodes``.

    Raises ``ParseError`` for text it cannot read and ``TooLarge`` when a bound is exceeded.
    """
    options = options or VerifyOptions()
    if len(text) > options.max_answer_chars:
        raise TooLarge(
            f"answer of {len(text)} characters exceeds max_answer_chars={options.max_answer_chars}"
        )
    tokens = tokenize(normalize(text), options.max_depth)
    if not tokens:
        raise ParseError("empty answer")
    if _is_word_answer(tokens):
        return nodes.Text(_normalize_text("".join((" " if t.space else "") + t.value for t in tokens)))
    try:
        return _Parser(tokens, options).parse()
    except RecursionError:
        raise TooLarge("expression nests too deeply") from None
    except (TypeError, ValueError, ZeroDivisionError, AttributeError) as exc:
        if isinstance(exc, (ParseError, TooLarge)):
            raise
        raise ParseError(f"cannot build {text[:60]!r}: {exc}") from None


def parse_math(text: str, options: VerifyOptions | None = None) -> sympy.Basic:
    """Parse LaTeX or plain-text math into a sympy object without evaluating the text as code.

    Lists become ``sympy.Tuple``, sets ``FiniteSet``, intervals ``sympy.Interval``, equations and
    inequalities ``sympy.Eq``/``Lt``/..., matrices ``ImmutableMatrix`` and percentages their value
    divided by 100. Text answers and choice letters raise ``ParseError``.

    >>> parse_math(r"\\frac{1}{2} + \\sqrt{8}")
    1/2 + 2*sqrt(2)
    >>> parse_math("x^2 - 1 = 0")
    Eq(x**2 - 1, 0)
    """
    return to_sympy(parse_answer(text, options))


def to_sympy(node: Any) -> sympy.Basic:
    """Convert a parsed answer to a plain sympy object (see ``parse_math``)."""
    if isinstance(node, sympy.Basic):
        return node
    if isinstance(node, (nodes.Seq, nodes.Tup)):
        return sympy.Tuple(*(to_sympy(x) for x in node.items))
    if isinstance(node, nodes.SetOf):
        return sympy.FiniteSet(*(to_sympy(x) for x in node.items))
    if isinstance(node, nodes.Interval):
        return sympy.Interval(node.lo, node.hi, node.lo_open, node.hi_open)
    if isinstance(node, nodes.Union):
        return sympy.Union(*(to_sympy(p) for p in node.parts))
    if isinstance(node, nodes.Matrix):
        return sympy.ImmutableMatrix([list(r) for r in node.rows])
    if isinstance(node, nodes.Percent):
        return to_sympy(node.value) / 100
    if isinstance(node, nodes.Degrees):
        return to_sympy(node.value)
    if isinstance(node, nodes.Relation):
        makers = {"=": sympy.Eq, "<": sympy.Lt, "<=": sympy.Le, ">": sympy.Gt, ">=": sympy.Ge, "!=": sympy.Ne}
        parts = []
        for left, op, right in zip(node.terms, node.ops, node.terms[1:]):
            if op == "in":
                parts.append(sympy.Contains(to_sympy(left), to_sympy(right)))
            else:
                parts.append(makers[op](to_sympy(left), to_sympy(right), evaluate=False))
        return parts[0] if len(parts) == 1 else sympy.And(*parts, evaluate=False)
    raise ParseError(f"{type(node).__name__} answers have no sympy form")
