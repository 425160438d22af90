"""Verdict extraction from completions on true/false claims."""

import pytest

from rewards import extract_judgement
from rewards.judgement import parse_judgement

PHRASINGS = [
    (r"\boxed{False}", False),
    (r"\boxed{false}", False),
    (r"\boxed{\text{False}}", False),
    (r"\boxed{\textbf{True}}", True),
    (r"so the answer is \boxed{True}.", True),
    (r"\boxed{False, n = 40}", False),
    (r"\boxed{n = 40; \text{false}}", False),
    (r"Take n = 40. \boxed{n = 40} \boxed{False}", False),
    (r"\boxed{n = 40}", None),
    ("The statement is false.", False),
    ("The statement is FALSE: n = 40 gives 41^2.", False),
    ("Hence the claim is not true.", False),
    ("This is not necessarily true, since n = 40 fails.", False),
    ("The statement is not false.", True),
    ("The proposition is correct.", True),
    ("The assertion is incorrect.", False),
    ("So the statement does not hold for n = 40.", False),
    ("The statement doesn't hold.", False),
    ("The claim holds for every n.", True),
    ("Final answer: False", False),
    ("Answer: **True**", True),
    ("Judgement: false", False),
    ("False.", False),
    ("true", True),
    ("It is true that 39 works, but the statement is false.", False),
    ("It is false that every n works; the statement is true for n < 40 only... Final answer: False", False),
    ("I am not sure.", None),
    ("n^2 + n + 41 is prime for n = 1.", None),
    ([{"role": "assistant", "content": r"\boxed{True}"}], True),
]


@pytest.mark.parametrize("completion, expected", PHRASINGS)
def test_verdict_phrasings(completion, expected):
    assert extract_judgement(completion) is expected


def test_gold_judgement_forms():
    assert parse_judgement("True") is True
    assert parse_judgement(" false ") is False
    assert parse_judgement(False) is False
    assert parse_judgement("") is None
    with pytest.raises(ValueError, match="invalid judgement 'maybe'"):
        parse_judgement("maybe")


def test_long_completion_is_fast():
    import time

    text = "the statement is true " * 100_000 + r"\boxed{False}"
    started = time.perf_counter()
    assert extract_judgement(text) is False
    assert time.perf_counter() - started < 1.0
