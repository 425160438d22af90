"""Per-problem pass rates: estimated offline by sampling k answers with a model, or tracked online from
the groups GRPO already generates, with a sampler that skips problems the policy always or never solves.

A problem whose pass rate is 0 or 1 gives every completion in its group the same reward, so its
group-normalised advantage is zero and it costs generation time without any gradient.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sized
from typing import Any, Iterator

import torch
from torch.utils.data import Sampler

__all__ = [
    "PassRateTracker",
    "SkipSolvedSampler",
    "TrackingReward",
    "estimate_pass_rates",
    "informative_records",
]

logger = logging.getLogger(__name__)


def estimate_pass_rates(
    model,
    tokenizer,
    records: list[dict],
    reward_fn: Callable,
    k: int = 8,
    template: str = "boxed",
    temperature: float = 1.0,
    top_p: float = 1.0,
    max_new_tokens: int = 512,
    batch_size: int = 64,
    progress: bool = True,
) -> list[dict]:
    """Sample ``k`` completions per problem and score them with ``reward_fn`` (the training reward contract).

    Returns copies of the records with ``pass_rate`` (solved / scored, None when nothing could be
    scored), ``pass_rate_k`` (samples drawn) and ``pass_rate_scored`` (samples the reward scored).
    A sample counts as solved when its reward is at least 1.0.
    """
    from mathrl.data.prompts import format_prompt
    from mathrl.eval.sampling import generate_completions

    if k < 1:
        raise ValueError(f"k={k} must be >= 1 samples per problem")
    prompts = [format_prompt(record, template) for record in records]
    completions = generate_completions(
        model,
        tokenizer,
        prompts,
        samples=k,
        temperature=temperature,
        top_p=top_p,
        max_new_tokens=max_new_tokens,
        batch_size=batch_size,
        progress=progress,
        description="pass rate",
    )
    out = []
    for record, samples in zip(records, completions):
        scores = reward_fn(
            completions=samples,
            answer=[record.get("answer")] * len(samples),
            problem=[record.get("problem")] * len(samples),
        )
        scored = [score for score in scores if score is not None and not math.isnan(score)]
        row = dict(record)
        row["pass_rate"] = sum(score >= 1.0 for score in scored) / len(scored) if scored else None
        row["pass_rate_k"] = len(samples)
        row["pass_rate_scored"] = len(scored)
        out.append(row)
    return out


class PassRateTracker:
    """Count scored and solved completions per problem id, as groups arrive during training.

    ``is_informative(id)`` is False once a problem has ``min_observations`` scored completions and
    all of them were solved or none was. The counts are plain dicts, so ``state_dict`` can go into a
    checkpoint and ``load_state_dict`` restores them on resume.
    """

    def __init__(self, min_observations: int = 8):
        if min_observations < 1:
            raise ValueError(f"min_observations={min_observations} must be >= 1")
        self.min_observations = min_observations
        self.scored: dict[str, int] = {}
        self.solved: dict[str, int] = {}

    def update(self, problem_id: Any, solved: list[bool | None]) -> None:
        """Record one problem's completions: True solved, False not solved, None not scored (ignored)."""
        key = str(problem_id)
        values = [value for value in solved if value is not None]
        self.scored[key] = self.scored.get(key, 0) + len(values)
        self.solved[key] = self.solved.get(key, 0) + sum(bool(value) for value in values)

    def update_many(self, problem_ids: list[Any], solved: list[bool | None]) -> None:
        """Record completions given as aligned lists (one id per completion), e.g. a gathered batch."""
        if len(problem_ids) != len(solved):
            raise ValueError(f"update_many got {len(problem_ids)} ids for {len(solved)} completions")
        grouped: dict[str, list[bool | None]] = {}
        for problem_id, value in zip(problem_ids, solved):
            grouped.setdefault(str(problem_id), []).append(value)
        for problem_id, values in grouped.items():
            self.update(problem_id, values)

    def pass_rate(self, problem_id: Any) -> float | None:
        key = str(problem_id)
        scored = self.scored.get(key, 0)
        return self.solved[key] / scored if scored else None

    def is_informative(self, problem_id: Any) -> bool:
        key = str(problem_id)
        if self.scored.get(key, 0) < self.min_observations:
            return True
        return 0 < self.solved[key] < self.scored[key]

    def metrics(self) -> dict[str, float]:
        """Return ``curriculum/*`` metrics: problems tracked and the shares excluded as solved or unsolved."""
        decided = [key for key, count in self.scored.items() if count >= self.min_observations]
        always = sum(self.solved[key] == self.scored[key] for key in decided)
        never = sum(self.solved[key] == 0 for key in decided)
        tracked = max(len(self.scored), 1)
        return {
            "curriculum/problems_tracked": float(len(self.scored)),
            "curriculum/frac_always_solved": always / tracked,
            "curriculum/frac_never_solved": never / tracked,
        }

    def state_dict(self) -> dict:
        return {
            "min_observations": self.min_observations,
            "scored": dict(self.scored),
            "solved": dict(self.solved),
        }

    def load_state_dict(self, state: dict) -> None:
        self.min_observations = int(state["min_observations"])
        self.scored = {str(key): int(value) for key, value in state["scored"].items()}
        self.solved = {str(key): int(value) for key, value in state["solved"].items()}


