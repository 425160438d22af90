"""Claim generator and CounterMATH loader: record format, disjoint splits, labels that check out."""

import itertools
import json
import random
from collections import Counter

import pytest
import sympy
from datasets import Dataset

from mathrl.data import RECORD_FIELDS, generate_claims, load_problem_set, load_problems, to_trl_rows
from mathrl.data.claim_families import FAMILIES
from mathrl.data.claims import CLAIM_FIELDS, INSTRUCTION
from rewards import CounterexampleReason, check_counterexample
from rewards.counterexample import evaluate_predicate, load_claim
from rewards.counterexample.evaluate import Undefined


@pytest.fixture(scope="module")
def claims():
    return generate_claims(n=1500, seed=3)


def test_claim_records_have_problem_and_claim_fields(claims):
    for record in claims:
        assert set(RECORD_FIELDS) <= set(record)
        assert set(CLAIM_FIELDS) <= set(record)
        assert record["problem"] == f"{record['statement']}\n{INSTRUCTION}"
        assert record["answer"] == record["judgement"].capitalize()
        assert record["judgement"] in ("true", "false")
        assert record["level"] == FAMILIES[record["family"]].level
        assert isinstance(record["variables"], str)
        assert json.loads(record["variables"])
        assert (record["counterexample"] is None) == (record["judgement"] == "true")
        assert record["solution"].endswith(f"\\boxed{{{record['answer']}}}")


def test_every_family_and_judgement_appears(claims):
    seen = Counter((r["family"], r["judgement"]) for r in claims)
    for name in FAMILIES:
        assert seen[(name, "false")] > 0, name
        if name != "polynomial_primality":
            assert seen[(name, "true")] > 0, name
    true_share = sum(r["judgement"] == "true" for r in claims) / len(claims)
    assert 0.4 < true_share < 0.6


def test_generator_is_deterministic_and_splits_disjoint():
    first = generate_claims(n=300, seed=1)
    again = generate_claims(n=300, seed=1)
    other_seed = generate_claims(n=300, seed=2)
    test = generate_claims(n=300, seed=1, split="test")
    assert first == again
    assert [r["id"] for r in first] != [r["id"] for r in other_seed]
    assert len({r["statement"] for r in first}) == 300
    assert not {r["statement"] for r in first} & {r["statement"] for r in test}
    assert not {r["statement"] for r in other_seed} & {r["statement"] for r in test}


def test_levels_filter_and_options():
    records = generate_claims(n=200, levels=[3])
    assert {r["level"] for r in records} == {3}
    only = generate_claims(n=20, families=["matrix_algebra"], true_fraction=0.0)
    assert {r["family"] for r in only} == {"matrix_algebra"}
    assert {r["judgement"] for r in only} == {"false"}
    with pytest.raises(ValueError, match="ran out of distinct"):
        generate_claims(n=40, families=["matrix_algebra"], true_fraction=0.0)
    with pytest.raises(ValueError, match="unknown claim families"):
        generate_claims(n=5, families=["nope"])
    with pytest.raises(ValueError, match="invalid counterexample_claims levels"):
        generate_claims(n=5, levels=[4])
    with pytest.raises(ValueError, match="ran out of distinct"):
        generate_claims(n=500, families=["matrix_algebra"])


def test_known_counterexamples_check_out(claims):
    false_claims = [r for r in claims if r["judgement"] == "false"]
    for record in false_claims:
        verdict = check_counterexample(record, record["solution"], timeout=0)
        assert verdict.reason is CounterexampleReason.COUNTEREXAMPLE, (record["statement"], verdict)


