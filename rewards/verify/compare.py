"""Equivalence of two parsed answers.

Order of strategies for scalars: structural equality after sympy's automatic simplification; for
numbers without symbols, exact comparison of rationals, else a 60-digit numeric comparison
(relative tolerance ``rel_tol`` when either side has a decimal literal, 1e-40 otherwise); for
expressions with symbols, evaluation at fixed pseudo-random positive points, then ``sympy.simplify``
only when no point could be evaluated. Equations match up to a nonzero constant factor;
inequalities, intervals and unions compare as sets of intervals; unbracketed lists as multisets.
"""

from __future__ import annotations

import random
from typing import Any

import sympy

from rewards.verify import nodes
from rewards.verify.options import VerifyOptions

__all__ = ["answers_equal", "scalars_equal"]

_EXACT_REL_TOL = sympy.Float("1e-40", 60)
_SYMBOLIC_REL_TOL = 1e-20
_POINTS = 4


def answers_equal(gold: Any, pred: Any, options: VerifyOptions) -> bool:
    """Return True when the parsed ``pred`` answer equals the parsed ``gold`` answer."""
    gold, pred = _canon(gold), _canon(pred)

    letters = _letter(gold, options), _letter(pred, options)
    if isinstance(gold, nodes.Choice) or isinstance(pred, nodes.Choice):
        return letters[0] is not None and letters[0] == letters[1]
    if isinstance(gold, nodes.Text) or isinstance(pred, nodes.Text):
        return isinstance(gold, nodes.Text) and isinstance(pred, nodes.Text) and gold.text == pred.text

    if isinstance(gold, nodes.Percent) or isinstance(pred, nodes.Percent):
        return _percent_equal(gold, pred, options)
    if isinstance(gold, nodes.Degrees) or isinstance(pred, nodes.Degrees):
        return _degrees_equal(gold, pred, options)

    if _is_setlike(gold) or _is_setlike(pred):
        allow = options.interval_equals_inequality or (
            isinstance(gold, nodes.Relation) and isinstance(pred, nodes.Relation)
        )
        gold_set, pred_set = _intervals(gold, allow, options), _intervals(pred, allow, options)
        if gold_set is not None and pred_set is not None:
            return _interval_lists_equal(gold_set, pred_set, options)

    if isinstance(gold, nodes.Relation) or isinstance(pred, nodes.Relation):
        return _relation_equal(gold, pred, options)

    if isinstance(gold, dict) or isinstance(pred, dict):
        return _assignment_equal(gold, pred, options)

    if isinstance(gold, nodes.Matrix) or isinstance(pred, nodes.Matrix):
        return _matrix_equal(gold, pred, options)

    if isinstance(gold, (nodes.Seq, nodes.SetOf, nodes.Tup)) or isinstance(
        pred, (nodes.Seq, nodes.SetOf, nodes.Tup)
    ):
        return _collection_equal(gold, pred, options)

    if isinstance(gold, sympy.Basic) and isinstance(pred, sympy.Basic):
        return scalars_equal(gold, pred, options)
    if isinstance(gold, nodes.Ellipsis_) and isinstance(pred, nodes.Ellipsis_):
        return True
    return False


# ----- normalisation


def _canon(node: Any) -> Any:
    if isinstance(node, nodes.Seq):
        items = tuple(_canon(x) for x in node.items)
        if len(items) == 1:
            return items[0]
        named = [x for x in items if _is_assignment(x)]
        if len(named) >= 2 and len(named) == len(items):
            names = [x.terms[0] for x in named]
            if len(set(names)) == len(names):
                return {x.terms[0]: x.terms[1] for x in named}
        return nodes.Seq(tuple(x.terms[1] if _is_assignment(x) else x for x in items), node.joiner)
    if isinstance(node, nodes.Relation) and len(node.terms) > 2 and set(node.ops) == {"="}:
        if isinstance(node.terms[0], sympy.Symbol):
            return nodes.Relation((node.terms[0], node.terms[-1]), ("=",))
    if isinstance(node, nodes.SetOf) and len(node.items) == 1 and isinstance(node.items[0], nodes.Seq):
        return nodes.SetOf(node.items[0].items)
    return node


def _is_assignment(node: Any) -> bool:
    return (
        isinstance(node, nodes.Relation)
        and node.ops == ("=",)
        and isinstance(node.terms[0], sympy.Symbol)
        and isinstance(node.terms[1], sympy.Basic)
        and not node.terms[1].has(node.terms[0])
    )


