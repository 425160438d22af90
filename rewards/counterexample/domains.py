"""Domains of claim variables: parsing their names and checking that a proposed value lies in one.

Domain names (as written in a claim's ``variables``):

- ``integer``, ``natural`` (1, 2, 3, ...), ``nonnegative_integer`` (0, 1, 2, ...),
  ``rational``, ``real``, ``positive_real``;
- ``integer[a, b]`` or ``[a, b]``: the integers from ``a`` to ``b`` inclusive;
- ``polynomial``: a polynomial with integer coefficients in one variable;
- ``matrix2_integer``, ``matrix2_rational``: 2x2 matrices with integer or rational entries.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import sympy

from rewards.verify import nodes

__all__ = [
    "DOMAIN_KINDS",
    "Domain",
    "MAX_POLYNOMIAL_DEGREE",
    "OutsideDomain",
    "POLY_VARIABLE",
    "parse_domain",
]

DOMAIN_KINDS = (
    "integer",
    "natural",
    "nonnegative_integer",
    "rational",
    "real",
    "positive_real",
    "integer_range",
    "polynomial",
    "matrix2_integer",
    "matrix2_rational",
)
MAX_POLYNOMIAL_DEGREE = 64
# Polynomial values become sympy Poly objects in this symbol, whatever letter the completion used.
POLY_VARIABLE = sympy.Symbol("x")

_RANGE = re.compile(r"^\s*(?:integer\s*)?\[\s*(-?\d+)\s*,\s*(-?\d+)\s*\]\s*$")


class OutsideDomain(ValueError):
    """A proposed value does not belong to its variable's domain."""


@dataclass(frozen=True)
class Domain:
    """A variable's domain; ``low``/``high`` bound ``integer_range`` kinds."""

    kind: str
    low: int | None = None
    high: int | None = None

    @property
    def is_matrix(self) -> bool:
        return self.kind.startswith("matrix")

    @property
    def is_polynomial(self) -> bool:
        return self.kind == "polynomial"

    def describe(self) -> str:
        if self.kind == "integer_range":
            return f"integer[{self.low}, {self.high}]"
        return self.kind

    def coerce(self, value: Any) -> Any:
        """Return ``value`` (a parsed answer) as a member of this domain, or raise ``OutsideDomain``.

        Decimals such as ``0.5`` are read as the exact rational they spell.
        """
        if self.is_matrix:
            return self._matrix(value)
        if self.is_polynomial:
            return self._polynomial(value)
        number = _exact_number(value)
        if self.kind in ("integer", "natural", "nonnegative_integer", "integer_range"):
            if not isinstance(number, sympy.Integer):
                raise OutsideDomain(f"{value} is not an integer")
            if self.kind == "natural" and number < 1:
                raise OutsideDomain(f"{value} is not a natural number (1, 2, 3, ...)")
            if self.kind == "nonnegative_integer" and number < 0:
                raise OutsideDomain(f"{value} is negative")
            if self.kind == "integer_range" and not self.low <= number <= self.high:
                raise OutsideDomain(f"{value} is outside [{self.low}, {self.high}]")
            return number
        if self.kind == "rational":
            if not isinstance(number, sympy.Rational):
                raise OutsideDomain(f"{value} is not rational")
            return number
        # real, positive_real
        if number.is_extended_real is not True or not number.is_finite:
            raise OutsideDomain(f"{value} is not a real number")
        if self.kind == "positive_real" and number.is_positive is not True:
            raise OutsideDomain(f"{value} is not positive")
        return number

    def _matrix(self, value: Any) -> sympy.ImmutableMatrix:
        if isinstance(value, nodes.Matrix):
            rows = value.rows
        elif isinstance(value, sympy.MatrixBase):
            rows = value.tolist()
        else:
            raise OutsideDomain(f"{value} is not a matrix")
        if len(rows) != 2 or any(len(row) != 2 for row in rows):
            raise OutsideDomain(f"a {len(rows)}x{len(rows[0]) if rows else 0} matrix is not 2x2")
        entries = [[_exact_number(entry) for entry in row] for row in rows]
        wanted = sympy.Integer if self.kind == "matrix2_integer" else sympy.Rational
        for row in entries:
            for entry in row:
                if not isinstance(entry, wanted):
                    kind = "an integer" if wanted is sympy.Integer else "a rational number"
                    raise OutsideDomain(f"matrix entry {entry} is not {kind}")
        return sympy.ImmutableMatrix(entries)

    def _polynomial(self, value: Any) -> sympy.Poly:
        if not isinstance(value, sympy.Expr):
            raise OutsideDomain(f"{value} is not a polynomial")
        symbols = value.free_symbols
        if len(symbols) > 1:
            raise OutsideDomain(f"{value} has more than one variable")
        _check_exponents(value)
        generator = next(iter(symbols)) if symbols else POLY_VARIABLE
        try:
            poly = sympy.Poly(value, generator)
        except sympy.PolynomialError:
            raise OutsideDomain(f"{value} is not a polynomial") from None
        if poly.degree() > MAX_POLYNOMIAL_DEGREE:
            raise OutsideDomain(f"degree {poly.degree()} exceeds {MAX_POLYNOMIAL_DEGREE}")
        if not all(isinstance(c, sympy.Integer) for c in poly.all_coeffs()):
            raise OutsideDomain(f"{value} does not have integer coefficients")
        return sympy.Poly(poly.as_expr().subs(generator, POLY_VARIABLE), POLY_VARIABLE, domain="ZZ")


def _check_exponents(expr: sympy.Expr) -> None:
    """Reject powers that would expand past the degree bound before sympy expands them."""
    for power in expr.atoms(sympy.Pow):
        exponent = power.exp
        if exponent.is_Integer and abs(int(exponent)) > MAX_POLYNOMIAL_DEGREE and power.base.free_symbols:
            raise OutsideDomain(f"power {power} exceeds degree {MAX_POLYNOMIAL_DEGREE}")


def _exact_number(value: Any) -> sympy.Expr:
    """Return a parsed scalar as an exact sympy number; decimals become rationals."""
    if isinstance(value, nodes.Percent):
        value = sympy.Mul(_exact_number(value.value), sympy.Rational(1, 100))
    if not isinstance(value, sympy.Expr) or value.free_symbols or not value.is_number:
        raise OutsideDomain(f"{value} is not a number")
    if value.has(sympy.Float):
        value = value.xreplace({f: sympy.Rational(str(f)) for f in value.atoms(sympy.Float)})
    return value


def parse_domain(text: str) -> Domain:
    """Parse a domain name such as ``natural``, ``[1, 50]`` or ``matrix2_integer``."""
    if not isinstance(text, str):
        raise ValueError(f"a variable domain must be a string such as 'integer', got {text!r}")
    name = text.strip().lower()
    match = _RANGE.match(name)
    if match:
        low, high = int(match.group(1)), int(match.group(2))
        if low > high:
            raise ValueError(f"invalid domain {text!r}: the lower bound {low} exceeds the upper bound {high}")
        return Domain("integer_range", low, high)
    if name in DOMAIN_KINDS and name != "integer_range":
        return Domain(name)
    valid = ", ".join(k for k in DOMAIN_KINDS if k != "integer_range")
    raise ValueError(
        f"unknown domain {text!r}; valid domains: {valid}, or an integer range such as '[1, 50]'"
    )
