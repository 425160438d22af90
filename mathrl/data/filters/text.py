r"""Text normalisation shared by the filters: LaTeX-insensitive keys, word n-grams, prose for language ID.

>>> normalize_text(r"Find  $\dfrac{1}{2}$ of \left( 4 \right).")
'find \\frac{1}{2}of(4).'
>>> sorted(word_ngrams("a b c d", 3))
[('a', 'b', 'c'), ('b', 'c', 'd')]
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["normalize_text", "prose_text", "word_ngrams", "word_tokens"]

# LaTeX that changes how a formula looks but not its meaning.
_COSMETIC_COMMANDS = re.compile(
    r"\\(?:left|right|displaystyle|textstyle|bigl?|bigr?|Bigl?|Bigr?)(?![a-zA-Z])"
)
_SPACING_COMMANDS = re.compile(r"\\[,;:! ]|\\q?quad(?![a-zA-Z])|~")
_FRAC_VARIANTS = re.compile(r"\\[dt]frac(?![a-zA-Z])")
_UNESCAPED_DOLLAR = re.compile(r"(?<!\\)\$+")
_MATH_DISPLAY = re.compile(r"\\\[|\\\]|\\\(|\\\)")
_WHITESPACE = re.compile(r"\s+")
# Spaces next to a symbol carry no meaning in math ("3x + 7" and "3x+7"); spaces between words do.
_SPACE_AROUND_SYMBOLS = re.compile(r"\s*([^\w\s\\])\s*")

# For language identification: math spans, environments and commands carry no language.
_MATH_SPANS = re.compile(r"\$\$.*?\$\$|(?<!\\)\$.*?(?<!\\)\$|\\\[.*?\\\]|\\\(.*?\\\)", re.DOTALL)
_ENVIRONMENTS = re.compile(r"\\begin\{(\w+\*?)\}.*?\\end\{\1\}", re.DOTALL)
_COMMANDS = re.compile(r"\\[a-zA-Z]+\*?")
_NON_WORDS = re.compile(r"[^\w\s'-]|[\d_]")

_TOKENS = re.compile(r"\\[a-zA-Z]+|\w+")


def normalize_text(text: str) -> str:
    """Return a key that is equal for texts differing only in whitespace, case, $ delimiters and LaTeX spacing.

    Whitespace between words becomes one space, whitespace next to a symbol is removed.
    """
    text = unicodedata.normalize("NFKC", text)
    text = _UNESCAPED_DOLLAR.sub(" ", text)
    text = _MATH_DISPLAY.sub(" ", text)
    text = _FRAC_VARIANTS.sub(r"\\frac", text)
    text = _COSMETIC_COMMANDS.sub(" ", text)
    text = _SPACING_COMMANDS.sub(" ", text)
    text = _WHITESPACE.sub(" ", text).strip().lower()
    return _SPACE_AROUND_SYMBOLS.sub(r"\1", text)


def word_tokens(text: str) -> list[str]:
    """Split normalised text into words, numbers and LaTeX command names (punctuation dropped)."""
    return _TOKENS.findall(normalize_text(text))


def word_ngrams(text_or_tokens: str | list[str], n: int) -> set[tuple[str, ...]]:
    """Return the set of word n-grams; a text shorter than n words gives one shorter gram (or none if empty)."""
    tokens = word_tokens(text_or_tokens) if isinstance(text_or_tokens, str) else text_or_tokens
    if len(tokens) < n:
        return {tuple(tokens)} if tokens else set()
    return {tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)}


def prose_text(text: str) -> str:
    r"""Return the natural-language part of a problem: math spans, environments, commands and digits removed.

    >>> prose_text(r"Let $x^2 = 4$. Find \(x\) if \textbf{x} > 0.")
    'Let Find if x'
    """
    text = _ENVIRONMENTS.sub(" ", text)
    text = _MATH_SPANS.sub(" ", text)
    text = _COMMANDS.sub(" ", text)
    text = _NON_WORDS.sub(" ", text)
    return _WHITESPACE.sub(" ", text).strip()
