"""The reward guard: errors and time-outs give None for the affected rows and are counted."""

import time

import pytest

from mathrl.config import RewardSpec
from mathrl.rl.rewards import GuardedReward, build_reward_funcs

TEST_REWARDS = "tests/rl/rewards_for_tests.py"


def test_reward_loaded_by_file_path():
    funcs, weights = build_reward_funcs([RewardSpec(f"{TEST_REWARDS}:prefer_short", weight=0.5)])
    assert funcs[0].__name__ == "prefer_short"
    assert weights == [0.5]
    assert funcs[0](completions=["ab", "abcd"]) == [-0.2, -0.4]


def test_raising_reward_gives_none_and_counts():
    funcs, _ = build_reward_funcs([RewardSpec(f"{TEST_REWARDS}:always_raises")])
    logged = {}
    values = funcs[0](completions=["a", "b", "c"], log_metric=lambda k, v: logged.__setitem__(k, v))
    assert values == [None, None, None]
    assert funcs[0].rows_failed == 3
    assert logged["reward/always_raises/frac_none"] == 1.0


def test_failing_rows_are_isolated():
    funcs, _ = build_reward_funcs([RewardSpec(f"{TEST_REWARDS}:fails_on_odd_rows")])
    values = funcs[0](completions=["a", "b", "c", "d"], index=[0, 1, 2, 3])
    assert values == [1.0, None, 1.0, None]
    assert funcs[0].rows_none == 2


def test_timeout_gives_none():
    def slow(completions, **columns):
        time.sleep(2)
        return [1.0] * len(completions)

    guard = GuardedReward(slow, "slow", timeout_s=0.2)
    started = time.perf_counter()
    assert guard(completions=["a", "b"]) == [None, None]
    assert time.perf_counter() - started < 1.5
    assert guard.rows_failed == 2


def test_wrong_length_batch_is_rescored_per_row():
    # A batch answer of the wrong length is rejected; row-by-row calls then return one value each.
    guard = GuardedReward(lambda completions, **kw: [1.0], "short", timeout_s=None)
    assert guard(completions=["a", "b"]) == [1.0, 1.0]
    assert guard.rows_failed == 0


def test_nan_becomes_none():
    guard = GuardedReward(lambda completions, **kw: [float("nan"), 1], "nan", timeout_s=None)
    assert guard(completions=["a", "b"]) == [None, 1.0]


def test_unknown_reward_name():
    with pytest.raises(ValueError, match="unknown reward 'acuracy'; valid names: .*accuracy"):
        build_reward_funcs([RewardSpec("acuracy")])


def test_duplicate_reward_rejected():
    with pytest.raises(ValueError, match="listed twice"):
        build_reward_funcs([RewardSpec(f"{TEST_REWARDS}:prefer_short"), RewardSpec(f"{TEST_REWARDS}:prefer_short")])


def test_no_rewards_rejected():
    with pytest.raises(ValueError, match="lists no rewards"):
        build_reward_funcs([])


def test_completion_ids_reach_the_reward():
    # soft_overlong counts tokens, so the guard must pass TRL's completion_ids through to it.
    funcs, _ = build_reward_funcs([RewardSpec("soft_overlong", options={"max_length": 4, "cache_length": 2})])
    assert funcs[0](completions=["a", "b", "c"], completion_ids=[[1, 2], [1, 2, 3], [1, 2, 3, 4, 5]]) == [0.0, -0.5, -1.0]
    assert funcs[0].rows_none == 0


def test_reason_counts_logged_per_call():
    funcs, _ = build_reward_funcs([RewardSpec("judgement")])
    logged = {}
    log = logged.__setitem__
    funcs[0](completions=[r"\boxed{False}", "The statement is true.", "no idea", r"\boxed{True}"],
             judgement=["false", "false", "true", "true"], log_metric=log)
    assert {k: v for k, v in logged.items() if "/reason/" in k} == {
        "reward/judgement/reason/match": 0.5, "reward/judgement/reason/mismatch": 0.25,
        "reward/judgement/reason/no_verdict": 0.25}
    funcs[0](completions=[r"\boxed{False}"], judgement=["false"], log_metric=log)
    assert logged["reward/judgement/reason/match"] == 1.0
    assert logged["reward/judgement/reason/mismatch"] == 0.0, "a reason seen before must be logged as 0, not skipped"


def test_counterexample_reasons_use_their_names():
    funcs, _ = build_reward_funcs([RewardSpec("counterexample")])
    logged = {}
    funcs[0](completions=[r"Counterexample: n = 40. \boxed{False}", r"n = -3"], variables=['{"n": "natural"}'] * 2,
             predicate=["isprime(n^2 + n + 41)"] * 2, log_metric=logged.__setitem__)
    assert logged["reward/counterexample/reason/counterexample"] == 0.5
    assert logged["reward/counterexample/reason/outside_domain"] == 0.5
