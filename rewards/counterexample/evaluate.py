"""Evaluate a parsed predicate at concrete values: numbers, 2x2 matrices and integer polynomials.

The tree from ``parse_predicate`` is walked node by node; nothing is evaluated as code. Powers are
checked against the verifier's digit bound before they are computed. Values that make the
predicate undefined (a division by zero, an order comparison of non-real numbers, the determinant
of a number) raise ``Undefined``: such a value is outside the set the claim speaks about.

Functions on numbers: ``isprime``, ``iscomposite``, ``iseven``, ``isodd``, ``issquare`` (a
perfect square), ``isinteger``, ``divides(a, b)`` (a divides b), ``gcd``, ``lcm``, ``mod(a, b)``,
``max``, ``min``, ``abs``, ``floor``, ``ceil`` and ``sqrt``. On matrices: ``det``, ``trace``,
``transpose``, ``inverse``, ``identity(n)`` (the n x n identity), ``iszero`` and ``isidentity``.
On polynomials: ``p(k)`` (evaluation), ``degree``, ``isirreducible`` (over the rationals) and
``nrealroots`` (distinct real roots). Sequences: ``fibonacci(n)`` and ``lucas(n)``.
"""

from __future__ import annotations

import math
from typing import Any

import sympy
from sympy.core.function import AppliedUndef

from rewards.counterexample.predicate import And, Implies, Not, Or
from rewards.verify import nodes
from rewards.verify.errors import TooLarge
from rewards.verify.options import VerifyOptions
from rewards.verify.parse import _power

__all__ = ["Undefined", "evaluate_predicate"]

MAX_SEQUENCE_INDEX = 10_000
MAX_MATRIX_EXPONENT = 256
_ZERO_TOLERANCE = sympy.Float("1e-40", 60)
_NUMERIC_FUNCTIONS = (
    sympy.Abs,
    sympy.floor,
    sympy.ceiling,
    sympy.exp,
    sympy.log,
    sympy.sin,
    sympy.cos,
    sympy.tan,
    sympy.cot,
    sympy.sec,
    sympy.csc,
    sympy.asin,
    sympy.acos,
    sympy.atan,
    sympy.sinh,
    sympy.cosh,
    sympy.tanh,
)


class Undefined(ValueError):
    """The predicate has no truth value at these values."""


