from __future__ import annotations

import builtins
import json
from pathlib import Path

import pytest
import sympy

from rewards.verify import VerifyOptions, parse_math, verify
from rewards.verify.errors import ParseError, TooLarge
from rewards.verify.parse import parse_answer

HERE = Path(__file__).parent


@pytest.mark.parametrize(
    "text,expected",
    [
        (r"\frac{1}{2}", sympy.Rational(1, 2)),
        ("1/2", sympy.Rational(1, 2)),
        (r"2\frac{1}{3}", sympy.Rational(7, 3)),
        ("2 1/3", sympy.Rational(7, 3)),
        (r"\sqrt{3}/3", sympy.sqrt(3) / 3),
        ("sqrt(3)/3", sympy.sqrt(3) / 3),
        ("pi/2", sympy.pi / 2),
        ("3+4i", 3 + 4 * sympy.I),
        (r"\sqrt[3]{2}", sympy.root(2, 3)),
        ("1,000", sympy.Integer(1000)),
        (r"11,\!111", sympy.Integer(11111)),
        (r"\binom{10}{3}", sympy.Integer(120)),
        (r"5\text{ cm}", sympy.Integer(5)),
        (r"-\infty", -sympy.oo),
        (r"e^{x}", sympy.exp(sympy.Symbol("x"))),
        (r"\log_2 8", sympy.Integer(3)),
        ("x^2 - 1 = 0", sympy.Eq(sympy.Symbol("x") ** 2 - 1, 0)),
        ("(1, 0)", sympy.Tuple(1, 0)),
        (r"\{1, 2\}", sympy.FiniteSet(1, 2)),
        ("[2, 5)", sympy.Interval.Ropen(2, 5)),
        (r"\begin{pmatrix}1 & 2\\3 & 4\end{pmatrix}", sympy.ImmutableMatrix([[1, 2], [3, 4]])),
        (r"12.5\%", sympy.Rational(1, 8)),
    ],
)
def test_parse_math_builds_sympy(text, expected):
    result = parse_math(text)
    assert result == expected or sympy.simplify(result - expected) == 0


@pytest.mark.parametrize(
    "text",
    [
        r"9^{9^{9^{9}}}",
        "9^9^9^9",
        r"(10^{10})!",
        r"\binom{10^{9}}{3}",
        "2^" * 900 + "2",
        "(" * 100 + "1" + ")" * 100,
        "1e999999999",
        "9" * 5000,
    ],
)
def test_parse_rejects_oversized(text):
    with pytest.raises(TooLarge):
        parse_answer(text, VerifyOptions(max_answer_chars=10_000))


@pytest.mark.parametrize("text", [r"\frac{1}{", "1 +", r"\unknowncommand{3}", ")("])
def test_parse_rejects_malformed(text):
    with pytest.raises(ParseError):
        parse_answer(text)


def test_parse_text_and_choice():
    assert parse_answer(r"\text{odd}").text == "odd"
    assert parse_answer(r"\textbf{(C)}").letter == "C"


def test_verification_never_evaluates_model_text(monkeypatch):
    """Run every labelled case in-process with eval, exec and sympy's string parsers trapped."""
    import sympy.parsing.sympy_parser as sympy_parser

    calls = []
    real_eval, real_exec = builtins.eval, builtins.exec

    def spy(real):
        def wrapper(source, *args, **kwargs):
            calls.append(str(source)[:200])
            return real(source, *args, **kwargs)

        return wrapper

    def refuse(*args, **kwargs):
        raise AssertionError(f"parse_expr called with {args[:1]!r}")

    monkeypatch.setattr(builtins, "eval", spy(real_eval))
    monkeypatch.setattr(builtins, "exec", spy(real_exec))
    monkeypatch.setattr(sympy_parser, "parse_expr", refuse)
    monkeypatch.setattr(sympy, "parse_expr", refuse, raising=False)

    rows = []
    for name in ("cases.jsonl", "own_cases.jsonl"):
        with open(HERE / name, encoding="utf-8") as f:
            rows += [json.loads(line) for line in f]
    for row in rows:
        if len(str(row["prediction"])) < 5000:
            verify(row["gold"], row["prediction"], timeout=0)
    model_texts = [str(r["prediction"]) for r in rows] + [r["gold"] for r in rows]
    leaked = [c for c in calls if any(c and c in t for t in model_texts)]
    assert not leaked
