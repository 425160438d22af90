"""The shipped evaluation and training sets load with their row counts and mapped fields."""

import json
from fractions import Fraction

import pytest

from mathrl.data import RECORD_FIELDS, load_problem_set, load_problems
from mathrl.data.sources import FILES_DIR

# (name, split, rows in the shipped file)
SHIPPED = [
    ("math500", "test", 400),
    ("gsm8k", "train", 7473),
    ("gsm8k", "test", 1056),
    ("aime24", "test", 30),
    ("aime25", "test", 30),
    ("amc23", "test", 40),
    ("minerva_math", "test", 272),
    ("olympiadbench", "test", 675),
]


def _file_lines(name, split):
    with open(FILES_DIR / name / f"{split}.jsonl", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


@pytest.mark.parametrize("name,split,rows", SHIPPED)
def test_shipped_set_row_count(name, split, rows):
    problem_set = load_problem_set(name, split=split)
    assert len(_file_lines(name, split)) == rows
    assert len(problem_set) == rows
    assert problem_set.num_skipped == 0


@pytest.mark.parametrize("name,split,rows", SHIPPED)
def test_shipped_records_have_all_fields(name, split, rows):
    for record in load_problems(name, split=split):
        assert set(RECORD_FIELDS) <= set(record)
        assert isinstance(record["problem"], str) and record["problem"].strip()
        assert isinstance(record["answer"], str) and record["answer"].strip()
        assert record["source"] == name
        assert isinstance(record["id"], str)


@pytest.mark.parametrize("name,split,rows", SHIPPED)
def test_shipped_ids_unique(name, split, rows):
    ids = [record["id"] for record in load_problems(name, split=split)]
    assert len(set(ids)) == len(ids)


def test_gsm8k_answer_after_hashes():
    records = load_problems("gsm8k", split="train")
    first = records[0]
    assert first["answer"] == "72"
    assert first["solution"].rstrip().endswith("#### 72")
    assert first["problem"].startswith("Natalia sold clips")
    for record in records:
        assert "," not in record["answer"]
        int(record["answer"])  # every GSM8K final answer is an integer


def test_gsm8k_thousands_separator_removed():
    raw = _file_lines("gsm8k", "test")
    records = load_problems("gsm8k", split="test")
    with_commas = [i for i, row in enumerate(raw) if "," in row["answer"].splitlines()[-1]]
    assert with_commas, "test split has answers with thousands separators"
    for index in with_commas:
        expected = raw[index]["answer"].splitlines()[-1].split("####")[1].strip().replace(",", "")
        assert records[index]["answer"] == expected


def test_math500_keeps_subject_and_level():
    records = load_problems("math500")
    assert records[0]["answer"] == "\\left( 3, \\frac{\\pi}{2} \\right)"
    assert records[0]["subject"] == "Precalculus"
    assert records[0]["level"] == 2
    assert records[0]["id"] == "test/precalculus/807.json"
    assert {record["level"] for record in records} == {1, 2, 3, 4, 5}


def test_aime_answers_are_canonical_integers():
    aime24 = load_problems("aime24")
    raw = _file_lines("aime24", "test")
    padded = [i for i, row in enumerate(raw) if row["answer"].startswith("0")]
    assert padded, "AIME 2024 file has zero-padded answers"
    for index in padded:
        assert aime24[index]["answer"] == str(int(raw[index]["answer"]))
    for record in aime24 + load_problems("aime25"):
        assert record["answer"] == str(int(record["answer"]))
        assert 0 <= int(record["answer"]) <= 999


def test_aime25_problem_without_instruction():
    for record in load_problems("aime25"):
        assert "boxed" not in record["problem"]
    assert load_problems("aime25")[0]["answer"] == "70"


def test_amc23_float_answers_rendered_as_integers():
    raw = _file_lines("amc23", "test")
    records = load_problems("amc23")
    assert records[0]["answer"] == "27"
    for row, record in zip(raw, records):
        assert Fraction(record["answer"]) == Fraction(row["answer"])
        assert ".0" not in record["answer"]


def test_minerva_answer_is_last_boxed():
    records = load_problems("minerva_math")
    raw = _file_lines("minerva_math", "test")
    assert records[0]["answer"] == "1.6"
    assert (
        next(r for r in records if "e^{-\\frac{t}{R C}}" in r["answer"])["answer"]
        == "I(0) e^{-\\frac{t}{R C}}"
    )
    for row, record in zip(raw, records):
        after_box = row["solution"][row["solution"].rfind("\\boxed{") :]
        assert record["answer"] in after_box
        unescaped = record["answer"].replace("\\{", "").replace("\\}", "")
        assert unescaped.count("{") == unescaped.count("}")
        assert record["solution"] == row["solution"]
        assert record["subject"] == row["type"]


def test_olympiadbench_answer_without_dollars():
    records = load_problems("olympiadbench")
    raw = _file_lines("olympiadbench", "test")
    assert records[0]["answer"] == "2"
    for row, record in zip(raw, records):
        assert "$" not in record["answer"].replace("\\$", "")
        assert record["final_answer"] == row["final_answer"]
        assert record["is_multiple_answer"] == row["is_multiple_answer"]
    multiple = {row["id"]: row for row in raw if row["final_answer"][0] == "$69$,$84$"}
    assert multiple
    (row_id,) = multiple
    assert next(r for r in records if r["id"] == str(row_id))["answer"] == "69,84"
