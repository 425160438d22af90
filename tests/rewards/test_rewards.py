from __future__ import annotations

import pickle
import subprocess
import sys

import pytest

from rewards import REWARDS, VerifyOptions, load_reward, verify


def test_registry_has_builtin_rewards():
    assert {"accuracy", "format", "soft_overlong"} <= set(REWARDS.names())


def test_accuracy_scores_and_none():
    reward = load_reward("accuracy", {"timeout": 1.0})
    completions = [
        r"\boxed{\frac{1}{2}}",
        [{"role": "assistant", "content": "The answer is 3."}],
        "I do not know.",
        r"\boxed{4}",
        r"\boxed{4}",
    ]
    answers = ["0.5", "3", "7", r"\frac{1}{", None]
    assert reward(completions, answer=answers, prompts=[""] * 5) == [1.0, 1.0, 0.0, None, None]


def test_accuracy_needs_aligned_answer_column():
    reward = load_reward("accuracy")
    with pytest.raises(ValueError, match="'answer' column"):
        reward(["x"])
    with pytest.raises(ValueError, match="2 completions but 1 answers"):
        reward(["x", "y"], answer=["1"])


def test_accuracy_is_picklable():
    reward = load_reward("accuracy", {"timeout": 0, "percent": "value"})
    clone = pickle.loads(pickle.dumps(reward))
    assert clone.options == VerifyOptions(timeout=0, percent="value")
    assert clone([r"\boxed{25\%}", r"\boxed{0.25}"], answer=["25", "25"]) == [1.0, 0.0]


def test_format_requirements():
    completions = [r"\boxed{5}", "The answer is 5.", "It is 5 apples.", r"\boxed{5"]
    assert load_reward("format")(completions) == [1.0, 0.0, 0.0, 0.0]
    assert load_reward("format", {"require": "cue"})(completions) == [1.0, 1.0, 0.0, 0.0]
    assert load_reward("format", {"require": "any"})(completions) == [1.0, 1.0, 1.0, 1.0]
    with pytest.raises(ValueError, match="require='box'"):
        load_reward("format", {"require": "box"})


def test_soft_overlong_ramp():
    penalty = load_reward("soft_overlong", {"max_length": 100, "cache_length": 20})
    ids = [[0] * n for n in (50, 80, 90, 100, 101)]
    assert penalty(["x"] * 5, completion_ids=ids) == [0.0, 0.0, -0.5, -1.0, -1.0]
    with pytest.raises(ValueError, match="completion_ids"):
        penalty(["x"])
    chars = load_reward("soft_overlong", {"max_length": 10, "cache_length": 5, "unit": "chars"})
    assert chars(["abc", "a" * 8]) == [0.0, -0.6]


def test_verify_rejects_unknown_option():
    with pytest.raises(TypeError, match="unknown verify option"):
        verify("1", "1", tolerance=0.1)


def test_options_validate():
    with pytest.raises(ValueError, match="percent='percent'"):
        VerifyOptions(percent="percent")


def test_rewards_import_no_torch():
    code = "import sys, rewards; rewards.verify('1', '1'); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=".")
    assert out.stdout.strip() == "False"