class _Evaluator:
    def __init__(self, values: dict[str, Any], options: VerifyOptions):
        self.values = values
        self.options = options

    # ----- logic

    def truth(self, node: Any) -> bool:
        if isinstance(node, Not):
            return not self.truth(node.operand)
        if isinstance(node, And):
            return all(self.truth(part) for part in node.operands)
        if isinstance(node, Or):
            return any(self.truth(part) for part in node.operands)
        if isinstance(node, Implies):
            return not self.truth(node.premise) or self.truth(node.conclusion)
        if isinstance(node, nodes.Relation):
            values = [self.value(term) for term in node.terms]
            return all(_compare(a, op, b) for a, op, b in zip(values, node.ops, values[1:]))
        result = self.value(node)
        if not isinstance(result, bool):
            raise Undefined(f"{node} is not true or false")
        return result

    # ----- values

    def value(self, expr: Any) -> Any:
        if isinstance(expr, sympy.Symbol):
            if expr.name not in self.values:
                raise Undefined(f"no value for {expr.name}")
            return self.values[expr.name]
        if isinstance(expr, sympy.Number) or expr in (sympy.pi, sympy.E, sympy.I):
            return expr
        if isinstance(expr, sympy.Add):
            total = self.value(expr.args[0])
            for arg in expr.args[1:]:
                total = _add(total, self.value(arg))
            return total
        if isinstance(expr, sympy.Mul):
            product = self.value(expr.args[0])
            for arg in expr.args[1:]:
                product = _multiply(product, self.value(arg))
            return product
        if isinstance(expr, sympy.Pow):
            return self._power(self.value(expr.base), self.value(expr.exp))
        if isinstance(expr, AppliedUndef):
            return self._call(type(expr).__name__, [self.value(arg) for arg in expr.args])
        if isinstance(expr, _NUMERIC_FUNCTIONS):
            arguments = [_number(self.value(arg), type(expr).__name__) for arg in expr.args]
            return _finite(expr.func(*arguments))
        raise Undefined(f"cannot evaluate {type(expr).__name__} in a predicate")

    def _power(self, base: Any, exponent: Any) -> Any:
        if isinstance(base, sympy.MatrixBase):
            if not (isinstance(exponent, sympy.Integer) and abs(exponent) <= MAX_MATRIX_EXPONENT):
                raise TooLarge(f"matrix power {exponent} is not an integer up to {MAX_MATRIX_EXPONENT}")
            if exponent < 0 and base.det() == 0:
                raise Undefined("a singular matrix has no inverse")
            return sympy.ImmutableMatrix(base**int(exponent))
        if isinstance(base, sympy.Poly):
            if not (isinstance(exponent, sympy.Integer) and 0 <= exponent <= MAX_MATRIX_EXPONENT):
                raise Undefined(f"polynomial power {exponent} is not a small non-negative integer")
            if base.degree() * int(exponent) > self.options.max_digits:
                raise TooLarge("polynomial power too large")
            return base ** int(exponent)
        base, exponent = _number(base, "^"), _number(exponent, "^")
        if base == 0 and exponent.is_negative:
            raise Undefined("division by zero")
        return _finite(_power(base, exponent, self.options))

    def _call(self, name: str, args: list) -> Any:
        if name in self.values and isinstance(self.values[name], sympy.Poly):
            (point,) = _arity(name, args, 1)
            return self.values[name].eval(_number(point, name))
        handler = getattr(self, f"_fn_{name}", None)
        if handler is None:
            raise Undefined(f"unknown function {name}")
        return handler(*args)

    # ----- integer functions

    def _fn_isprime(self, n: Any) -> bool:
        n = _integer(n, "isprime")
        return bool(sympy.isprime(n))

    def _fn_iscomposite(self, n: Any) -> bool:
        n = _integer(n, "iscomposite")
        return n > 1 and not sympy.isprime(n)

    def _fn_iseven(self, n: Any) -> bool:
        return _integer(n, "iseven") % 2 == 0

    def _fn_isodd(self, n: Any) -> bool:
        return _integer(n, "isodd") % 2 == 1

    def _fn_issquare(self, n: Any) -> bool:
        n = _integer(n, "issquare")
        return n >= 0 and math.isqrt(n) ** 2 == n

    def _fn_isinteger(self, x: Any) -> bool:
        return isinstance(_number(x, "isinteger"), sympy.Integer)

    def _fn_divides(self, a: Any, b: Any) -> bool:
        a, b = _integer(a, "divides"), _integer(b, "divides")
        return b == 0 if a == 0 else b % a == 0

    def _fn_gcd(self, *args: Any) -> Any:
        return sympy.Integer(math.gcd(*(_integer(a, "gcd") for a in args)))

    def _fn_lcm(self, *args: Any) -> Any:
        return sympy.Integer(math.lcm(*(_integer(a, "lcm") for a in args)))

    def _fn_mod(self, a: Any, b: Any) -> Any:
        a, b = _integer(a, "mod"), _integer(b, "mod")
        if b == 0:
            raise Undefined("mod by zero")
        return sympy.Integer(a % b)

    def _fn_max(self, *args: Any) -> Any:
        return sympy.Max(*(_real(a, "max") for a in args))

    def _fn_min(self, *args: Any) -> Any:
        return sympy.Min(*(_real(a, "min") for a in args))

    def _fn_fibonacci(self, n: Any) -> Any:
        return sympy.fibonacci(_index(n, "fibonacci"))

    def _fn_lucas(self, n: Any) -> Any:
        return sympy.lucas(_index(n, "lucas"))

    # ----- matrices

    def _fn_det(self, m: Any) -> Any:
        return _matrix(m, "det").det()

    def _fn_trace(self, m: Any) -> Any:
        return _matrix(m, "trace").trace()

    def _fn_transpose(self, m: Any) -> Any:
        return _matrix(m, "transpose").T

    def _fn_inverse(self, m: Any) -> Any:
        m = _matrix(m, "inverse")
        if m.det() == 0:
            raise Undefined("a singular matrix has no inverse")
        return sympy.ImmutableMatrix(m.inv())

    def _fn_identity(self, size: Any) -> Any:
        size = _integer(size, "identity")
        if not 1 <= size <= 8:
            raise Undefined(f"identity({size}) needs a size from 1 to 8")
        return sympy.ImmutableMatrix(sympy.eye(size))

    def _fn_iszero(self, m: Any) -> bool:
        if isinstance(m, sympy.MatrixBase):
            return all(entry == 0 for entry in m)
        return _number(m, "iszero") == 0

    def _fn_isidentity(self, m: Any) -> bool:
        m = _matrix(m, "isidentity")
        return m == sympy.eye(m.rows)

    # ----- polynomials

    def _fn_degree(self, p: Any) -> Any:
        p = _poly(p, "degree")
        if p.is_zero:
            raise Undefined("the zero polynomial has no degree")
        return sympy.Integer(p.degree())

    def _fn_isirreducible(self, p: Any) -> bool:
        p = _poly(p, "isirreducible")
        if p.degree() < 1:
            return False
        _, factors = p.factor_list()
        return len(factors) == 1 and factors[0][1] == 1

    def _fn_nrealroots(self, p: Any) -> Any:
        p = _poly(p, "nrealroots")
        if p.is_zero:
            raise Undefined("the zero polynomial has infinitely many roots")
        return sympy.Integer(len(set(sympy.real_roots(p.sqf_part()))))


