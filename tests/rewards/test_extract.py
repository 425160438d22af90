from __future__ import annotations

import pytest

from rewards import extract_answer


@pytest.mark.parametrize(
    "completion,expected",
    [
        (r"so \boxed{\frac{a}{b^{2}}} done", r"\frac{a}{b^{2}}"),
        (r"\boxed{1} then \boxed{2}", "2"),
        (r"\fbox{x^2}", "x^2"),
        (r"our answer is $\boxed 2$.", "2"),
        (r"\boxed{\{1, 2\}}", r"\{1, 2\}"),
        (r"first \boxed{3} and then \boxed{\frac{1}{", "3"),
        ("The answer is 42.", "42"),
        ("The answer is $x = 5$, as shown.", "x = 5"),
        ("Final Answer: 7", "7"),
        ("**Final Answer**\n\n$9$", "9"),
        ("He earns $18.\n#### 18", "18"),
        ("The answer is 4 or 5 or 6.", "4 or 5 or 6"),
        ("The answer is 12.5.", "12.5"),
    ],
)
def test_extract_box_and_cue(completion, expected):
    assert extract_answer(completion) == expected


def test_extract_without_fallback_returns_none():
    assert extract_answer("So the total is 17 apples.") is None


@pytest.mark.parametrize(
    "completion,expected",
    [
        ("So the total is 17 apples.", "17"),
        ("The solutions are $x = -1$ and $x = 2$.", "x = -1, x = 2"),
        ("First $a = 1$. Then we get $b = 2$.", "b = 2"),
        (r"1 - \sqrt{2}", r"1 - \sqrt{2}"),
        ("Hence the count is **73**.", "73"),
        ("odd", "odd"),
    ],
)
def test_extract_fallbacks(completion, expected):
    assert extract_answer(completion, fallback=True) == expected


@pytest.mark.parametrize(
    "completion",
    ["What is $2 + 3$?", r"Compute $\frac{1}{2} + \frac{1}{3}$.", "I cannot solve this.", ""],
)
def test_extract_no_answer_from_questions(completion):
    assert extract_answer(completion, fallback=True) is None


def test_extract_chat_messages_reads_last_assistant():
    messages = [
        {"role": "user", "content": r"Is it \boxed{1}?"},
        {"role": "assistant", "content": r"\boxed{2}"},
        {"role": "user", "content": "sure?"},
        {"role": "assistant", "content": r"yes, \boxed{3}"},
    ]
    assert extract_answer(messages) == "3"
    assert extract_answer([{"role": "user", "content": r"\boxed{1}"}]) is None


def test_extract_rejects_other_types():
    with pytest.raises(TypeError, match="string or a list of chat messages"):
        extract_answer(42)
