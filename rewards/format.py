"""``format``: 1.0 when the completion states a final answer in the requested form, else 0.0."""

from __future__ import annotations

from typing import Any

from rewards.extract import _last_box, _last_cue, completion_text, extract_answer
from rewards.registry import register_reward

__all__ = ["Format"]

_REQUIREMENTS = ("boxed", "cue", "any")


@register_reward("format")
class Format:
    """Checks that a final answer is present where the prompt asks for it.

    ``require``: ``boxed`` (a complete ``\\boxed{}``/``\\fbox{}``, the default), ``cue`` (a box or an
    answer cue such as "The answer is"), or ``any`` (anything ``extract_answer`` finds with its
    fallbacks, e.g. a final number).

    >>> Format()([r"so \\boxed{5}", "The answer is 5.", r"unclosed \\boxed{5"])
    [1.0, 0.0, 0.0]
    >>> Format(require="cue")([r"so \\boxed{5}", "The answer is 5.", "5 apples"])
    [1.0, 1.0, 0.0]
    """

    def __init__(self, require: str = "boxed") -> None:
        if require not in _REQUIREMENTS:
            raise ValueError(f"format reward: require={require!r} is invalid; use one of {_REQUIREMENTS}")
        self.require = require

    def __call__(self, completions: list, **columns: Any) -> list[float | None]:
        return [self._score(completion_text(c)) for c in completions]

    def _score(self, text: str) -> float:
        if self.require == "boxed":
            return float(_last_box(text) is not None)
        if self.require == "cue":
            return float(_last_box(text) is not None or _last_cue(text) is not None)
        return float(extract_answer(text, fallback=True) is not None)