# ----- helpers on values


def _arity(name: str, args: list, count: int) -> list:
    if len(args) != count:
        raise Undefined(f"{name} takes {count} argument(s), got {len(args)}")
    return args


def _number(value: Any, where: str) -> sympy.Expr:
    if isinstance(value, bool) or not isinstance(value, sympy.Expr) or isinstance(value, sympy.MatrixBase):
        raise Undefined(f"{where} needs a number, got {value}")
    return value


def _finite(value: Any) -> Any:
    if isinstance(value, sympy.Expr) and value.has(sympy.zoo, sympy.oo, -sympy.oo, sympy.nan):
        raise Undefined(f"{value} is not a finite number")
    return value


def _integer(value: Any, where: str) -> int:
    value = _number(value, where)
    if not isinstance(value, sympy.Integer):
        if value.is_integer is True:
            value = sympy.Integer(value)
        else:
            raise Undefined(f"{where} needs an integer, got {value}")
    return int(value)


def _index(value: Any, where: str) -> int:
    n = _integer(value, where)
    if not 0 <= n <= MAX_SEQUENCE_INDEX:
        raise TooLarge(f"{where}({n}) is outside 0..{MAX_SEQUENCE_INDEX}")
    return n


def _real(value: Any, where: str) -> sympy.Expr:
    value = _number(value, where)
    if value.is_extended_real is not True:
        raise Undefined(f"{where} needs a real number, got {value}")
    return value


def _matrix(value: Any, where: str) -> sympy.ImmutableMatrix:
    if not isinstance(value, sympy.MatrixBase):
        raise Undefined(f"{where} needs a matrix, got {value}")
    return value


def _poly(value: Any, where: str) -> sympy.Poly:
    if not isinstance(value, sympy.Poly):
        raise Undefined(f"{where} needs a polynomial, got {value}")
    return value


def _add(a: Any, b: Any) -> Any:
    if isinstance(a, sympy.MatrixBase) != isinstance(b, sympy.MatrixBase):
        raise Undefined("cannot add a matrix and a number")
    if isinstance(a, sympy.Poly) or isinstance(b, sympy.Poly):
        return _as_poly(a) + _as_poly(b)
    result = a + b
    return sympy.ImmutableMatrix(result) if isinstance(result, sympy.MatrixBase) else _finite(result)