def _letter(node: Any, options: VerifyOptions) -> str | None:
    if isinstance(node, nodes.Choice):
        return node.letter
    if isinstance(node, sympy.Symbol) and len(node.name) == 1 and node.name in options.choices:
        return node.name
    if isinstance(node, nodes.Text) and len(node.text) == 1 and node.text.upper() in options.choices:
        return node.text.upper()
    return None


# ----- scalars


def scalars_equal(a: sympy.Basic, b: sympy.Basic, options: VerifyOptions) -> bool:
    """Return True when two sympy expressions are equal (see the module docstring for the strategy)."""
    if a == b:
        return True
    if a.has(sympy.nan, sympy.zoo) or b.has(sympy.nan, sympy.zoo):
        return False
    if not isinstance(a, sympy.Expr) or not isinstance(b, sympy.Expr):
        return False
    approx = a.has(sympy.Float) or b.has(sympy.Float)
    if not a.free_symbols and not b.free_symbols:
        return _numbers_equal(a, b, approx, options)
    return _identity(a - b, approx, options)


def _numbers_equal(a: sympy.Expr, b: sympy.Expr, approx: bool, options: VerifyOptions) -> bool:
    if not approx and isinstance(a, sympy.Rational) and isinstance(b, sympy.Rational):
        return False  # distinct exact rationals; equality was checked structurally
    if a.is_infinite or b.is_infinite or a.has(sympy.oo, -sympy.oo) or b.has(sympy.oo, -sympy.oo):
        return False
    va, vb = _evaluate(a), _evaluate(b)
    if va is None or vb is None:
        return _simplifies_to_zero(a - b)
    return _close(va, vb, approx, options)


def _evaluate(expr: sympy.Expr, subs: dict | None = None) -> complex | None:
    """Evaluate to a 60-digit sympy number, or None when the value is not a finite number."""
    if subs:
        expr = expr.xreplace(subs)
    try:
        value = expr.evalf(60)
    except (TypeError, ValueError, ZeroDivisionError, ArithmeticError):
        return None
    if not value.is_number or value.has(sympy.nan, sympy.zoo, sympy.oo, -sympy.oo):
        return None
    re_part, im_part = value.as_real_imag()
    if not (re_part.is_Number and im_part.is_Number):
        return None
    return (sympy.Float(re_part, 60), sympy.Float(im_part, 60))


def _close(va: tuple, vb: tuple, approx: bool, options: VerifyOptions) -> bool:
    diff = sympy.sqrt((va[0] - vb[0]) ** 2 + (va[1] - vb[1]) ** 2)
    scale = max(sympy.sqrt(va[0] ** 2 + va[1] ** 2), sympy.sqrt(vb[0] ** 2 + vb[1] ** 2))
    if diff == 0:
        return True
    if approx:
        if min(abs(va[0]) + abs(va[1]), abs(vb[0]) + abs(vb[1])) == 0:
            return bool(diff <= options.abs_tol)
        return bool(diff <= options.rel_tol * scale)
    return bool(diff <= _EXACT_REL_TOL * scale)


def _points(symbols: list, count: int) -> list[dict]:
    rng = random.Random(20240611)
    return [{s: sympy.Rational(rng.randint(1100, 2900), 1000) for s in symbols} for _ in range(count)]


def _identity(difference: sympy.Expr, approx: bool, options: VerifyOptions) -> bool:
    """Test ``difference == 0`` at pseudo-random points; simplify only when no point evaluates."""
    symbols = sorted(difference.free_symbols, key=lambda s: s.name)
    tested = 0
    for subs in _points(symbols, _POINTS):
        value = _evaluate(difference, subs)
        if value is None:
            continue
        tested += 1
        magnitude = abs(value[0]) + abs(value[1])
        tol = options.rel_tol if approx else _SYMBOLIC_REL_TOL
        if bool(magnitude > tol * _term_scale(difference, subs)):
            return False
    if tested:
        return True
    return _simplifies_to_zero(difference)


def _term_scale(expr: sympy.Expr, subs: dict) -> float:
    """Return the largest magnitude among the terms of ``expr`` at ``subs``, the scale that a
    cancellation error is relative to."""
    scale = 1e-300
    for term in sympy.Add.make_args(expr):
        value = _evaluate(term, subs)
        if value is not None:
            scale = max(scale, float(abs(value[0]) + abs(value[1])))
    return scale