class TrackingReward:
    """Wrap a reward function so that each call also updates a PassRateTracker, keyed by the ``id`` column.

    The wrapped reward's values are returned unchanged. A value at or above ``success_threshold``
    counts as solved, None (not scored) is ignored.
    """

    def __init__(
        self,
        reward_fn: Callable,
        tracker: PassRateTracker,
        id_column: str = "id",
        success_threshold: float = 1.0,
    ):
        self.reward_fn = reward_fn
        self.tracker = tracker
        self.id_column = id_column
        self.success_threshold = success_threshold
        self.__name__ = getattr(reward_fn, "__name__", type(reward_fn).__name__)

    def __call__(self, completions: list, **columns: Any) -> list[float | None]:
        values = self.reward_fn(completions=completions, **columns)
        ids = columns.get(self.id_column)
        if ids is None:
            raise ValueError(
                f"pass-rate tracking needs the {self.id_column!r} column in the training rows; give every "
                "training record an id"
            )
        solved = [
            None if value is None or math.isnan(value) else value >= self.success_threshold
            for value in values
        ]
        self.tracker.update_many(list(ids), solved)
        return values


def informative_records(records: list[dict], tracker: PassRateTracker, id_column: str = "id") -> list[dict]:
    """Return the records whose tracked pass rate is not settled at 0 or 1 (a dataset-level filter)."""
    return [record for record in records if tracker.is_informative(record.get(id_column))]


class SkipSolvedSampler(Sampler[int]):
    """Index sampler with the layout of TRL's GRPO ``RepeatSampler`` that skips settled problems.

    Each chunk contains ``batch_size`` distinct prompt indices. The chunk is yielded ``repeat_count``
    times and each index inside it ``mini_repeat_count`` times in a row, so G completions of one
    prompt stay adjacent. Indices are checked against the tracker when their chunk is built, so a
    problem settled during this epoch is skipped from the next chunk on. With several processes
    every process must hold the same tracker counts (update it from gathered rewards), or the
    processes draw different prompts.
    """

    def __init__(
        self,
        data_source: Sized,
        ids: list[Any],
        tracker: PassRateTracker,
        mini_repeat_count: int,
        batch_size: int = 1,
        repeat_count: int = 1,
        shuffle: bool = True,
        seed: int | None = None,
    ):
        if len(ids) != len(data_source):
            raise ValueError(f"SkipSolvedSampler got {len(ids)} ids for {len(data_source)} rows")
        self.data_source = data_source
        self.ids = [str(problem_id) for problem_id in ids]
        self.tracker = tracker
        self.mini_repeat_count = mini_repeat_count
        self.batch_size = batch_size
        self.repeat_count = repeat_count
        self.shuffle = shuffle
        self.generator = torch.Generator()
        if seed is not None:
            self.generator.manual_seed(seed)
        self.skipped = 0

    def __iter__(self) -> Iterator[int]:
        n = len(self.data_source)
        order = torch.randperm(n, generator=self.generator).tolist() if self.shuffle else list(range(n))
        position = 0
        while True:
            chunk: list[int] = []
            while len(chunk) < self.batch_size and position < n:
                index = order[position]
                position += 1
                if self.tracker.is_informative(self.ids[index]):
                    chunk.append(index)
                else:
                    self.skipped += 1
            if len(chunk) < self.batch_size:
                return  # an incomplete last chunk is dropped, as RepeatSampler does
            for _ in range(self.repeat_count):
                for index in chunk:
                    for _ in range(self.mini_repeat_count):
                        yield index

    def __len__(self) -> int:
        # An upper bound: skipped problems make an epoch shorter.
        n = len(self.data_source)
        return (n // self.batch_size) * self.batch_size * self.mini_repeat_count * self.repeat_count
