"""Counterexample check: accepted counterexamples, rejections with their reason, answer shapes,
adversarial answers under the time limit, and the claim rewards."""

from __future__ import annotations

import json
import pickle
import time

import pytest

from rewards import CounterexampleReason as R
from rewards import check_counterexample, check_counterexamples, load_reward
from rewards.counterexample import parse_predicate
from rewards.counterexample.domains import parse_domain
from rewards.verify.errors import ParseError

PRIME = {"variables": {"n": "natural"}, "predicate": "isprime(n^2 + n + 41)"}
COMMUTE = {"variables": json.dumps({"A": "matrix2_integer", "B": "matrix2_integer"}), "predicate": "A*B = B*A"}
NILPOTENT = {"variables": {"A": "matrix2_integer"}, "predicate": "not iszero(A^2) or iszero(A)"}
IDEMPOTENT = {"variables": {"A": "matrix2_rational"}, "predicate": "A^2 != A or iszero(A) or isidentity(A)"}
DET_SUM = {"variables": {"A": "matrix2_integer", "B": "matrix2_integer"}, "predicate": "det(A + B) = det(A) + det(B)"}
IRREDUCIBLE = {"variables": {"p": "polynomial"}, "predicate": "degree(p) != 2 or isirreducible(p)"}
REAL_ROOT = {"variables": {"p": "polynomial"}, "predicate": "degree(p) != 2 or nrealroots(p) >= 1"}
SHIFT = {"variables": {"p": "polynomial", "n": "integer"}, "predicate": "divides(2, p(n + 1) - p(n))"}
SQRT = {"variables": {"x": "real"}, "predicate": "sqrt(x^2) = x"}
SQUARE = {"variables": {"x": "real"}, "predicate": "x^2 >= x"}
RATIONAL = {"variables": {"x": "rational"}, "predicate": "x^2 != 2"}
COPRIME = {"variables": {"a": "integer", "b": "integer"}, "predicate": "gcd(a, b) = 1 or a = b"}
EUCLID = {"variables": {"m": "integer", "n": "integer"}, "predicate": "not divides(6, m*n) or divides(6, m) or divides(6, n)"}
RANGE = {"variables": {"n": "[1, 30]"}, "predicate": "not isprime(n) or isprime(2^n - 1)"}
FIBONACCI = {"variables": {"n": "[1, 10]"}, "predicate": "isodd(fibonacci(n))"}
FLOOR = {"variables": {"x": "real"}, "predicate": "floor(2x) = 2 floor(x)"}

ACCEPTED = [
    (PRIME, r"The statement is false. Counterexample: $n = 40$. \boxed{False}"),
    (PRIME, r"\boxed{n = 41}"),
    (PRIME, r"False, since n = 40 gives $41^2$."),
    (PRIME, r"Counterexample: n = 40, because 40^2 + 40 + 41 = 1681 = 41^2. \boxed{False}"),
    (COMMUTE, r"Counterexample: $A = \begin{pmatrix}1&1\\0&1\end{pmatrix}$, $B = \begin{pmatrix}1&0\\1&1\end{pmatrix}$."),
    (COMMUTE, r"Counterexample: A = [[1, 1], [0, 1]], B = [[1, 0], [1, 1]]. \boxed{False}"),
    (COMMUTE, r"\boxed{A = \left(\begin{array}{rr}0 & 1 \\ 0 & 0\end{array}\right), B = \begin{bmatrix}0&0\\1&0\end{bmatrix}}"),
    (NILPOTENT, r"Take $A = \begin{pmatrix} 0 & 1 \\ 0 & 0 \end{pmatrix}$; then $A^2 = 0$ but $A \neq 0$."),
    (IDEMPOTENT, r"Counterexample: A = [[1/2, 1/2], [1/2, 1/2]]."),
    (DET_SUM, r"Take A = B = [[1, 0], [0, 1]]. \boxed{False}"),
    (IRREDUCIBLE, r"Counterexample: $p(x) = x^2 - 1 = (x-1)(x+1)$."),
    (IRREDUCIBLE, r"\boxed{p = 2t^2 - 8}"),
    (REAL_ROOT, r"Counterexample: p(x) = x^2 + 1."),
    (SHIFT, r"Counterexample: p(x) = x, n = 0."),
    (SQRT, r"Counterexample: x = -1"),
    (SQRT, r"Counterexample: $x = -\sqrt{2}$."),
    (SQUARE, r"Counterexample: x = 0.5"),
    (SQUARE, r"Counterexample: $x = \frac{1}{3}$"),
    (COPRIME, r"(a, b) = (2, 4)"),
    (COPRIME, r"Counterexample: a = 6 and b = 9."),
    (EUCLID, r"Counterexample: m = 2, n = 3. \boxed{False}"),
    (RANGE, r"Counterexample: n = 11, since 2047 = 23 \cdot 89."),
    (FIBONACCI, r"Counterexample: n = 3 ($F_3 = 2$)."),
    (FLOOR, r"\boxed{x = 1/2}"),
]