def _simplifies_to_zero(expr: sympy.Expr) -> bool:
    try:
        return sympy.simplify(expr) == 0
    except (TypeError, ValueError, NotImplementedError, ZeroDivisionError, AttributeError):
        return False


# ----- percent and degrees


def _percent_equal(gold: Any, pred: Any, options: VerifyOptions) -> bool:
    if isinstance(gold, nodes.Percent) and isinstance(pred, nodes.Percent):
        return answers_equal(gold.value, pred.value, options)
    marked, bare = (gold, pred) if isinstance(gold, nodes.Percent) else (pred, gold)
    if not isinstance(marked.value, sympy.Basic):
        return False
    if options.percent in ("either", "value") and answers_equal(marked.value, bare, options):
        return True
    if options.percent in ("either", "fraction"):
        return answers_equal(marked.value / 100, bare, options)
    return False


def _degrees_equal(gold: Any, pred: Any, options: VerifyOptions) -> bool:
    if isinstance(gold, nodes.Degrees) and isinstance(pred, nodes.Degrees):
        return answers_equal(gold.value, pred.value, options)
    marked, bare = (gold, pred) if isinstance(gold, nodes.Degrees) else (pred, gold)
    if options.strip_units and answers_equal(marked.value, bare, options):
        return True
    if options.degrees_as_radians and isinstance(marked.value, sympy.Basic):
        return answers_equal(marked.value * sympy.pi / 180, bare, options)
    return False


# ----- relations and sets


def _is_inequality(node: Any) -> bool:
    return isinstance(node, nodes.Relation) and all(op in ("<", "<=", ">", ">=", "!=") for op in node.ops)


def _is_setlike(node: Any) -> bool:
    if isinstance(node, (nodes.Interval, nodes.Union)) or _is_inequality(node):
        return True
    if isinstance(node, nodes.Relation) and node.ops == ("in",):
        return True
    return isinstance(node, nodes.Seq) and all(_is_inequality(x) for x in node.items)


def _numeric_less(a: Any, b: Any) -> bool | None:
    if not (isinstance(a, sympy.Expr) and isinstance(b, sympy.Expr)):
        return None
    if a.free_symbols or b.free_symbols:
        return None
    try:
        result = sympy.Lt(a, b)
    except TypeError:
        return None
    return bool(result) if result in (sympy.true, sympy.false) else None


def _intervals(node: Any, allow_relations: bool, options: VerifyOptions) -> list | None:
    """Read ``node`` as a union of intervals ``[(lo, hi, lo_open, hi_open), ...]``, or None."""
    if isinstance(node, nodes.Interval):
        return (
            [(node.lo, node.hi, node.lo_open, node.hi_open)]
            if _numeric_less(node.lo, node.hi) is not False
            else None
        )
    if isinstance(node, nodes.Tup) and len(node.items) == 2 and (node.opener, node.closer) == ("(", ")"):
        lo, hi = node.items
        return [(lo, hi, True, True)] if _numeric_less(lo, hi) else None
    if isinstance(node, nodes.Union):
        parts = [_intervals(p, allow_relations, options) for p in node.parts]
        return None if any(p is None for p in parts) else [i for p in parts for i in p]
    if isinstance(node, nodes.Seq):
        parts = [_intervals(p, allow_relations, options) for p in node.items]
        if any(p is None for p in parts):
            return None
        if node.joiner == "and":
            return _intersect(parts)
        return [i for p in parts for i in p]
    if isinstance(node, nodes.Relation) and allow_relations:
        if node.ops == ("in",):
            return _intervals(node.terms[1], True, options)
        return _inequality_intervals(node)
    return None


def _intersect(parts: list) -> list | None:
    """Intersect single intervals (``x > 1 and x < 3``); None when endpoints cannot be ordered."""
    if any(len(p) != 1 for p in parts):
        return None
    lo, hi, lo_open, hi_open = parts[0][0]
    for p_lo, p_hi, p_lo_open, p_hi_open in (p[0] for p in parts[1:]):
        later = _numeric_less(lo, p_lo) if lo != p_lo else None
        if lo == p_lo:
            lo_open = lo_open or p_lo_open
        elif later is None:
            return None
        elif later:
            lo, lo_open = p_lo, p_lo_open
        earlier = _numeric_less(p_hi, hi) if hi != p_hi else None
        if hi == p_hi:
            hi_open = hi_open or p_hi_open
        elif earlier is None:
            return None
        elif earlier:
            hi, hi_open = p_hi, p_hi_open
    if _numeric_less(lo, hi) is False:
        return None
    return [(lo, hi, lo_open, hi_open)]


