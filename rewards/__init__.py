"""Scoring completions against gold answers. Imports no torch, so it runs in light worker processes."""

# Importing the reward modules registers them.
from rewards import accuracy, format, judgement, length  # noqa: E402, F401, I001
from rewards.counterexample import reward as _counterexample_reward  # noqa: F401
from rewards.counterexample import (
    CounterexampleReason,
    CounterexampleVerdict,
    check_counterexample,
    check_counterexamples,
)
from rewards.extract import extract_answer
from rewards.judgement import extract_judgement
from rewards.registry import REWARDS, load_reward, register_reward
from rewards.verify import Reason, Verdict, VerifyOptions, parse_math, verify, verify_many

__all__ = [
    "REWARDS",
    "CounterexampleReason",
    "CounterexampleVerdict",
    "check_counterexample",
    "check_counterexamples",
    "extract_judgement",
    "Reason",
    "Verdict",
    "VerifyOptions",
    "extract_answer",
    "load_reward",
    "parse_math",
    "register_reward",
    "verify",
    "verify_many",
]
