"""Local files, Big-Math, skipped-row counting and the errors of load_problems."""

import json
import logging
import os
import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from mathrl.data import DATASETS, load_problem_set, load_problems

# Synthetic rows in the column layout of SynthLabsAI/Big-Math-RL-Verified (not real Big-Math data).
BIG_MATH_ROWS = [
    {
        "problem": "What is 2 + 2?",
        "answer": "4",
        "source": "orca_math",
        "domain": ["Mathematics -> Arithmetic"],
        "llama8b_solve_rate": 0.9,
    },
    {
        "problem": "Solve for x: 2x = 6.",
        "answer": "3",
        "source": "cn_k12",
        "domain": ["Mathematics -> Algebra -> Linear Equations"],
        "llama8b_solve_rate": 0.4,
    },
    {
        "problem": "Find the least prime greater than 20.",
        "answer": "23",
        "source": "gsm8k",
        "domain": ["Mathematics -> Number Theory -> Prime Numbers"],
        "llama8b_solve_rate": None,
    },
    {
        "problem": "Compute \\frac{1}{2} + \\frac{1}{3}.",
        "answer": "\\frac{5}{6}",
        "source": "math",
        "domain": ["Mathematics -> Arithmetic -> Fractions", "Mathematics -> Algebra"],
        "llama8b_solve_rate": 0.0625,
    },
]


