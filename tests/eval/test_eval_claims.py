"""Claim-set scoring: verdict accuracy, macro-F1, per-field scores, explicit examples and
counterexample success, the scorer choice by dataset kind, and the reports."""

import json

import pytest

from mathrl.data import claim_record, load_problems
from mathrl.eval.claims import macro_f1, score_claims
from mathrl.eval.runner import evaluate, write_reports
from mathrl.eval.scorers import SCORERS, scorer_kind
from mathrl.models import load_model, load_tokenizer

PRIME = claim_record(
    "For every natural number $n$, $n^2 + n + 41$ is prime.",
    False,
    field="number theory",
    variables={"n": "natural"},
    predicate="isprime(n^2 + n + 41)",
)
COMMUTE = claim_record(
    "For all $2 \\times 2$ integer matrices $A$ and $B$, $AB = BA$.",
    False,
    field="linear algebra",
    variables={"A": "matrix2_integer", "B": "matrix2_integer"},
    predicate="A*B = B*A",
)
DET = claim_record(
    "For all $2 \\times 2$ integer matrices $A$ and $B$, $\\det(AB) = \\det(A)\\det(B)$.",
    True,
    field="linear algebra",
    variables={"A": "matrix2_integer", "B": "matrix2_integer"},
    predicate="det(A*B) = det(A)*det(B)",
)
RING = claim_record("There exist rings without identity elements.", True, field="algebra")


def test_score_claims_metrics():
    records = [PRIME, COMMUTE, DET, RING]
    completions = [
        [r"The statement is false. Counterexample: n = 40. \boxed{False}", r"Counterexample: n = 39. \boxed{False}"],
        [r"The statement is false. \boxed{False}", r"\boxed{True}"],
        [r"\boxed{True}", "no idea"],
        [r"\boxed{True}", r"For example, the even integers. \boxed{True}"],
    ]
    metrics, results = score_claims(records, completions, samples=2)
    assert metrics["kind"] == "claims"
    assert metrics["samples"] == 8
    # Right verdicts: 2 + 1 + 1 + 2 of 8.
    assert metrics["judgement_accuracy"] == pytest.approx(6 / 8)
    assert metrics["accuracy"] == pytest.approx(6 / 8)
    expected = [False, False, False, False, True, True, True, True]
    predicted = [False, False, False, True, True, None, True, True]
    assert metrics["macro_f1"] == pytest.approx(macro_f1(expected, predicted))
    assert metrics["frac_no_verdict"] == pytest.approx(1 / 8)
    # Explicit examples: "Counterexample: n = 40", "Counterexample: n = 39", "For example, the even ..." has no math.
    assert metrics["frac_explicit_example"] == pytest.approx(2 / 8)
    # Checkable false claims: 4 samples (PRIME x2, COMMUTE x2); only n = 40 checks out.
    assert metrics["counterexample_samples"] == 4
    assert metrics["counterexample_success"] == pytest.approx(1 / 4)
    assert set(metrics["by_field"]) == {"algebra", "linear algebra", "number theory"}
    assert metrics["by_field"]["number theory"]["counterexample_success"] == pytest.approx(1 / 2)
    assert metrics["by_field"]["algebra"]["counterexample_success"] is None
    assert results[0].reasons == ["counterexample", "not_a_counterexample"]
    assert results[2].answers == ["true", None]


def test_macro_f1_punishes_always_true():
    expected = [True] * 88 + [False] * 12
    always_true = [True] * 100
    accuracy = sum(e == p for e, p in zip(expected, always_true)) / 100
    assert accuracy == pytest.approx(0.88)
    assert macro_f1(expected, always_true) == pytest.approx((2 * 88 / (2 * 88 + 12)) / 2)


def test_scorer_kind_by_records():
    assert scorer_kind([PRIME, RING]) == "claims"
    assert scorer_kind(load_problems("aime24", limit=2)) == "math"
    assert scorer_kind([PRIME, {"problem": "1+1", "answer": "2"}]) == "math"
    assert set(SCORERS.names()) >= {"math", "claims"}


def test_evaluate_claims_with_model_writes_reports(tmp_path):
    tokenizer = load_tokenizer("micro-qwen3-moe")
    model = load_model("micro-qwen3-moe")
    records = load_problems("counterexample_claims", split="test", n=6)
    metrics, results = evaluate(model, tokenizer, records, max_new_tokens=6, progress=False)
    assert metrics["kind"] == "claims"
    assert metrics["n"] == 6
    assert "macro_f1" in metrics
    assert "by_field" in metrics
    write_reports(tmp_path, "claims", metrics, results, k=1)
    report = (tmp_path / "report.md").read_text()
    assert "## Claims" in report
    assert "counterexample success on checkable false claims" in report
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["judgement_accuracy"] == metrics["judgement_accuracy"]
    # The math scorer still serves problem sets.
    math_metrics, _ = evaluate(model, tokenizer, load_problems("aime24", limit=2), max_new_tokens=4, progress=False)
    assert "kind" not in math_metrics
    assert "macro_f1" not in math_metrics
