r"""Parse a claim's predicate into logic nodes over sympy expressions, with the verifier's parser.

A predicate is the property a claim asserts for every value of its variables, in plain text or
LaTeX, for example ``isprime(n^2 + n + 41)``, ``A*B = B*A``, ``det(A + B) = det(A) + det(B)`` or
``not divides(4, n^2) or divides(4, n)``. The grammar, loosest binding first::

    predicate   := disjunction (('implies' | '=>' | '\implies') predicate)?
    disjunction := conjunction (('or' | '\lor' | '\vee') conjunction)*
    conjunction := negation (('and' | '\land' | '\wedge') negation)*
    negation    := ('not' | '\neg' | '\lnot') negation | '(' predicate ')' | comparison
    comparison  := expr (relop expr)* | test(args)

Arithmetic (``expr``) is the answer parser's grammar (``rewards.verify.parse``), so powers keep
their size bounds and nothing is evaluated as code. Matrix variables become non-commutative
symbols, so ``A*B`` and ``B*A`` stay distinct. Functions are listed in ``FUNCTIONS``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import sympy

from rewards.counterexample.domains import Domain
from rewards.verify import nodes
from rewards.verify.errors import ParseError, TooLarge
from rewards.verify.lexer import Token, normalize, tokenize
from rewards.verify.options import VerifyOptions
from rewards.verify.parse import _RELOPS, _Parser

__all__ = ["And", "Not", "Or", "Implies", "FUNCTIONS", "TESTS", "parse_predicate", "variable_symbol"]

TESTS = frozenset(
    "isprime iscomposite divides iseven isodd issquare isinteger isirreducible iszero isidentity".split()
)
"""Functions whose value is true or false; they may stand alone as a condition."""
FUNCTIONS = TESTS | frozenset(
    "gcd lcm mod max min det trace transpose inverse identity degree nrealroots fibonacci lucas".split()
)
"""Every function a predicate may call (see ``rewards.counterexample.evaluate`` for their meaning)."""

_AND = frozenset({"and", "land", "wedge"})
_OR = frozenset({"or", "lor", "vee"})
_NOT = frozenset({"not", "neg", "lnot"})
_IMPLIES = frozenset({"implies", "=>", "Rightarrow", "Longrightarrow"})
# The answer parser's relations, except "approx", "equiv" and "in", which a predicate does not use.
_RELATIONS = {name: op for name, op in _RELOPS.items() if name not in {"approx", "equiv", "in"}}
_RESERVED_NAMES = frozenset({"e", "i"})


@dataclass(frozen=True)
class Not:
    operand: Any


@dataclass(frozen=True)
class And:
    operands: tuple


@dataclass(frozen=True)
class Or:
    operands: tuple


@dataclass(frozen=True)
class Implies:
    premise: Any
    conclusion: Any


def variable_symbol(name: str, domain: Domain) -> sympy.Symbol:
    """Return the symbol that stands for a variable; matrices do not commute."""
    return sympy.Symbol(name, commutative=not domain.is_matrix)


class _PredicateParser(_Parser):
    def __init__(self, tokens: list[Token], options: VerifyOptions, variables: dict[str, Domain]):
        super().__init__(tokens, options)
        self.variables = variables
        self.symbols = {name: variable_symbol(name, domain) for name, domain in variables.items()}

    def _is(self, names: frozenset, offset: int = 0) -> bool:
        tok = self.peek(offset)
        return tok is not None and tok.kind in ("word", "cmd", "op") and tok.value in names

    def parse(self) -> Any:
        node = self.predicate()
        if self.peek() is not None:
            raise ParseError(f"unexpected {self.peek().value!r} in the predicate")
        return node

    def predicate(self) -> Any:
        left = self.disjunction()
        if self._is(_IMPLIES) or self.at("op", "->"):
            self.next()
            return Implies(left, self.predicate())
        return left

    def disjunction(self) -> Any:
        parts = [self.conjunction()]
        while self._is(_OR):
            self.next()
            parts.append(self.conjunction())
        return parts[0] if len(parts) == 1 else Or(tuple(parts))

    def conjunction(self) -> Any:
        parts = [self.negation()]
        while self._is(_AND):
            self.next()
            parts.append(self.negation())
        return parts[0] if len(parts) == 1 else And(tuple(parts))

    def negation(self) -> Any:
        if self._is(_NOT):
            self.next()
            return Not(self.negation())
        if self.at("op", "("):
            # "(" opens either a grouped condition or arithmetic such as (n + 1)^2 > 3: try the first.
            saved = self.pos
            try:
                self.next()
                inner = self.predicate()
                self.expect("op", ")")
                if not self._continues_arithmetic():
                    return inner
            except ParseError:
                pass
            self.pos = saved
        return self.comparison()

    def _continues_arithmetic(self) -> bool:
        tok = self.peek()
        if tok is None:
            return False
        return self._relation() is not None or (tok.kind == "op" and tok.value in "+-*/^")

    def comparison(self) -> Any:
        terms = [self.expr()]
        ops = []
        while True:
            op = self._relation()
            if op is None:
                break
            self.next()
            ops.append(op)
            terms.append(self.expr())
        if ops:
            return nodes.Relation(tuple(terms), tuple(ops))
        first = terms[0]
        if isinstance(first, sympy.Function) and type(first).__name__ in TESTS:
            return first
        raise ParseError(
            f"{first} is not a condition; compare it (=, <, ...) or apply a test such as isprime()"
        )

    def _relation(self) -> str | None:
        tok = self.peek()
        if tok is not None and tok.kind in ("op", "cmd") and tok.value in _RELATIONS:
            return _RELATIONS[tok.value]
        return None

    def _unit_follows(self) -> bool:
        return False  # predicates have no units; a word after a number ends the expression

    def _relop(self) -> str | None:
        # Used by the inherited item grammar inside braces; keep logic words out of it.
        op = self._relation()
        if op is not None:
            self.next()
        return op

    def primary(self) -> Any:
        tok = self.peek()
        if tok is not None and self.at("op", "(", offset=1):
            name = "degree" if (tok.kind == "cmd" and tok.value == "deg") else tok.value
            if tok.kind in ("word", "func", "cmd") and name in FUNCTIONS:
                self.next()
                return sympy.Function(name)(*self._call_arguments())
            if tok.kind == "id" and tok.value in self.variables and self.variables[tok.value].is_polynomial:
                self.next()
                return sympy.Function(tok.value)(*self._call_arguments())
        if tok is not None and tok.kind == "word":
            known = ", ".join(sorted(FUNCTIONS))
            raise ParseError(f"unknown function or word {tok.value!r}; known functions: {known}")
        return super().primary()

    def _call_arguments(self) -> list:
        self.expect("op", "(")
        arguments = [self.expr()]
        while self.at("op", ","):
            self.next()
            arguments.append(self.expr())
        self.expect("op", ")")
        return arguments

    def _symbol(self, name: str) -> Any:
        symbol = super()._symbol(name)
        if symbol in (sympy.E, sympy.I):
            return symbol
        if symbol.name in self.symbols:
            return self.symbols[symbol.name]
        declared = ", ".join(self.variables) or "none"
        raise ParseError(f"unknown name {symbol.name!r}; declared variables: {declared}")


def parse_predicate(text: str, variables: dict[str, Domain], options: VerifyOptions | None = None) -> Any:
    """Parse ``text`` into ``Not``/``And``/``Or``/``Implies`` nodes over relations and tests.

    Raises ``ParseError`` naming the problem (an unknown name, a missing comparison, ...).

    >>> from rewards.counterexample.domains import parse_domain
    >>> parse_predicate("n > 0 and isprime(n^2 + 1)", {"n": parse_domain("integer")})
    And(operands=(Relation(terms=(n, 0), ops=('>',)), isprime(n**2 + 1)))
    """
    if not isinstance(text, str) or not text.strip():
        raise ParseError(f"a predicate must be non-empty text, got {text!r}")
    for name in variables:
        if name in _RESERVED_NAMES:
            raise ParseError(f"variable name {name!r} is reserved for a constant; rename it")
    options = options or VerifyOptions()
    tokens = tokenize(normalize(text), options.max_depth)
    try:
        return _PredicateParser(tokens, options, variables).parse()
    except RecursionError:
        raise TooLarge("the predicate nests too deeply") from None