def _search_space(domain, rng):
    """Candidate values of a domain for a brute-force search."""
    if domain.kind in ("integer", "natural", "nonnegative_integer"):
        values = [sympy.Integer(n) for n in range(-60, 61)]
    elif domain.kind == "integer_range":
        values = [sympy.Integer(n) for n in range(domain.low, domain.high + 1)]
    elif domain.kind in ("rational", "real", "positive_real"):
        values = [sympy.Rational(p, q) for p in range(-12, 13) for q in range(1, 5)]
        if domain.kind != "rational":
            values += [sympy.sqrt(2), -sympy.sqrt(3), sympy.pi, sympy.Rational(1, 7) - sympy.sqrt(5)]
    elif domain.kind == "polynomial":
        x = sympy.Symbol("x")
        values = [sum(c * x**k for k, c in enumerate(cs)) for cs in itertools.product(range(-2, 3), repeat=4)]
        values = rng.sample(values, 80) + [x**d + s for d in range(1, 9) for s in (-1, 1)]
    else:
        values = [sympy.ImmutableMatrix(2, 2, [rng.randint(-3, 3) for _ in range(4)]) for _ in range(60)]
        values += [sympy.ImmutableMatrix([[0, 1], [0, 0]]), sympy.ImmutableMatrix([[1, 0], [0, 0]])]
    members = []
    for value in values:
        try:
            members.append(domain.coerce(value))
        except ValueError:
            continue
    return members


def test_true_claims_survive_brute_force(claims):
    rng = random.Random(0)
    per_family = Counter()
    for record in claims:
        if record["judgement"] != "true" or per_family[record["family"]] >= 4:
            continue
        per_family[record["family"]] += 1
        claim = load_claim(record)
        spaces = {name: _search_space(domain, rng) for name, domain in claim.variables.items()}
        names = list(spaces)
        combos = list(itertools.product(*(spaces[name] for name in names)))
        for combo in rng.sample(combos, min(len(combos), 400)):
            values = dict(zip(names, combo))
            try:
                holds = evaluate_predicate(claim.predicate, values)
            except Undefined:
                continue
            assert holds, (record["statement"], values)
    assert len(per_family) == len(FAMILIES) - 1  # every family but polynomial primality has true claims


def test_claims_load_through_registry_and_hf_dataset():
    problem_set = load_problem_set("counterexample_claims", split="test", n=40, levels=[1, 2])
    assert problem_set.split == "test"
    assert len(problem_set) == 40
    rows = to_trl_rows(problem_set.records, "plain")
    dataset = Dataset.from_list(rows)
    assert dataset[0]["variables"] == rows[0]["variables"]
    assert set(dataset.column_names) >= {"statement", "judgement", "variables", "predicate", "answer"}


COUNTERMATH_ROWS = [
    {"statement": "Every continuous function on $(0, 1)$ is bounded.", "rationale": "Take $f(x) = 1/x$.",
     "field": "real analysis", "judgement": False, "txt": "1.txt"},
    {"statement": "There exist rings without identity elements.", "rationale": "The even integers.",
     "field": "algebra", "judgement": "True"},
    {"statement": "Every compact metric space is separable.", "rationale": "Finite covers by balls.",
     "field": "topology", "judgement": "true"},
    {"statement": "An unlabeled row.", "rationale": "", "field": "algebra", "judgement": None},
]


def test_countermath_loader_on_fixture(tmp_path):
    path = tmp_path / "countermath.jsonl"
    path.write_text("\n".join(json.dumps(row) for row in COUNTERMATH_ROWS) + "\n")
    problem_set = load_problem_set("countermath", path=str(path))
    assert len(problem_set) == 3
    assert problem_set.skipped == Counter({"missing answer": 1})
    first, second, third = problem_set.records
    assert first["judgement"] == "false"
    assert first["answer"] == "False"
    assert first["field"] == "real analysis"
    assert first["id"] == "1.txt"
    assert first["rationale"] == "Take $f(x) = 1/x$."
    assert first["predicate"] is None
    assert first["variables"] is None
    assert second["judgement"] == "true"
    assert third["judgement"] == "true"
    assert first["problem"].startswith("Every continuous function")
    # A local file in the CounterMATH layout loads without the dataset name too.
    assert [r["statement"] for r in load_problems(str(path))] == [r["statement"] for r in problem_set.records]


def test_countermath_errors(tmp_path):
    with pytest.raises(ValueError, match="needs a file"):
        load_problems("countermath")
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"statement": "x", "judgement": "maybe", "field": "algebra"}) + "\n")
    with pytest.raises(ValueError, match="invalid judgement 'maybe'"):
        load_problems("countermath", path=str(bad))
    wrong = tmp_path / "wrong.jsonl"
    wrong.write_text(json.dumps({"question": "x", "label": True}) + "\n")
    with pytest.raises(ValueError, match="no 'statement' column"):
        load_problems("countermath", path=str(wrong))