def _write_jsonl(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def _write_big_math_parquet(path):
    schema = pa.schema(
        [
            ("problem", pa.string()),
            ("answer", pa.string()),
            ("source", pa.string()),
            ("domain", pa.list_(pa.string())),
            ("llama8b_solve_rate", pa.float64()),
        ]
    )
    pq.write_table(pa.Table.from_pylist(BIG_MATH_ROWS, schema=schema), path)
    return path


def test_registry_lists_every_dataset():
    expected = {
        "big_math",
        "gsm8k",
        "math500",
        "aime24",
        "aime25",
        "amc23",
        "minerva_math",
        "olympiadbench",
        "arithmetic",
        "counterexample_claims",
        "countermath",
    }
    assert set(DATASETS.names()) == expected


def test_local_jsonl(tmp_path):
    path = _write_jsonl(tmp_path / "mine.jsonl", [{"problem": "1+1?", "answer": 2, "topic": "sums"}])
    (record,) = load_problems(str(path))
    assert record["problem"] == "1+1?"
    assert record["answer"] == "2"
    assert record["topic"] == "sums"
    assert record["domain"] is None


def test_local_json_list(tmp_path):
    path = tmp_path / "mine.json"
    path.write_text(json.dumps([{"problem": "p1", "answer": "a1"}, {"problem": "p2", "answer": 2.5}]))
    records = load_problems(path)
    assert [r["answer"] for r in records] == ["a1", "2.5"]


def test_local_parquet(tmp_path):
    path = _write_big_math_parquet(tmp_path / "rows.parquet")
    records = load_problems(str(path))
    assert len(records) == 4
    assert records[3]["domain"] == ["Mathematics -> Arithmetic -> Fractions", "Mathematics -> Algebra"]
    assert records[3]["llama8b_solve_rate"] == 0.0625


def test_skipped_rows_counted_and_logged_once(tmp_path, caplog):
    rows = [
        {"problem": "good one", "answer": "1"},
        {"problem": "no answer", "answer": None},
        {"problem": "blank answer", "answer": "   "},
        {"problem": "", "answer": "3"},
        {"problem": "good two", "answer": "2"},
    ]
    path = _write_jsonl(tmp_path / "bad.jsonl", rows)
    with caplog.at_level(logging.WARNING, logger="mathrl.data.record"):
        problem_set = load_problem_set(str(path))
    assert [r["problem"] for r in problem_set.records] == ["good one", "good two"]
    assert problem_set.skipped == {"missing answer": 2, "empty problem": 1}
    assert problem_set.num_skipped == 3
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "skipped 3 of 5 rows" in warnings[0]


def test_big_math_local_parquet(tmp_path):
    path = _write_big_math_parquet(tmp_path / "big_math.parquet")
    records = load_problems("big_math", path=str(path))
    assert [r["source"] for r in records] == ["orca_math", "cn_k12", "gsm8k", "math"]
    assert records[0]["domain"] == ["Mathematics -> Arithmetic"]
    assert records[2]["llama8b_solve_rate"] is None


def test_big_math_local_jsonl(tmp_path):
    path = _write_jsonl(tmp_path / "big_math.jsonl", BIG_MATH_ROWS)
    assert len(load_problems("big_math", path=path)) == 4


def test_big_math_filters(tmp_path, caplog):
    path = _write_big_math_parquet(tmp_path / "big_math.parquet")
    by_source = load_problems("big_math", path=path, sources=["math", "gsm8k"])
    assert [r["source"] for r in by_source] == ["gsm8k", "math"]
    with caplog.at_level(logging.INFO, logger="mathrl.data.sources"):
        by_rate = load_problems("big_math", path=path, min_solve_rate=0.05, max_solve_rate=0.5)
    # the row with a null solve rate is dropped once a bound is set
    assert [r["answer"] for r in by_rate] == ["3", "\\frac{5}{6}"]
    assert any("2 rows filtered out" in r.getMessage() for r in caplog.records)


def test_big_math_hub_offline_error(tmp_path):
    # A fresh process, so the offline switches are read when huggingface_hub and datasets import.
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", HF_HOME=str(tmp_path / "hf"))
    code = (
        "from mathrl.data import load_problems\n"
        "try:\n"
        "    load_problems('big_math')\n"
        "except ConnectionError as err:\n"
        "    print('ERROR', err)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120, cwd=os.getcwd()
    )
    assert result.returncode == 0, result.stderr
    message = result.stdout
    assert message.startswith("ERROR cannot load 'SynthLabsAI/Big-Math-RL-Verified'")
    assert "unreachable" in message
    assert "path='big_math.parquet'" in message


def test_big_math_through_datasets_library(tmp_path):
    # hub_id may be a local folder, which datasets.load_dataset reads with its parquet builder:
    # this runs the same code path as the hub, without a network. A fresh process keeps the
    # datasets cache inside tmp_path.
    (tmp_path / "folder").mkdir()
    _write_big_math_parquet(tmp_path / "folder" / "train.parquet")
    env = dict(os.environ, HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", HF_HOME=str(tmp_path / "hf"))
    code = (
        "import json\n"
        "from mathrl.data import load_problems\n"
        f"records = load_problems('big_math', hub_id={str(tmp_path / 'folder')!r}, min_solve_rate=0.3)\n"
        "print(json.dumps(records))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120, cwd=os.getcwd()
    )
    assert result.returncode == 0, result.stderr
    records = json.loads(result.stdout.strip().splitlines()[-1])
    assert [r["answer"] for r in records] == ["4", "3"]
    assert records[1]["domain"] == ["Mathematics -> Algebra -> Linear Equations"]
    assert records[0]["llama8b_solve_rate"] == 0.9


def test_big_math_missing_problem_column(tmp_path):
    path = _write_jsonl(tmp_path / "renamed.jsonl", [{"question": "q", "answer": "1"}])
    with pytest.raises(ValueError, match="has no 'problem' column .*columns: answer, question"):
        load_problems("big_math", path=path)


def test_limit_and_shuffle():
    ordered = load_problems("amc23", limit=5)
    assert [r["answer"] for r in ordered] == ["27", "36", "45", "3159", "36"]
    shuffled = load_problems("amc23", limit=5, shuffle=True, seed=1)
    assert shuffled == load_problems("amc23", limit=5, shuffle=True, seed=1)
    assert shuffled != ordered
    assert len(shuffled) == 5


def test_hub_id_routes_to_big_math(tmp_path):
    path = _write_big_math_parquet(tmp_path / "big_math.parquet")
    assert load_problems("SynthLabsAI/Big-Math-RL-Verified", path=path) == load_problems(
        "big_math", path=path
    )


@pytest.mark.parametrize(
    "call,error,message",
    [
        (
            lambda tmp: load_problems("gsm9k"),
            ValueError,
            r"unknown dataset 'gsm9k'; valid names: aime24, .*arithmetic",
        ),
        (
            lambda tmp: load_problems(str(tmp / "missing.jsonl")),
            FileNotFoundError,
            r"dataset file not found: .*missing\.jsonl",
        ),
        (
            lambda tmp: load_problems("math500", split="train"),
            ValueError,
            r"invalid split 'train' for dataset 'math500'; valid splits: test",
        ),
        (lambda tmp: load_problems("amc23", limit=0), ValueError, r"invalid limit=0"),
        (
            lambda tmp: load_problems("arithmetic", digits=3),
            ValueError,
            r"unknown options \['digits'\] for dataset 'arithmetic'; valid options: n, levels",
        ),
        (
            lambda tmp: load_problems("amc23", n=3),
            ValueError,
            r"unknown options \['n'\] for dataset 'amc23'; valid options: none",
        ),
    ],
    ids=["unknown-name", "missing-file", "bad-split", "bad-limit", "bad-option", "option-on-fixed-set"],
)
def test_load_errors(tmp_path, call, error, message):
    with pytest.raises(error, match=message):
        call(tmp_path)


def test_empty_file_error(tmp_path):
    path = tmp_path / "empty.jsonl"
    path.write_text("")
    with pytest.raises(ValueError, match=r"dataset '.*empty\.jsonl' \(split None\) has no usable rows"):
        load_problems(str(path))


def test_all_rows_skipped_error(tmp_path):
    path = _write_jsonl(
        tmp_path / "none.jsonl", [{"problem": "p", "answer": None}, {"problem": "q", "answer": ""}]
    )
    with pytest.raises(ValueError, match=r"has no usable rows \(2 rows skipped: \{'missing answer': 2\}\)"):
        load_problems(str(path))


def test_unsupported_suffix_error(tmp_path):
    path = tmp_path / "rows.csv"
    path.write_text("problem,answer\n1+1,2\n")
    with pytest.raises(
        ValueError, match=r"unsupported dataset file type '\.csv'.*use one of \.jsonl, \.json, \.parquet"
    ):
        load_problems(str(path))


def test_invalid_jsonl_line_error(tmp_path):
    path = tmp_path / "broken.jsonl"
    path.write_text('{"problem": "p", "answer": "1"}\n{"problem": \n')
    with pytest.raises(ValueError, match=r"invalid JSON on line 2 of .*broken\.jsonl"):
        load_problems(str(path))


def test_options_rejected_for_local_file(tmp_path):
    path = _write_jsonl(tmp_path / "rows.jsonl", [{"problem": "p", "answer": "1"}])
    with pytest.raises(ValueError, match=r"options \['n'\] are not supported for a local file"):
        load_problems(str(path), n=3)