@pytest.mark.parametrize("claim, completion", ACCEPTED)
def test_known_counterexample_accepted(claim, completion):
    verdict = check_counterexample(claim, completion)
    assert verdict.reason is R.COUNTEREXAMPLE, verdict
    assert verdict.correct is True


REJECTED = [
    (PRIME, r"\boxed{n = 39}", R.NOT_A_COUNTEREXAMPLE),
    (PRIME, r"Counterexample: n = 1.", R.NOT_A_COUNTEREXAMPLE),
    (PRIME, r"\boxed{n = 0}", R.OUTSIDE_DOMAIN),
    (PRIME, r"\boxed{n = -40}", R.OUTSIDE_DOMAIN),
    (PRIME, r"\boxed{n = 40.5}", R.OUTSIDE_DOMAIN),
    (PRIME, r"\boxed{m = 40}", R.MISSING_VARIABLE),
    (PRIME, r"\boxed{n = 1, n = 40}", R.UNPARSED_ANSWER),
    (PRIME, "I could not decide.", R.NO_ANSWER),
    (PRIME, r"Counterexample: n = \frac{", R.UNPARSED_ANSWER),
    (COMMUTE, r"Counterexample: A = [[1, 1], [0, 1]]. \boxed{False}", R.MISSING_VARIABLE),
    (COMMUTE, r"Counterexample: A = [[1, 0], [0, 1]], B = [[1, 0], [1, 1]].", R.NOT_A_COUNTEREXAMPLE),
    (COMMUTE, r"Counterexample: A = [[1/2, 1], [0, 1]], B = [[1, 0], [1, 1]].", R.OUTSIDE_DOMAIN),
    (COMMUTE, r"Counterexample: A = [[1, 1, 0], [0, 1, 0]], B = [[1, 0], [1, 1]].", R.OUTSIDE_DOMAIN),
    (NILPOTENT, r"Counterexample: A = [[0, 0], [0, 0]].", R.NOT_A_COUNTEREXAMPLE),
    (NILPOTENT, r"Counterexample: A = 0.", R.OUTSIDE_DOMAIN),
    (IRREDUCIBLE, r"Counterexample: $p(x) = x^2 + 1$.", R.NOT_A_COUNTEREXAMPLE),
    (IRREDUCIBLE, r"Counterexample: $p(x) = x^2 - \frac{1}{4}$.", R.OUTSIDE_DOMAIN),
    (IRREDUCIBLE, r"Counterexample: $p(x) = x^2 - y^2$.", R.OUTSIDE_DOMAIN),
    (IRREDUCIBLE, r"Counterexample: $p(x) = \sqrt{x}$.", R.OUTSIDE_DOMAIN),
    (SHIFT, r"Counterexample: p(x) = x.", R.MISSING_VARIABLE),
    (SQRT, r"Counterexample: x = 2", R.NOT_A_COUNTEREXAMPLE),
    (SQRT, r"Counterexample: x = i", R.OUTSIDE_DOMAIN),
    (SQUARE, r"Counterexample: x = 1", R.NOT_A_COUNTEREXAMPLE),
    (RATIONAL, r"Counterexample: x = \sqrt{2}", R.OUTSIDE_DOMAIN),
    (COPRIME, r"(a, b) = (2, 3)", R.NOT_A_COUNTEREXAMPLE),
    (RANGE, r"Counterexample: n = 31.", R.OUTSIDE_DOMAIN),
    (RANGE, r"Counterexample: n = 13.", R.NOT_A_COUNTEREXAMPLE),
    (FIBONACCI, r"Counterexample: n = 4.", R.NOT_A_COUNTEREXAMPLE),
]


