"""pass@k, majority vote and breakdowns, against hand-computed values."""

import itertools
import math

import pytest

from mathrl.eval.metrics import ProblemResult, majority_answer, pass_at_k, summarize


@pytest.mark.parametrize("n,c,k", [(5, 2, 1), (5, 2, 3), (8, 0, 4), (8, 8, 2), (10, 3, 10), (6, 1, 2)])
def test_pass_at_k_matches_enumeration(n, c, k):
    # Probability that a random k-subset of n samples (c correct) holds at least one correct one.
    samples = [True] * c + [False] * (n - c)
    subsets = list(itertools.combinations(range(n), k))
    expected = sum(any(samples[i] for i in subset) for subset in subsets) / len(subsets)
    assert math.isclose(pass_at_k(n, c, k), expected)


def test_pass_at_k_rejects_bad_k():
    with pytest.raises(ValueError, match="0 < k <= n"):
        pass_at_k(3, 1, 4)


def test_majority_answer_ignores_missing_and_whitespace():
    assert majority_answer([None, "1/2", "3", "1/2 "]) == 1
    assert majority_answer([None, None]) is None


def _result(correct, answers, **group):
    return ProblemResult("p", "g", ["c"] * len(correct), answers, correct, ["r"] * len(correct), group)


def test_summarize_overall_and_breakdown():
    results = [
        _result([True, False, False, None], ["1", "2", "2", None], level="1"),
        _result([False, False, False, False], ["5", "6", "7", "8"], level="2"),
    ]
    metrics = summarize(results, k=4)
    assert metrics["n"] == 2
    assert metrics["accuracy"] == pytest.approx(1 / 8)
    assert metrics["pass@4"] == pytest.approx(0.5)
    assert metrics["maj@4"] == 0.0  # the majority answer "2" of problem 1 is wrong
    assert metrics["frac_no_answer"] == pytest.approx(1 / 8)
    assert metrics["frac_unscored"] == pytest.approx(1 / 8)
    assert metrics["by"]["level"]["1"]["pass@4"] == 1.0
    assert metrics["by"]["level"]["2"]["accuracy"] == 0.0
