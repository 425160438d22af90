r"""Families of generated claims: each draws one statement, true or false, with its checkable predicate.

A family function takes a seeded ``random.Random`` and the judgement to produce, and returns a
``ClaimSpec``, or None when it cannot produce that judgement. False claims carry a known
counterexample written the way the answer parser reads it (``n = 40``, ``A = [[1, 0], [0, 0]]``,
``p(x) = x^2 - 1``). Predicates use the functions of ``rewards.counterexample``.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Callable

import sympy

__all__ = ["ClaimSpec", "FAMILIES", "Family"]


@dataclass(frozen=True)
class ClaimSpec:
    statement: str
    judgement: bool
    variables: dict[str, str]
    predicate: str
    counterexample: str | None
    """A known counterexample for a false claim, e.g. ``n = 40``; None for a true claim."""


@dataclass(frozen=True)
class Family:
    name: str
    field: str
    level: int
    draw: Callable[[random.Random, bool], ClaimSpec | None]


def _poly_text(coefficients: list[int], variable: str = "n") -> str:
    """Write c0*v^k + ... + ck as LaTeX-ready text with clean signs: ``n^2 - 3n + 2``."""
    degree = len(coefficients) - 1
    parts: list[str] = []
    for index, c in enumerate(coefficients):
        power = degree - index
        if c == 0:
            continue
        magnitude = abs(c)
        if power == 0:
            body = str(magnitude)
        else:
            factor = "" if magnitude == 1 else str(magnitude)
            exponent = f"^{power}" if power > 1 else ""
            body = f"{factor}{variable}{exponent}"
        if not parts:
            parts.append(body if c > 0 else f"-{body}")
        else:
            parts.append(f"{'-' if c < 0 else '+'} {body}")
    return " ".join(parts) if parts else "0"


def _signed(value: int) -> str:
    """``+ 3`` or ``- 3`` for appending a constant to an expression."""
    return f"+ {value}" if value >= 0 else f"- {-value}"


# ----- number theory


def _polynomial_primality(rng: random.Random, truth: bool) -> ClaimSpec | None:
    if truth:
        return None  # no quadratic is prime at every natural number
    c = rng.randint(2, 1000)
    if rng.random() < 0.5:
        expression, counterexample = f"n^2 - n + {c}", c  # value c^2 at n = c
    else:
        expression, counterexample = f"n^2 + n + {c}", c - 1  # value c^2 at n = c - 1
    return ClaimSpec(
        f"For every natural number $n$, ${expression}$ is prime.",
        False,
        {"n": "natural"},
        f"isprime({expression})",
        f"n = {counterexample}",
    )


def _quadratic_parity(rng: random.Random, truth: bool) -> ClaimSpec:
    # n^2 + n is always even, so n^2 + n + c is odd exactly when c is odd.
    c = 2 * rng.randint(0, 500) + (1 if truth else 0)
    return ClaimSpec(
        f"For every integer $n$, $n^2 + n + {c}$ is odd.",
        truth,
        {"n": "integer"},
        f"isodd(n^2 + n + {c})",
        None if truth else "n = 0",
    )


def _square_divisibility(rng: random.Random, truth: bool) -> ClaimSpec | None:
    # a | n^2 implies a | n exactly when a is squarefree; otherwise n = prod p^ceil(e/2) fails.
    a = rng.randint(2, 600)
    factors = sympy.factorint(a)
    if all(e == 1 for e in factors.values()) != truth:
        return None
    witness = math.prod(p ** ((e + 1) // 2) for p, e in factors.items())
    return ClaimSpec(
        f"For every integer $n$, if ${a}$ divides $n^2$, then ${a}$ divides $n$.",
        truth,
        {"n": "integer"},
        f"not divides({a}, n^2) or divides({a}, n)",
        None if truth else f"n = {witness}",
    )


def _product_divisibility(rng: random.Random, truth: bool) -> ClaimSpec | None:
    # Euclid's lemma: true for primes; for a = p * q take m = p, n = q.
    a = rng.randint(2, 600)
    if sympy.isprime(a) != truth:
        return None
    p = min(sympy.factorint(a))
    return ClaimSpec(
        f"For all integers $m$ and $n$, if ${a}$ divides $mn$, then ${a}$ divides $m$ or ${a}$ divides $n$.",
        truth,
        {"m": "integer", "n": "integer"},
        f"not divides({a}, m*n) or divides({a}, m) or divides({a}, n)",
        None if truth else f"m = {p}, n = {a // p}",
    )


def _rational_square(rng: random.Random, truth: bool) -> ClaimSpec:
    if truth:
        c = rng.choice([k for k in range(2, 300) if math.isqrt(k) ** 2 != k])
        text, value = str(c), str(c)
    else:
        p, q = rng.randint(1, 12), rng.randint(2, 9)
        fraction = sympy.Rational(p, q) ** 2
        text = f"\\frac{{{fraction.p}}}{{{fraction.q}}}" if fraction.q != 1 else str(fraction.p)
        value = f"{fraction.p}/{fraction.q}" if fraction.q != 1 else str(fraction.p)
        root = sympy.sqrt(fraction)
        witness = f"{root.p}/{root.q}" if root.q != 1 else str(root.p)
    return ClaimSpec(
        f"For every rational number $x$, $x^2 \\neq {text}$.",
        truth,
        {"x": "rational"},
        f"x^2 != {value}",
        None if truth else f"x = {witness}",
    )


def _integer_quadratic(rng: random.Random, truth: bool) -> ClaimSpec:
    # (n - r)(n - r - gap) is >= 0 at every integer exactly when gap is 1; "> 0" fails at n = r.
    r = rng.randint(-30, 30)
    if truth:
        gap, strict = 1, False
    else:
        gap, strict = rng.randint(1, 4), rng.random() < 0.5
        if gap == 1:
            strict = True
    s, p = 2 * r + gap, r * (r + gap)
    relation = ">" if strict else "\\ge"
    expression = _poly_text([1, -s, p])
    witness = r if strict else r + 1
    return ClaimSpec(
        f"For every integer $n$, ${expression} {relation} 0$.",
        truth,
        {"n": "integer"},
        f"{expression} {'>' if strict else '>='} 0",
        None if truth else f"n = {witness}",
    )


# ----- real analysis


def _real_quadratic(rng: random.Random, truth: bool) -> ClaimSpec:
    # x^2 + c >= 2bx for all real x exactly when c >= b^2; x = b fails otherwise.
    b = rng.randint(1, 50)
    c = b * b + (rng.randint(0, 5) if truth else -rng.randint(1, 2 * b))
    return ClaimSpec(
        f"For every real number $x$, $x^2 {_signed(c)} \\ge {2 * b}x$.",
        truth,
        {"x": "real"},
        f"x^2 {_signed(c)} >= {2 * b}*x",
        None if truth else f"x = {b}",
    )


def _partial_identity(rng: random.Random, truth: bool) -> ClaimSpec:
    kind = rng.randrange(3)
    if kind == 0:
        a = rng.randint(1, 30)
        right, predicate_right = (f"|x - {a}|", f"abs(x - {a})") if truth else (f"x - {a}", f"x - {a}")
        return ClaimSpec(
            f"For every real number $x$, $\\sqrt{{(x - {a})^2}} = {right}$.",
            truth,
            {"x": "real"},
            f"sqrt((x - {a})^2) = {predicate_right}",
            None if truth else f"x = {a - 1}",
        )
    if kind == 1:
        k = rng.randint(2, 12)
        if truth:
            statement = f"$\\lfloor x + {k} \\rfloor = \\lfloor x \\rfloor + {k}$"
            predicate = f"floor(x + {k}) = floor(x) + {k}"
        else:
            statement = f"$\\lfloor {k}x \\rfloor = {k}\\lfloor x \\rfloor$"
            predicate = f"floor({k}*x) = {k}*floor(x)"
        return ClaimSpec(
            f"For every real number $x$, {statement}.", truth, {"x": "real"}, predicate, None if truth else "x = 1/2"
        )
    a = rng.randint(1, 30)
    relation, predicate_relation = ("\\le", "<=") if truth else ("=", "=")
    return ClaimSpec(
        f"For every real number $x$, $|x + {a}| {relation} |x| + {a}$.",
        truth,
        {"x": "real"},
        f"abs(x + {a}) {predicate_relation} abs(x) + {a}",
        None if truth else "x = -1",
    )


# ----- polynomials


def _polynomial_properties(rng: random.Random, truth: bool) -> ClaimSpec:
    kind = rng.randrange(3)
    d = rng.randint(1, 8)
    if kind == 0:
        # Every degree-1 polynomial is irreducible; x^d - 1 has the factor x - 1.
        d = 1 if truth else max(d, 2)
        return ClaimSpec(
            f"Every polynomial $p$ of degree {d} with integer coefficients is irreducible over the rationals.",
            truth,
            {"p": "polynomial"},
            f"degree(p) != {d} or isirreducible(p)",
            None if truth else f"p(x) = x^{d} - 1",
        )
    if kind == 1:
        # Odd degree forces a real root; x^d + 1 has none for even d.
        d = 2 * rng.randint(0, 3) + 1 if truth else 2 * rng.randint(1, 4)
        return ClaimSpec(
            f"Every polynomial $p$ of degree {d} with integer coefficients has a real root.",
            truth,
            {"p": "polynomial"},
            f"degree(p) != {d} or nrealroots(p) >= 1",
            None if truth else f"p(x) = x^{d} + 1",
        )
    # k | p(n + k) - p(n) always; for a shift j that k does not divide, p(x) = x and n = 0 fail.
    k = rng.randint(2, 12)
    j = k if truth else rng.choice([s for s in range(1, 3 * k) if s % k])
    return ClaimSpec(
        f"For every polynomial $p$ with integer coefficients and every integer $n$, ${k}$ divides $p(n + {j}) - p(n)$.",
        truth,
        {"p": "polynomial", "n": "integer"},
        f"divides({k}, p(n + {j}) - p(n))",
        None if truth else "p(x) = x, n = 0",
    )


# ----- linear algebra

_MATRICES = "For all $2 \\times 2$ integer matrices $A$ and $B$"
_MATRIX = "For every $2 \\times 2$ integer matrix $A$"
_TWO = {"A": "matrix2_integer", "B": "matrix2_integer"}
_ONE = {"A": "matrix2_integer"}
_NONCOMMUTING = "A = [[1, 1], [0, 1]], B = [[1, 0], [1, 1]]"


def _matrix_algebra(rng: random.Random, truth: bool) -> ClaimSpec:
    k = rng.randint(2, 9)
    m = rng.randint(2, 6)
    false_claims = [
        (f"{_MATRICES}, $AB = BA$.", _TWO, "A*B = B*A", _NONCOMMUTING),
        (f"{_MATRICES}, $(A + B)^2 = A^2 + 2AB + B^2$.", _TWO, "(A + B)^2 = A^2 + 2*A*B + B^2", _NONCOMMUTING),
        (f"{_MATRICES}, $\\det(A + B) = \\det(A) + \\det(B)$.", _TWO, "det(A + B) = det(A) + det(B)",
         "A = [[1, 0], [0, 1]], B = [[1, 0], [0, 1]]"),
        (f"{_MATRIX}, $\\det({k}A) = {k}\\det(A)$.", _ONE, f"det({k}*A) = {k}*det(A)", "A = [[1, 0], [0, 1]]"),
        (f"{_MATRIX}, if $A^{m} = 0$ then $A = 0$.", _ONE, f"not iszero(A^{m}) or iszero(A)", "A = [[0, 1], [0, 0]]"),
        (f"{_MATRIX}, if $A^2 = {k}A$ then $A = 0$ or $A = {k}I$.", _ONE,
         f"A^2 != {k}*A or iszero(A) or A = {k}*identity(2)",
         f"A = [[{k}, 0], [0, 0]]"),
        (f"{_MATRICES}, if $AB = 0$ then $A = 0$ or $B = 0$.", _TWO, "not iszero(A*B) or iszero(A) or iszero(B)",
         "A = [[1, 0], [0, 0]], B = [[0, 0], [0, 1]]"),
    ]
    true_claims = [
        (f"{_MATRICES}, $\\det(AB) = \\det(A)\\det(B)$.", _TWO, "det(A*B) = det(A)*det(B)"),
        (f"{_MATRICES}, $\\operatorname{{tr}}(A + {k}B) = \\operatorname{{tr}}(A) + {k}\\operatorname{{tr}}(B)$.", _TWO,
         f"trace(A + {k}*B) = trace(A) + {k}*trace(B)"),
        (f"{_MATRICES}, $\\operatorname{{tr}}(AB) = \\operatorname{{tr}}(BA)$.", _TWO, "trace(A*B) = trace(B*A)"),
        (f"{_MATRIX}, $\\det({k}A) = {k * k}\\det(A)$.", _ONE, f"det({k}*A) = {k * k}*det(A)"),
        (f"{_MATRIX}, $\\det(A^{m}) = \\det(A)^{m}$.", _ONE, f"det(A^{m}) = det(A)^{m}"),
        (f"{_MATRICES}, $(AB)^T = B^T A^T$.", _TWO, "transpose(A*B) = transpose(B)*transpose(A)"),
    ]
    if truth:
        statement, variables, predicate = rng.choice(true_claims)
        return ClaimSpec(statement, True, dict(variables), predicate, None)
    statement, variables, predicate, counterexample = rng.choice(false_claims)
    return ClaimSpec(statement, False, dict(variables), predicate, counterexample)


# ----- sequences


def _fibonacci_entry_point(d: int) -> int:
    """Return the first index n >= 1 with d | F_n (the rank of apparition of d)."""
    a, b, n = 0, 1, 0
    while True:
        a, b, n = b, a + b, n + 1
        if a % d == 0:
            return n


def _sequence_checks(rng: random.Random, truth: bool) -> ClaimSpec | None:
    kind = rng.randrange(3)
    if kind == 0:
        d = rng.randint(2, 30)
        z = _fibonacci_entry_point(d)
        low = rng.randint(1, 40)
        high = low + rng.randint(0, 25)
        multiples = [n for n in range(low, high + 1) if n % z == 0]
        if bool(multiples) == truth:
            return None
        return ClaimSpec(
            f"For every integer $n$ with ${low} \\le n \\le {high}$, the Fibonacci number $F_n$ is not divisible by ${d}$.",
            truth,
            {"n": f"[{low}, {high}]"},
            f"not divides({d}, fibonacci(n))",
            None if truth else f"n = {multiples[0]}",
        )
    if kind == 1:
        # 2^n - 1 is prime for the primes n = 2, 3, 5, 7 and fails first at n = 11.
        limit = rng.randint(2, 10) if truth else rng.randint(11, 60)
        return ClaimSpec(
            f"For every prime $n \\le {limit}$, $2^n - 1$ is prime.",
            truth,
            {"n": f"[2, {limit}]"},
            "not isprime(n) or isprime(2^n - 1)",
            None if truth else "n = 11",
        )
    # 2^n > n^2 fails exactly at n = 2, 3, 4 among the positive integers.
    low = rng.randint(5, 12) if truth else rng.randint(1, 4)
    high = low + rng.randint(3, 30)
    witness = next((n for n in range(low, high + 1) if 2**n <= n * n), None)
    return ClaimSpec(
        f"For every integer $n$ with ${low} \\le n \\le {high}$, $2^n > n^2$.",
        truth,
        {"n": f"[{low}, {high}]"},
        "2^n > n^2",
        None if truth else f"n = {witness}",
    )


FAMILIES: dict[str, Family] = {
    family.name: family
    for family in (
        Family("polynomial_primality", "number theory", 1, _polynomial_primality),
        Family("quadratic_parity", "number theory", 1, _quadratic_parity),
        Family("square_divisibility", "number theory", 1, _square_divisibility),
        Family("rational_square", "number theory", 1, _rational_square),
        Family("integer_quadratic", "algebra", 1, _integer_quadratic),
        Family("product_divisibility", "number theory", 2, _product_divisibility),
        Family("real_quadratic", "real analysis", 2, _real_quadratic),
        Family("partial_identity", "real analysis", 2, _partial_identity),
        Family("polynomial_properties", "algebra", 2, _polynomial_properties),
        Family("matrix_algebra", "linear algebra", 3, _matrix_algebra),
        Family("sequence_checks", "sequences", 3, _sequence_checks),
    )
}
"""Every claim family by name; ``level`` is 1 (one integer variable) to 3 (matrices, sequences)."""