@pytest.mark.parametrize("claim, completion, reason", REJECTED)
def test_wrong_answer_rejected_with_reason(claim, completion, reason):
    verdict = check_counterexample(claim, completion)
    assert verdict.reason is reason, verdict
    assert verdict.correct is False


def test_assignment_reported_as_text():
    verdict = check_counterexample(COMMUTE, r"Counterexample: A = [[1, 1], [0, 1]], B = [[1, 0], [1, 1]].")
    assert verdict.assignment == {"A": "[[1, 1], [0, 1]]", "B": "[[1, 0], [1, 1]]"}
    polynomial = check_counterexample(IRREDUCIBLE, r"Counterexample: $p(x) = x^2 - 1$.")
    assert polynomial.assignment == {"p": "x**2 - 1"}


def test_claim_without_predicate_is_not_scored():
    for claim in ({"statement": "Every group is abelian."}, {"predicate": None}, {"predicate": "  "}):
        verdict = check_counterexample(claim, r"\boxed{n = 3}")
        assert verdict.correct is None
        assert verdict.reason is R.NO_CHECK


@pytest.mark.parametrize(
    "claim, message",
    [
        ({"variables": {"n": "natural"}, "predicate": "isprime(m)"}, "unknown name 'm'"),
        ({"variables": {"n": "natural"}, "predicate": "n + 1"}, "not a condition"),
        ({"variables": {"n": "naturals"}, "predicate": "n > 0"}, "unknown domain 'naturals'"),
        ({"variables": {"n": "[5, 1]"}, "predicate": "n > 0"}, "lower bound 5 exceeds"),
        ({"variables": {"nn": "integer"}, "predicate": "nn > 0"}, "invalid variable name 'nn'"),
        ({"variables": "{not json", "predicate": "n > 0"}, "not valid JSON"),
        ({"variables": {"n": "integer"}, "predicate": "__import__('os').system('true')"}, "invalid claim predicate"),
        ({"variables": {"n": "integer"}, "predicate": "eval(n) > 0"}, "unknown function or word 'eval'"),
    ],
)
def test_invalid_claim_raises(claim, message):
    with pytest.raises(ValueError, match=message):
        check_counterexample(claim, r"\boxed{n = 3}", timeout=0)


def test_predicate_grammar():
    domains = {"n": parse_domain("integer"), "A": parse_domain("matrix2_integer"), "B": parse_domain("matrix2_integer")}
    grouped = parse_predicate("(n > 0 and n < 5) or not (n = 7)", domains)
    arithmetic = parse_predicate("(n + 1)^2 > 3", domains)
    latex = parse_predicate(r"n \geq 0 \land \neg \operatorname{isprime}(n) \implies n \ne 2", domains)
    assert type(grouped).__name__ == "Or"
    assert type(arithmetic).__name__ == "Relation"
    assert type(latex).__name__ == "Implies"
    with pytest.raises(ParseError):
        parse_predicate("n >", domains)
    # Matrix symbols do not commute, so A*B = B*A is not trivially true.
    commute = parse_predicate("A*B = B*A", domains)
    assert commute.terms[0] != commute.terms[1]


# Each of these must come back within 1 s: parse bounds reject most, the worker's time limit the rest.
ADVERSARIAL = [
    r"\boxed{n = 10^{10^{10}}}",
    r"\boxed{n = 9^{9^{9^{9}}}}",
    r"\boxed{n = 10^{19999}}",
    r"\boxed{n = " + "9" * 5000 + "}",
    r"\boxed{n = 4000!}",
    r"\boxed{n = " + "(" * 5000 + "1" + ")" * 5000 + "}",
    r"\boxed{n = " + r"\frac{1}{" * 300 + "2" + "}" * 300 + "}",
    "Counterexample: n = " + "1+" * 200_000 + "1",
    "x" * 1_000_000 + r" \boxed{n = 40}",
    r"\boxed{n = 2^{1000} \cdot 3^{1000}}",
]


