"""Offline pass-rate estimation and the online tracker, reward wrapper and sampler for GRPO."""

import json
from pathlib import Path

import pytest
from trl.trainer.utils import RepeatSampler

from mathrl.cli import main
from mathrl.data.passrate import (
    PassRateTracker,
    SkipSolvedSampler,
    TrackingReward,
    estimate_pass_rates,
    informative_records,
)
from mathrl.models import load_model, load_tokenizer

REWARD = f"{Path(__file__).parent / 'scripted_reward.py'}:boxed_exact"


def test_tracker_settles_after_min_observations():
    tracker = PassRateTracker(min_observations=4)
    tracker.update("a", [True, True])
    assert tracker.is_informative("a")  # 2 < 4 observations
    tracker.update("a", [True, None])
    assert tracker.pass_rate("a") == 1.0
    assert tracker.is_informative("a")  # None is not an observation
    tracker.update("a", [True])
    assert not tracker.is_informative("a")
    tracker.update_many(["b", "b", "c", "c", "b", "b"], [False, False, True, False, False, False])
    assert not tracker.is_informative("b")
    assert tracker.is_informative("c")
    assert tracker.pass_rate("c") == 0.5
    metrics = tracker.metrics()
    assert metrics["curriculum/problems_tracked"] == 3
    assert metrics["curriculum/frac_always_solved"] == pytest.approx(1 / 3)
    assert metrics["curriculum/frac_never_solved"] == pytest.approx(1 / 3)


def test_tracker_state_round_trip():
    tracker = PassRateTracker(min_observations=2)
    tracker.update(7, [True, False])
    restored = PassRateTracker()
    restored.load_state_dict(json.loads(json.dumps(tracker.state_dict())))
    assert restored.pass_rate("7") == 0.5
    assert restored.min_observations == 2


def test_tracking_reward_updates_by_id():
    tracker = PassRateTracker(min_observations=2)

    def accuracy(completions, answer, **columns):
        return [1.0 if c == a else 0.0 if c else None for c, a in zip(completions, answer)]

    accuracy.__name__ = "accuracy"
    reward = TrackingReward(accuracy, tracker)
    values = reward(
        ["1", "1", "2", "", "3", "3"],
        answer=["1", "1", "1", "1", "3", "3"],
        id=["p", "p", "q", "q", "r", "r"],
    )
    assert values == [1.0, 1.0, 0.0, None, 1.0, 1.0]
    assert reward.__name__ == "accuracy"
    assert not tracker.is_informative("p")
    assert tracker.is_informative("q")  # one scored completion of two required
    records = [{"id": "p"}, {"id": "q"}, {"id": "r"}, {"id": "s"}]
    assert [r["id"] for r in informative_records(records, tracker)] == ["q", "s"]
    with pytest.raises(ValueError, match="needs the 'id' column"):
        reward(["1"], answer=["1"])


def test_sampler_matches_trl_layout_when_nothing_settled():
    data = list(range(10))
    ours = SkipSolvedSampler(
        data,
        [str(i) for i in data],
        PassRateTracker(),
        mini_repeat_count=3,
        batch_size=4,
        repeat_count=2,
        shuffle=True,
        seed=5,
    )
    theirs = RepeatSampler(data, mini_repeat_count=3, batch_size=4, repeat_count=2, shuffle=True, seed=5)
    assert list(ours) == list(theirs)
    assert len(ours) == len(theirs)


def test_sampler_skips_settled_problems():
    tracker = PassRateTracker(min_observations=1)
    tracker.update("2", [True])
    tracker.update("5", [False])
    data = list(range(8))
    sampler = SkipSolvedSampler(
        data, [str(i) for i in data], tracker, mini_repeat_count=2, batch_size=3, shuffle=False
    )
    assert list(sampler) == [0, 0, 1, 1, 3, 3, 4, 4, 6, 6, 7, 7]
    assert sampler.skipped == 2


def test_sampler_sees_updates_between_chunks():
    tracker = PassRateTracker(min_observations=1)
    data = list(range(6))
    sampler = SkipSolvedSampler(
        data, [str(i) for i in data], tracker, mini_repeat_count=1, batch_size=2, shuffle=False
    )
    iterator = iter(sampler)
    assert [next(iterator), next(iterator)] == [0, 1]
    tracker.update("2", [True])  # settled before the next chunk is built
    assert list(iterator) == [3, 4]  # the last chunk (5 alone) is incomplete and dropped


def test_estimate_pass_rates_with_micro_model():
    tokenizer = load_tokenizer("micro-qwen3-moe")
    model = load_model("micro-qwen3-moe", tokenizer=tokenizer)
    records = [{"problem": "What is 1 + 1?", "answer": "2"}, {"problem": "What is 2 + 2?", "answer": "4"}]
    calls = []

    def scripted(completions, answer, **columns):
        calls.append(len(completions))
        return [1.0, 0.0, None]

    rows = estimate_pass_rates(model, tokenizer, records, scripted, k=3, max_new_tokens=4, progress=False)
    assert calls == [3, 3]
    assert [row["pass_rate"] for row in rows] == [0.5, 0.5]
    assert rows[0]["pass_rate_k"] == 3
    assert rows[0]["pass_rate_scored"] == 2
    assert "pass_rate" not in records[0]


def test_pass_rate_command(tmp_path):
    source = tmp_path / "set.jsonl"
    source.write_text(
        "".join(
            json.dumps({"problem": f"What is {i} + 1?", "answer": str(i + 1), "id": str(i)}) + "\n"
            for i in range(3)
        )
    )
    out = tmp_path / "rates.jsonl"
    code = main(
        [
            "data",
            "pass-rate",
            str(source),
            "--model",
            "micro-qwen3-moe",
            "-k",
            "2",
            "--max-new-tokens",
            "4",
            "--reward",
            REWARD,
            "--output",
            str(out),
            "--no-progress",
        ]
    )
    assert code == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [row["id"] for row in rows] == ["0", "1", "2"]
    # The random micro model never writes a matching \boxed{} answer in 4 tokens.
    assert all(row["pass_rate"] == 0.0 for row in rows)
    assert all(row["pass_rate_scored"] == 2 for row in rows)
    summary = json.loads(out.with_suffix(".summary.json").read_text())
    assert summary["pass_rate_0"] == 3
    assert summary["problems"] == 3


def test_pass_rate_command_with_accuracy_reward(tmp_path):
    import rewards

    if not hasattr(rewards, "verify"):
        pytest.skip("the answer verifier (rewards.verify) is not merged into this tree yet")
    out = tmp_path / "rates.jsonl"
    assert (
        main(
            [
                "data",
                "pass-rate",
                "aime24",
                "--limit",
                "2",
                "--model",
                "micro-qwen3-moe",
                "-k",
                "2",
                "--max-new-tokens",
                "4",
                "--output",
                str(out),
                "--no-progress",
            ]
        )
        == 0
    )
    assert len(out.read_text().splitlines()) == 2
