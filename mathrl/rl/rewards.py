"""Reward functions as the trainers call them: loaded from the recipe, guarded, weighted, counted.

A reward that raises or overruns its time limit gives ``None`` for the affected rows (never 0),
logs a warning with the count, and reports ``reward/<name>/frac_none``. TRL turns ``None`` into
NaN, keeps such rows out of the group baseline and gives them zero advantage. A reward object with
a ``reasons`` Counter also gets ``reward/<name>/reason/<reason>``: the share of the call's rows
counted under each reason, with 0 for a reason seen in earlier calls but not in this one.
"""

from __future__ import annotations

import concurrent.futures
import logging
import math
from collections import Counter
from collections.abc import Callable

from rewards import load_reward

from mathrl.config import RewardSpec

__all__ = ["GuardedReward", "build_reward_funcs"]

logger = logging.getLogger(__name__)

# Trainer objects, not row data. ``completion_ids`` (one token list per row) is row data, so rewards receive it.
_TRAINER_KWARGS = ("trainer_state", "log_extra", "log_metric", "environments")


class GuardedReward:
    """Call a reward function with error isolation, a time limit and None accounting.

    When a batch call raises, the rows are scored one by one so a single bad row does not cost the
    whole batch; rows that still raise get ``None``.
    """

    def __init__(self, fn: Callable, name: str, timeout_s: float | None = 60.0):
        self.fn = fn
        self.__name__ = name
        self.timeout_s = timeout_s
        self.calls = 0
        self.rows = 0
        self.rows_none = 0
        self.rows_failed = 0
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None

    def _call(self, completions, kwargs):
        if self.timeout_s is None:
            return self.fn(completions=completions, **kwargs)
        if self._executor is None:
            self._executor = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix=self.__name__)
        future = self._executor.submit(lambda: self.fn(completions=completions, **kwargs))
        try:
            return future.result(timeout=self.timeout_s)
        except concurrent.futures.TimeoutError:
            # The stuck thread cannot be killed; start a fresh executor so later calls are not queued behind it.
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None
            raise TimeoutError(f"reward {self.__name__!r} took longer than {self.timeout_s} s") from None

    def _check(self, values, expected: int) -> list:
        values = list(values)
        if len(values) != expected:
            raise ValueError(f"reward {self.__name__!r} returned {len(values)} values for {expected} completions")
        out = []
        for value in values:
            if value is None or (isinstance(value, float) and math.isnan(value)):
                out.append(None)
            else:
                out.append(float(value))
        return out

    def _reason_counts(self) -> Counter | None:
        counts = getattr(self.fn, "reasons", None)
        return counts if isinstance(counts, Counter) else None

    def __call__(self, completions: list, **kwargs) -> list[float | None]:
        log_metric = kwargs.get("log_metric")
        row_kwargs = {k: v for k, v in kwargs.items() if k not in _TRAINER_KWARGS}
        n = len(completions)
        failed = 0
        counts = self._reason_counts()
        counts_before = Counter(counts) if counts is not None else None
        try:
            values = self._check(self._call(completions, row_kwargs), n)
        except TimeoutError as error:
            logger.warning("reward %r: %s; the %d rows of this call get None", self.__name__, error, n)
            values, failed = [None] * n, n
        except Exception as error:  # noqa: BLE001 - a reward bug must not stop training; it is counted.
            logger.warning("reward %r failed on a batch of %d (%s: %s); scoring rows one by one",
                           self.__name__, n, type(error).__name__, error)
            values = []
            for i in range(n):
                single = {k: [v[i]] if isinstance(v, list) and len(v) == n else v for k, v in row_kwargs.items()}
                try:
                    values.extend(self._check(self._call([completions[i]], single), 1))
                except Exception:  # noqa: BLE001
                    values.append(None)
                    failed += 1
            if failed:
                logger.warning("reward %r: %d of %d rows raised or timed out and got None", self.__name__, failed, n)

        none_count = sum(v is None for v in values)
        self.calls += 1
        self.rows += n
        self.rows_none += none_count
        self.rows_failed += failed
        if log_metric is not None:
            log_metric(f"reward/{self.__name__}/frac_none", none_count / max(n, 1))
            log_metric(f"reward/{self.__name__}/frac_error", failed / max(n, 1))
            if counts is not None:
                for reason in sorted(counts, key=str):
                    share = (counts[reason] - counts_before[reason]) / max(n, 1)
                    log_metric(f"reward/{self.__name__}/reason/{getattr(reason, 'value', reason)}", share)
        return values


def build_reward_funcs(specs: list[RewardSpec]) -> tuple[list[GuardedReward], list[float]]:
    """Load and guard the recipe's rewards; return them with their weights."""
    if not specs:
        raise ValueError("the recipe lists no rewards; add at least one under 'rewards:', e.g. - name: accuracy")
    funcs, weights, seen = [], [], set()
    for spec in specs:
        name = spec.name.rsplit(":", 1)[-1]
        if name in seen:
            raise ValueError(f"reward {name!r} is listed twice; give each reward once with its weight")
        seen.add(name)
        funcs.append(GuardedReward(load_reward(spec.name, spec.options), name, spec.timeout_s))
        weights.append(spec.weight)
    return funcs, weights
