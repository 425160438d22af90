"""``soft_overlong``: the DAPO length penalty that ramps from 0 to -1 near the generation limit."""

from __future__ import annotations

from typing import Any

from rewards.extract import completion_text
from rewards.registry import register_reward

__all__ = ["SoftOverlong"]


@register_reward("soft_overlong")
class SoftOverlong:
    """Penalty ``0`` up to ``max_length - cache_length``, then falling linearly to ``-1`` at
    ``max_length``, and ``-1`` beyond (DAPO, Yu et al. 2025, "overlong reward shaping").

    Lengths are counted in tokens from the ``completion_ids`` column that TRL's GRPOTrainer passes,
    or in characters with ``unit="chars"``.

    >>> penalty = SoftOverlong(max_length=10, cache_length=4)
    >>> penalty(["a", "b", "c", "d"], completion_ids=[[0] * 6, [0] * 8, [0] * 10, [0] * 11])
    [0.0, -0.5, -1.0, -1.0]
    """

    def __init__(self, max_length: int, cache_length: int, unit: str = "tokens") -> None:
        if max_length < 1 or not 0 < cache_length <= max_length:
            raise ValueError(
                f"soft_overlong needs max_length >= 1 and 0 < cache_length <= max_length, "
                f"got max_length={max_length}, cache_length={cache_length}"
            )
        if unit not in ("tokens", "chars"):
            raise ValueError(f"soft_overlong: unit={unit!r} is invalid; use 'tokens' or 'chars'")
        self.max_length = max_length
        self.cache_length = cache_length
        self.unit = unit

    def __call__(
        self, completions: list, completion_ids: list | None = None, **columns: Any
    ) -> list[float | None]:
        if self.unit == "tokens":
            if completion_ids is None:
                raise ValueError(
                    "soft_overlong with unit='tokens' needs the completion_ids column (TRL passes it); "
                    "use unit='chars' to count characters instead"
                )
            lengths = [len(ids) for ids in completion_ids]
        else:
            lengths = [len(completion_text(c)) for c in completions]
        return [self._penalty(n) for n in lengths]

    def _penalty(self, length: int) -> float:
        free = self.max_length - self.cache_length
        if length <= free:
            return 0.0
        if length <= self.max_length:
            return (free - length) / self.cache_length
        return -1.0
