"""Evaluation on real problems with a real model: files, fields and the command line."""

import json


from mathrl.data import load_problems
from mathrl.eval.runner import evaluate, write_reports
from mathrl.models import load_model, load_tokenizer


def test_evaluate_writes_reports(tmp_path):
    tokenizer = load_tokenizer("micro-qwen3-moe")
    model = load_model("micro-qwen3-moe")
    records = load_problems("math500", limit=4)
    metrics, results = evaluate(model, tokenizer, records, samples=2, temperature=1.0, max_new_tokens=6,
                                progress=False)
    assert metrics["n"] == 4 and metrics["samples"] == 8
    assert set(metrics["by"]) >= {"subject", "level"}
    assert all(len(r.completions) == 2 for r in results)
    write_reports(tmp_path, "math500", metrics, results, k=2)
    saved = json.loads((tmp_path / "metrics.json").read_text())
    assert saved["pass@2"] == metrics["pass@2"]
    assert "| **all** |" in (tmp_path / "report.md").read_text()
    lines = (tmp_path / "samples.jsonl").read_text().splitlines()
    assert len(lines) == 4
    assert set(json.loads(lines[0])) >= {"problem", "gold", "completions", "answers", "correct", "reasons"}
    assert (tmp_path / "accuracy.png").is_file()


def test_eval_command_on_jsonl_file(tmp_path, python, run_command):
    problems = tmp_path / "mine.jsonl"
    problems.write_text("\n".join(json.dumps({"problem": f"What is {a} + 1?", "answer": str(a + 1)})
                                  for a in range(3)) + "\n" + json.dumps({"problem": "no answer here"}) + "\n")
    out = tmp_path / "report"
    result = run_command([python, "-m", "mathrl.cli", "eval", "--model", "micro-qwen3-moe", "--dataset",
                          str(problems), "--max-new-tokens", "4", "--output", str(out), "--no-progress"])
    assert result.returncode == 0, result.stderr[-2000:]
    metrics = json.loads((out / "mine" / "metrics.json").read_text())
    assert metrics["n"] == 3, "the row without an answer is skipped"
    assert "skipped 1" in result.stderr


def test_eval_command_bad_dataset(python, run_command):
    result = run_command([python, "-m", "mathrl.cli", "eval", "--model", "micro-qwen3-moe", "--dataset", "nope"])
    assert result.returncode == 2
    assert "unknown dataset 'nope'" in result.stderr