@pytest.mark.parametrize("completion", ADVERSARIAL, ids=range(len(ADVERSARIAL)))
def test_adversarial_answer_returns_within_one_second(completion):
    check_counterexample(PRIME, r"\boxed{n = 40}")  # warm the worker pool
    started = time.perf_counter()
    verdict = check_counterexample(PRIME, completion)
    elapsed = time.perf_counter() - started
    assert elapsed < 1.0, (elapsed, verdict)
    assert verdict.correct is not True or verdict.reason is R.COUNTEREXAMPLE


def test_slow_check_times_out_as_none():
    # isprime of a 18,000-digit number: allowed by the raised digit bound, far slower than the limit.
    claim = {"variables": {"n": "natural"}, "predicate": "isprime(2^n + 1) or n < 0"}
    check_counterexample(PRIME, r"\boxed{n = 40}")  # warm the worker pool
    started = time.perf_counter()
    verdict = check_counterexample(claim, r"\boxed{n = 60000}", timeout=0.2, max_digits=10**6)
    assert time.perf_counter() - started < 1.0
    assert verdict.reason is R.TIMEOUT
    assert verdict.correct is None


def test_check_many_keeps_order():
    pairs = [(PRIME, r"\boxed{n = 40}"), ({"statement": "x"}, "y"), (PRIME, "I could not find one."), (COMMUTE, r"\boxed{A = 1}")]
    reasons = [v.reason for v in check_counterexamples(pairs)]
    assert reasons == [R.COUNTEREXAMPLE, R.NO_CHECK, R.NO_ANSWER, R.MISSING_VARIABLE]


def test_in_process_matches_worker():
    for claim, completion in ACCEPTED[:6]:
        assert check_counterexample(claim, completion, timeout=0).reason is R.COUNTEREXAMPLE


COLUMNS = {
    "judgement": ["false", "false", "false", "true", "false"],
    "variables": [json.dumps(PRIME["variables"])] * 3 + [None, None],
    "predicate": [PRIME["predicate"]] * 3 + [None, None],
}
COMPLETIONS = [
    r"The statement is false. Counterexample: n = 40. \boxed{False}",
    r"The statement is false. Counterexample: n = 39. \boxed{False}",
    r"Counterexample: n = 40. \boxed{True}",
    r"\boxed{True}",
    r"The statement is false.",
]


def test_registered_claim_rewards():
    counterexample = load_reward("counterexample")
    judgement = load_reward("judgement")
    combined = load_reward("counterexample_judgement")
    assert counterexample(COMPLETIONS, **COLUMNS) == [1.0, 0.0, 1.0, None, None]
    assert judgement(COMPLETIONS, **COLUMNS) == [1.0, 1.0, 0.0, 1.0, 1.0]
    assert combined(COMPLETIONS, **COLUMNS) == [1.0, 0.5, 0.0, 1.0, 1.0]


def test_combined_reward_weight_and_pickling():
    heavy = load_reward("counterexample_judgement", {"counterexample_weight": 3.0})
    assert heavy(COMPLETIONS[:2], **{k: v[:2] for k, v in COLUMNS.items()}) == [1.0, 0.25]
    clone = pickle.loads(pickle.dumps(heavy))
    assert clone.counterexample_weight == 3.0
    assert heavy.reasons[R.COUNTEREXAMPLE] == 1
    with pytest.raises(ValueError, match="counterexample_weight=-1"):
        load_reward("counterexample_judgement", {"counterexample_weight": -1})


def test_judgement_reward_uses_answer_column():
    judgement = load_reward("judgement")
    assert judgement([r"\boxed{False}", r"\boxed{False}"], answer=["False", None]) == [1.0, None]
    with pytest.raises(ValueError, match="'judgement'"):
        judgement(["x"])
