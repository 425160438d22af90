"""Table-driven accuracy of the verifier on labelled cases.

``cases.jsonl`` is a copy of the project's shared labelled set; ``own_cases.jsonl`` adds cases for
every answer category the verifier must handle. Each row: gold, prediction (a completion),
expected (True when the completion's final answer equals the gold).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from rewards import verify, verify_many

HERE = Path(__file__).parent
REQUIRED_CATEGORIES = {
    "boxed_extraction",
    "choice_letter",
    "no_answer",
    "fraction_decimal",
    "numeric_precision",
    "percentage",
    "thousands_comma",
    "scientific_notation",
    "mixed_number",
    "sqrt",
    "pi",
    "symbolic",
    "complex",
    "infinity",
    "equation",
    "set_tuple",
    "interval",
    "matrix",
    "multiple_answers",
    "units",
    "text",
    "latex_vs_plain",
    "adversarial",
}


def _load(name: str) -> list[dict]:
    with open(HERE / name, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


SHARED = _load("cases.jsonl")
OWN = _load("own_cases.jsonl")

# Generated rather than stored, to keep the case files small.
HUGE_ADVERSARIAL = [
    ("1", "a" * 1_000_000),
    ("1", "The answer is " + "x" * 1_000_000),
    ("1", "\\boxed{" * 20_000),
    ("1", "\\boxed{" + "9" * 100_000 + "}"),
    ("1", "$" + "(" * 100_000 + "$"),
    ("1", "\\boxed{" + "2^" * 900 + "2}"),
    ("1", "\\boxed{" + "\\sqrt{" * 500 + "2" + "}" * 500 + "}"),
    ("1", "The answer is " + "1+" * 500_000 + "1"),
]


@pytest.fixture(scope="module", autouse=True)
def warm_pool():
    # Start the worker processes before timing anything.
    verify("x + 1", r"\boxed{1 + x}")


def test_shared_cases_at_least_99_percent():
    verdicts = verify_many((c["gold"], c["prediction"]) for c in SHARED)
    misses = [
        f"{c['id']} ({c['category']}): expected {c['expected']}, got {v.correct} "
        f"[{v.reason.value}] answer={v.answer!r:.60}"
        for c, v in zip(SHARED, verdicts)
        if (v.correct is True) != c["expected"]
    ]
    accuracy = 1 - len(misses) / len(SHARED)
    assert accuracy >= 0.99, "misses:\n" + "\n".join(misses)


@pytest.mark.parametrize("case", OWN, ids=[c["id"] + "-" + c["category"] for c in OWN])
def test_own_case(case):
    verdict = verify(case["gold"], case["prediction"])
    assert (verdict.correct is True) == case["expected"], (case["note"], verdict)


def test_own_cases_cover_every_category():
    assert REQUIRED_CATEGORIES <= {c["category"] for c in OWN}


ADVERSARIAL = [
    (c["gold"], c["prediction"], c["expected"]) for c in SHARED + OWN if c["category"] == "adversarial"
] + [(gold, prediction, False) for gold, prediction in HUGE_ADVERSARIAL]


@pytest.mark.parametrize("gold,prediction,expected", ADVERSARIAL, ids=lambda x: f"{str(x)[:24]!r}")
def test_adversarial_returns_within_one_second(gold, prediction, expected):
    start = time.perf_counter()
    verdict = verify(gold, prediction)
    elapsed = time.perf_counter() - start
    assert elapsed < 1.0, f"{elapsed:.2f} s for {prediction[:60]!r}"
    assert (verdict.correct is True) == expected
