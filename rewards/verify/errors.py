"""Errors raised while parsing an answer."""

from __future__ import annotations

__all__ = ["ParseError", "TooLarge"]


class ParseError(ValueError):
    """The text is not a math answer this parser can read."""


class TooLarge(ValueError):
    """The text, its nesting, or a number it denotes exceeds a size bound in ``VerifyOptions``."""