_FLIP = {"<": ">", "<=": ">=", ">": "<", ">=": "<=", "!=": "!="}


def _inequality_intervals(node: nodes.Relation) -> list | None:
    terms, ops = node.terms, node.ops
    if not all(isinstance(t, sympy.Expr) for t in terms):
        return None
    if len(terms) == 2:
        left, right = terms
        op = ops[0]
        if isinstance(right, sympy.Symbol) and not isinstance(left, sympy.Symbol):
            left, right, op = right, left, _FLIP[op]
        if not isinstance(left, sympy.Symbol) or right.has(left):
            return None
        if op == "<":
            return [(-sympy.oo, right, True, True)]
        if op == "<=":
            return [(-sympy.oo, right, True, False)]
        if op == ">":
            return [(right, sympy.oo, True, True)]
        if op == ">=":
            return [(right, sympy.oo, False, True)]
        if op == "!=":
            return [(-sympy.oo, right, True, True), (right, sympy.oo, True, True)]
        return None
    if len(terms) == 3 and isinstance(terms[1], sympy.Symbol):
        lo, var, hi = terms
        if lo.has(var) or hi.has(var):
            return None
        if set(ops) <= {"<", "<="}:
            return [(lo, hi, ops[0] == "<", ops[1] == "<")]
        if set(ops) <= {">", ">="}:
            return [(hi, lo, ops[1] == ">", ops[0] == ">")]
    return None


def _interval_lists_equal(gold: list, pred: list, options: VerifyOptions) -> bool:
    if len(gold) != len(pred):
        return False
    remaining = list(pred)
    for g in gold:
        for k, p in enumerate(remaining):
            if _interval_equal(g, p, options):
                del remaining[k]
                break
        else:
            return False
    return True


def _interval_equal(g: tuple, p: tuple, options: VerifyOptions) -> bool:
    for end, open_index in ((0, 2), (1, 3)):
        if not scalars_equal(g[end], p[end], options):
            return False
        if g[end].is_infinite:
            continue
        if g[open_index] != p[open_index]:
            return False
    return True


def _relation_equal(gold: Any, pred: Any, options: VerifyOptions) -> bool:
    if isinstance(gold, nodes.Relation) and isinstance(pred, nodes.Relation):
        if gold.ops == ("=",) and pred.ops == ("=",):
            if _is_assignment(gold) and _is_assignment(pred):
                if gold.terms[0] == pred.terms[0] or (_is_value(gold) and _is_value(pred)):
                    return answers_equal(gold.terms[1], pred.terms[1], options)
            if _is_value(gold) != _is_value(pred):
                # "x = 3" is answered by a value, not by an equation such as "2x = 6".
                return False
            return _equations_equal(gold, pred, options)
        if gold.ops == pred.ops and len(gold.terms) == len(pred.terms):
            return all(answers_equal(g, p, options) for g, p in zip(gold.terms, pred.terms))
        return False
    relation, other = (gold, pred) if isinstance(gold, nodes.Relation) else (pred, gold)
    for value in _relation_values(relation):
        if answers_equal(value, other, options):
            return True
    return False


def _is_value(node: Any) -> bool:
    """Return True for an assignment of a constant, such as ``x = 3``."""
    if not _is_assignment(node):
        return False
    value = node.terms[1]
    return not (isinstance(value, sympy.Basic) and value.free_symbols)


def _relation_values(relation: nodes.Relation) -> list:
    """Return the values a relation states, for comparison with a bare answer (``x = 3`` gives 3)."""
    if relation.ops == ("in",):
        return [relation.terms[1]]
    if set(relation.ops) != {"="}:
        return []
    first, last = relation.terms[0], relation.terms[-1]
    if len(relation.terms) == 2 and _is_name(last) and not _is_name(first):
        return [first]
    if len(relation.terms) == 2 and not _is_name(first):
        return []
    return [last]


def _is_name(node: Any) -> bool:
    """Return True for a variable, or a tuple of variables as in ``(x, y) = (1, 2)``."""
    if isinstance(node, sympy.Symbol):
        return True
    return isinstance(node, (nodes.Tup, nodes.Seq)) and all(isinstance(x, sympy.Symbol) for x in node.items)


