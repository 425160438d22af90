"""Prompt templates and TRL conversational rows."""

import datasets
import pytest

from mathrl.data import PROMPT_TEMPLATES, format_prompt, load_problems, to_trl_rows

RECORD = {"problem": "What is 6 * 7?", "answer": "42", "source": "arithmetic"}


def test_boxed_default_template():
    messages = format_prompt(RECORD)
    assert messages == format_prompt(RECORD, "boxed")
    assert len(messages) == 1
    assert messages[0]["role"] == "user"
    assert messages[0]["content"].startswith("What is 6 * 7?\n\n")
    assert "\\boxed{" in messages[0]["content"]


def test_boxed_system_template():
    system, user = format_prompt(RECORD, "boxed_system")
    assert system["role"] == "system" and "\\boxed{" in system["content"]
    assert user == {"role": "user", "content": "What is 6 * 7?"}


def test_plain_template():
    (message,) = format_prompt(RECORD, "plain")
    assert message["content"] == "What is 6 * 7?\nGive the final answer in \\boxed{}."


def test_callable_template():
    messages = format_prompt(RECORD, lambda record: [{"role": "user", "content": record["problem"].upper()}])
    assert messages[0]["content"] == "WHAT IS 6 * 7?"


def test_unknown_template_lists_names():
    with pytest.raises(
        ValueError, match="unknown prompt template 'boxd'; valid names: boxed, boxed_system, plain"
    ):
        format_prompt(RECORD, "boxd")


def test_record_without_problem():
    with pytest.raises(ValueError, match="record has no 'problem' key"):
        format_prompt({"question": "q", "answer": "1"})


def test_templates_registered():
    assert {"boxed", "boxed_system", "plain"} <= set(PROMPT_TEMPLATES.names())


def test_trl_rows_keep_columns():
    records = load_problems("math500", limit=3)
    rows = to_trl_rows(records, "plain")
    assert len(rows) == 3
    for record, row in zip(records, rows):
        assert row["prompt"] == format_prompt(record, "plain")
        assert row["answer"] == record["answer"]
        assert row["level"] == record["level"]
        assert "prompt" not in record  # records are not modified


@pytest.mark.parametrize("name", ["gsm8k", "olympiadbench", "arithmetic"])
def test_trl_rows_build_hf_dataset(name):
    rows = to_trl_rows(load_problems(name, limit=50))
    dataset = datasets.Dataset.from_list(rows)
    assert len(dataset) == 50
    assert dataset[0]["prompt"] == rows[0]["prompt"]
    assert dataset[0]["answer"] == rows[0]["answer"]
