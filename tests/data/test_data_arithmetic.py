"""The synthetic arithmetic generator: determinism, exact answers, disjoint splits, levels."""

import ast
import re
from fractions import Fraction

import pytest

from mathrl.data import LEVELS, generate_arithmetic, load_problems
from mathrl.data.arithmetic import split_of

_OPS = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b}


def _exact_value(expression: str) -> Fraction:
    """Evaluate + - * / over integer literals with Fractions by walking the syntax tree (no eval)."""

    def walk(node):
        if isinstance(node, ast.Expression):
            return walk(node.body)
        if isinstance(node, ast.Constant) and isinstance(node.value, int):
            return Fraction(node.value)
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
            return walk(node.left) / walk(node.right)
        if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
            return _OPS[type(node.op)](walk(node.left), walk(node.right))
        raise AssertionError(f"unexpected syntax {ast.dump(node)} in {expression!r}")

    return walk(ast.parse(expression, mode="eval"))


def _expression(problem: str) -> str:
    match = re.fullmatch(r"What is (.+)\?", problem)
    assert match, problem
    return match.group(1)


def _intermediate_values(expression: str) -> list[Fraction]:
    values = []

    def walk(node):
        if isinstance(node, ast.BinOp):
            walk(node.left)
            walk(node.right)
            values.append(_exact_value(ast.unparse(node)))

    walk(ast.parse(expression, mode="eval").body)
    return values


def test_same_seed_same_problems():
    assert generate_arithmetic(n=200, seed=3) == generate_arithmetic(n=200, seed=3)


def test_other_seed_other_problems():
    first = [r["problem"] for r in generate_arithmetic(n=200, seed=3)]
    second = [r["problem"] for r in generate_arithmetic(n=200, seed=4)]
    assert first != second


@pytest.mark.parametrize("split", ["train", "test"])
def test_answers_exact(split):
    records = generate_arithmetic(n=500, levels=[2, 3, 4, 5], seed=1, split=split)
    for record in records:
        expression = _expression(record["problem"])
        value = _exact_value(expression)
        assert value.denominator == 1, record["problem"]
        assert record["answer"] == str(value.numerator)
        # every division in the expression is exact, not only the final result
        for intermediate in _intermediate_values(expression):
            assert intermediate.denominator == 1, record["problem"]


def test_division_appears():
    records = generate_arithmetic(n=400, levels=[2, 3, 4], seed=0)
    assert sum("/" in r["problem"] for r in records) > 20


def test_parentheses_at_higher_levels():
    low = generate_arithmetic(n=200, levels=[1, 2], seed=0)
    high = generate_arithmetic(n=200, levels=[4, 5], seed=0)
    assert not any("(" in r["problem"] for r in low)
    assert sum("(" in r["problem"] for r in high) > 40


def test_splits_disjoint():
    train = {r["problem"] for r in generate_arithmetic(n=3000, levels=[2, 3], seed=0, split="train")}
    test_seed0 = {r["problem"] for r in generate_arithmetic(n=300, levels=[2, 3], seed=0, split="test")}
    test_seed7 = {r["problem"] for r in generate_arithmetic(n=300, levels=[2, 3], seed=7, split="test")}
    assert len(train) == 3000
    assert len(test_seed0) == 300
    assert not train & test_seed0
    assert not train & test_seed7
    assert all(split_of(problem) == "test" for problem in test_seed0)


@pytest.mark.parametrize("level", sorted(LEVELS))
def test_levels_respected(level):
    spec = LEVELS[level]
    records = generate_arithmetic(n=100, levels=[level], seed=2)
    for record in records:
        expression = _expression(record["problem"])
        operators = re.findall(r" ([-+*/]) ", expression)
        numbers = re.findall(r"\d+", expression)
        assert record["level"] == level
        assert len(operators) == spec.num_ops, record["problem"]
        assert set(operators) <= set(spec.ops)
        assert all(len(number) <= spec.max_digits for number in numbers), record["problem"]
        if spec.non_negative:
            assert int(record["answer"]) >= 0


def test_levels_cycle_in_order():
    records = generate_arithmetic(n=9, levels=[3, 1, 5], seed=0)
    assert [r["level"] for r in records] == [3, 1, 5] * 3


def test_records_in_big_math_layout():
    record = generate_arithmetic(n=1, levels=[3], seed=0)[0]
    assert record["source"] == "arithmetic"
    assert record["domain"] == ["Mathematics -> Arithmetic"]
    assert record["llama8b_solve_rate"] is None
    assert record["id"].startswith("arithmetic-")
    assert record["solution"].endswith(f"The answer is {record['answer']}.")


def test_loader_passes_options_and_seed():
    records = load_problems("arithmetic", split="test", n=30, levels=[2], seed=5)
    assert records == generate_arithmetic(n=30, levels=[2], seed=5, split="test")


def test_level_exhaustion_raises():
    with pytest.raises(ValueError, match="level 1 has no more distinct test problems"):
        generate_arithmetic(n=2000, levels=[1], split="test")


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"levels": [9]}, "invalid arithmetic levels"),
        ({"levels": []}, "invalid arithmetic levels"),
        ({"n": 0}, "invalid arithmetic n=0"),
        ({"split": "validation"}, "invalid arithmetic split 'validation'"),
    ],
)
def test_invalid_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        generate_arithmetic(**kwargs)


def test_ops_option_restricts_operators():
    records = generate_arithmetic(n=50, levels=[1, 2], ops="+", seed=3)
    assert all(" + " in r["problem"] and " - " not in r["problem"] and " * " not in r["problem"] for r in records)
    assert all(int(r["answer"]) == sum(int(x) for x in re.findall(r"\d+", r["problem"])) for r in records)


def test_ops_option_rejects_unavailable_operator():
    with pytest.raises(ValueError, match="invalid arithmetic ops"):
        generate_arithmetic(n=5, levels=[1], ops="*")