def _multiply(a: Any, b: Any) -> Any:
    if isinstance(a, sympy.Poly) or isinstance(b, sympy.Poly):
        return _as_poly(a) * _as_poly(b)
    if isinstance(a, sympy.MatrixBase) or isinstance(b, sympy.MatrixBase):
        return sympy.ImmutableMatrix(a * b)
    return _finite(a * b)


def _as_poly(value: Any) -> sympy.Poly:
    if isinstance(value, sympy.Poly):
        return value
    from rewards.counterexample.domains import POLY_VARIABLE

    if isinstance(value, sympy.Integer):
        return sympy.Poly(value, POLY_VARIABLE, domain="ZZ")
    raise Undefined(f"cannot combine a polynomial with {value}")


def _compare(a: Any, op: str, b: Any) -> bool:
    if isinstance(a, (sympy.MatrixBase, sympy.Poly)) or isinstance(b, (sympy.MatrixBase, sympy.Poly)):
        if op not in ("=", "!=") or isinstance(a, bool) or isinstance(b, bool):
            raise Undefined(f"matrices and polynomials can only be compared with = or !=, not {op}")
        equal = _structure_equal(a, b)
        return equal if op == "=" else not equal
    a, b = _number(a, op), _number(b, op)
    difference = sympy.expand(a - b) if not (a.is_Rational and b.is_Rational) else a - b
    if op in ("=", "!="):
        zero = _is_zero(difference)
        return zero if op == "=" else not zero
    if difference.is_extended_real is False:
        raise Undefined(f"cannot order the non-real number {difference}")
    sign = _sign(difference)
    return {"<": sign < 0, "<=": sign <= 0, ">": sign > 0, ">=": sign >= 0}[op]


def _structure_equal(a: Any, b: Any) -> bool:
    if isinstance(a, sympy.MatrixBase) and not isinstance(b, sympy.MatrixBase):
        a, b = b, a
    if isinstance(b, sympy.MatrixBase):
        if isinstance(a, sympy.MatrixBase):
            return a.shape == b.shape and all(_is_zero(x - y) for x, y in zip(a, b))
        if a == 0:  # "A = 0" means the zero matrix
            return all(_is_zero(x) for x in b)
        raise Undefined(f"cannot compare a matrix with {a}")
    return _as_poly(a) == _as_poly(b)


def _is_zero(value: sympy.Expr) -> bool:
    if value.is_Rational:
        return value == 0
    # NOTE: an irrational difference is decided numerically at 60 digits; values within 1e-40 count as equal.
    approx = sympy.N(value, 60)
    return bool(abs(approx) < _ZERO_TOLERANCE)


def _sign(value: sympy.Expr) -> int:
    if value.is_Rational:
        return int(bool(value > 0)) - int(bool(value < 0))
    approx = sympy.N(value, 60)
    if not approx.is_real:
        raise Undefined(f"cannot order {value}")
    if abs(approx) < _ZERO_TOLERANCE:
        return 0
    return 1 if approx > 0 else -1


def evaluate_predicate(predicate: Any, values: dict[str, Any], options: VerifyOptions | None = None) -> bool:
    """Return the truth value of a parsed predicate at ``values`` (variable name -> domain member).

    Raises ``Undefined`` where the predicate has no truth value and ``TooLarge`` where a bound is hit.

    >>> from rewards.counterexample.domains import parse_domain
    >>> from rewards.counterexample.predicate import parse_predicate
    >>> p = parse_predicate("isprime(n^2 + n + 41)", {"n": parse_domain("natural")})
    >>> evaluate_predicate(p, {"n": sympy.Integer(39)}), evaluate_predicate(p, {"n": sympy.Integer(40)})
    (True, False)
    """
    try:
        return _Evaluator(values, options or VerifyOptions()).truth(predicate)
    except ZeroDivisionError:
        raise Undefined("division by zero") from None
