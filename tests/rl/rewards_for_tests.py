"""Reward functions that the RL tests load by import path, as a user would from a recipe."""

from collections import Counter


def prefer_short(completions, **columns):
    """Reward shorter completions, so every group of samples has a non-zero reward spread."""
    return [-len(c[-1]["content"] if isinstance(c, list) else c) / 10.0 for c in completions]


def always_raises(completions, **columns):
    raise RuntimeError("reward bug for the test")


def fails_on_odd_rows(completions, index, **columns):
    """Raise when the batch holds an odd index, so only those rows end up unscored."""
    if any(i % 2 for i in index):
        raise ValueError("odd row")
    return [1.0 for _ in completions]


def informative_on_odd_levels(completions, level, **columns):
    """Constant reward on even-level problems (zero-advantage groups), length-based on odd levels."""
    return [float(len(c[-1]["content"] if isinstance(c, list) else c)) if lv % 2 else 1.0
            for c, lv in zip(completions, level)]


def always_infinite(completions, **columns):
    """An infinite reward makes every PPO advantage non-finite."""
    return [float("inf") for _ in completions]


class InfiniteFirstCall:
    """Infinite on the first call of each instance, then the same as prefer_short."""

    def __init__(self):
        self.calls = 0

    def __call__(self, completions, **columns):
        self.calls += 1
        if self.calls == 1:
            return [float("inf") for _ in completions]
        return prefer_short(completions)


class NeedsCompletionIds:
    """A zero reward that raises unless each completion comes with its token ids, as TRL passes them.

    It counts each row under the reason ``has_ids`` in ``reasons``, as the claim and accuracy rewards count theirs.
    """

    def __init__(self):
        self.reasons = Counter()

    def __call__(self, completions, completion_ids, **columns):
        if len(completion_ids) != len(completions):
            raise ValueError(f"{len(completion_ids)} completion_ids lists for {len(completions)} completions")
        if not all(ids and isinstance(ids[0], int) for ids in completion_ids):
            raise ValueError("invalid completion_ids: expected one non-empty token id list per completion")
        self.reasons["has_ids"] += len(completions)
        return [0.0 for _ in completions]


def needs_claim_columns(completions, judgement, variables, predicate, statement, **columns):
    """Score every row 0.0, and raise unless the claim columns reached the reward with one value per completion."""
    if not all(len(column) == len(completions) for column in (judgement, variables, predicate, statement)):
        raise ValueError(f"claim columns do not have one value for each of the {len(completions)} completions")
    if any(value not in ("true", "false") for value in judgement):
        raise ValueError(f"invalid judgement values {sorted(set(judgement))}; expected 'true' or 'false'")
    return [0.0 for _ in completions]