def _equations_equal(gold: nodes.Relation, pred: nodes.Relation, options: VerifyOptions) -> bool:
    """Equal when ``lhs - rhs`` of one is a nonzero constant multiple of the other's."""
    if not all(isinstance(t, sympy.Expr) for t in gold.terms + pred.terms):
        return False
    g = gold.terms[0] - gold.terms[1]
    p = pred.terms[0] - pred.terms[1]
    symbols = sorted(g.free_symbols | p.free_symbols, key=lambda s: s.name)
    if not symbols:
        return scalars_equal(gold.terms[0], pred.terms[0], options) and scalars_equal(
            gold.terms[1], pred.terms[1], options
        )
    ratio = None
    tested = 0
    for subs in _points(symbols, _POINTS):
        vg, vp = _evaluate(g, subs), _evaluate(p, subs)
        if vg is None or vp is None:
            continue
        zero_g = bool(abs(vg[0]) + abs(vg[1]) <= _SYMBOLIC_REL_TOL * _term_scale(g, subs))
        zero_p = bool(abs(vp[0]) + abs(vp[1]) <= _SYMBOLIC_REL_TOL * _term_scale(p, subs))
        if zero_g != zero_p:
            return False
        if zero_g:
            continue
        tested += 1
        value = complex(float(vg[0]), float(vg[1])) / complex(float(vp[0]), float(vp[1]))
        if ratio is None:
            ratio = value
        elif abs(value - ratio) > 1e-9 * max(abs(ratio), 1e-300):
            return False
    if tested:
        return True
    return _simplifies_to_zero(g) and _simplifies_to_zero(p)


def _assignment_equal(gold: Any, pred: Any, options: VerifyOptions) -> bool:
    if isinstance(gold, dict) and isinstance(pred, dict):
        return gold.keys() == pred.keys() and all(answers_equal(gold[k], pred[k], options) for k in gold)
    mapping, other = (gold, pred) if isinstance(gold, dict) else (pred, gold)
    if isinstance(other, (nodes.Tup, nodes.Seq)):
        values = [mapping[k] for k in sorted(mapping, key=lambda s: s.name)]
        return len(values) == len(other.items) and all(
            answers_equal(v, o, options) for v, o in zip(values, other.items)
        )
    return False


# ----- containers


def _matrix_equal(gold: Any, pred: Any, options: VerifyOptions) -> bool:
    def cells(node: Any) -> tuple | None:
        if isinstance(node, nodes.Matrix):
            return node.rows
        if (
            isinstance(node, (nodes.Tup, nodes.Seq))
            and node.items
            and (not isinstance(node, nodes.Tup) or node.opener != ":")
        ):
            return (tuple(node.items),)
        return None

    g, p = cells(gold), cells(pred)
    if g is None or p is None:
        return False
    if not isinstance(gold, nodes.Matrix) or not isinstance(pred, nodes.Matrix):
        # A single row or column compares with a tuple entry by entry.
        g = _flatten_vector(g)
        p = _flatten_vector(p)
        if g is None or p is None:
            return False
    if len(g) != len(p) or any(len(a) != len(b) for a, b in zip(g, p)):
        return False
    return all(answers_equal(x, y, options) for ga, pa in zip(g, p) for x, y in zip(ga, pa))


def _flatten_vector(rows: tuple) -> tuple | None:
    if len(rows) == 1:
        return rows
    if all(len(r) == 1 for r in rows):
        return (tuple(r[0] for r in rows),)
    return None


def _collection_equal(gold: Any, pred: Any, options: VerifyOptions) -> bool:
    kinds = (nodes.Seq, nodes.SetOf, nodes.Tup)
    if not isinstance(gold, kinds) or not isinstance(pred, kinds):
        return False
    g_items, p_items = gold.items, pred.items
    if len(g_items) != len(p_items):
        return False
    ordered = (
        isinstance(gold, nodes.Tup)
        or isinstance(pred, nodes.Tup)
        or any(isinstance(x, nodes.Ellipsis_) for x in g_items + p_items)
    )
    if (
        isinstance(gold, nodes.Tup)
        and isinstance(pred, nodes.Tup)
        and (gold.opener == ":") != (pred.opener == ":")
    ):
        return False
    if isinstance(gold, nodes.SetOf) != isinstance(pred, nodes.SetOf) and (
        isinstance(gold, nodes.Tup) or isinstance(pred, nodes.Tup)
    ):
        return False
    if ordered:
        return all(answers_equal(g, p, options) for g, p in zip(g_items, p_items))
    remaining = list(p_items)
    for g in g_items:
        for k, p in enumerate(remaining):
            if answers_equal(g, p, options):
                del remaining[k]
                break
        else:
            return False
    return True
