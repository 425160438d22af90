"""Options of the answer verifier, as one frozen dataclass so they pickle into worker processes."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

__all__ = ["VerifyOptions", "PERCENT_MODES", "resolve_options"]

PERCENT_MODES = ("either", "value", "fraction")


@dataclass(frozen=True)
class VerifyOptions:
    # NOTE: with 1e-9, a decimal with 10 or more correct significant digits matches the exact value
    # (0.3333333333 equals 1/3), while 0.333 or 6.28 for 2*pi do not.
    rel_tol: float = 1e-9
    """Relative tolerance when either side contains a decimal literal (``0.3`` vs ``0.30000000000000004``).
    Exact values (integers, fractions, radicals) are compared exactly."""
    abs_tol: float = 1e-12
    """Absolute tolerance used only when one side is zero."""
    percent: str = "either"
    """How ``12.5\\%`` matches a bare number: ``either`` (12.5 or 0.125), ``value`` (12.5 only) or
    ``fraction`` (0.125 only)."""
    strip_units: bool = True
    """Drop unit words after a number (``5 \\text{ cm}``, ``12 ft``) and degree marks (``30^\\circ``)."""
    degrees_as_radians: bool = True
    """Also accept ``30^\\circ`` for ``\\pi/6`` (and the reverse)."""
    interval_equals_inequality: bool = True
    """Treat ``(0, 12.5)`` and ``0 < x < 12.5`` (or ``x \\in (0, 12.5)``) as the same answer."""
    choices: str = "ABCDE"
    """Letters read as multiple-choice answers in ``(C)``, ``\\text{(C)}`` or a bare ``C``."""
    fallback: bool = True
    """Without a ``\\boxed{}`` or an answer cue, look for a bare answer, the final math span, a bold
    number, then the last number (see ``rewards.extract.extract_answer``)."""
    timeout: float = 1.0
    """Hard wall-time limit per verification in seconds, enforced by killing a worker process.
    ``0`` verifies in the calling process without a limit (size bounds still apply)."""
    max_answer_chars: int = 2000
    """Longest extracted answer (or gold) that is parsed; longer ones get reason ``too_large``."""
    max_depth: int = 40
    """Deepest bracket nesting that is parsed."""
    max_digits: int = 20000
    """Largest number of decimal digits a power or factorial may produce before evaluation."""
    max_factorial: int = 5000
    """Largest integer whose factorial is evaluated."""

    def __post_init__(self) -> None:
        if self.percent not in PERCENT_MODES:
            raise ValueError(f"VerifyOptions.percent={self.percent!r} is invalid; use one of {PERCENT_MODES}")
        for name in ("rel_tol", "abs_tol", "timeout"):
            if getattr(self, name) < 0:
                raise ValueError(f"VerifyOptions.{name}={getattr(self, name)!r} must be >= 0")
        for name in ("max_answer_chars", "max_depth", "max_digits", "max_factorial"):
            if getattr(self, name) < 1:
                raise ValueError(f"VerifyOptions.{name}={getattr(self, name)!r} must be >= 1")
        if not all(c.isalpha() and c.isupper() for c in self.choices):
            raise ValueError(
                f"VerifyOptions.choices={self.choices!r} must contain only capital letters, e.g. 'ABCDE'"
            )


_FIELDS = {f.name for f in dataclasses.fields(VerifyOptions)}


def resolve_options(options: VerifyOptions | None = None, **overrides: Any) -> VerifyOptions:
    """Return ``options`` (or the defaults) with ``overrides`` applied; unknown names raise."""
    unknown = sorted(set(overrides) - _FIELDS)
    if unknown:
        raise TypeError(f"unknown verify option(s) {unknown}; valid options: {sorted(_FIELDS)}")
    base = options if options is not None else VerifyOptions()
    if not isinstance(base, VerifyOptions):
        raise TypeError(f"options must be a VerifyOptions, got {type(base).__name__}")
    return dataclasses.replace(base, **overrides) if overrides else base
