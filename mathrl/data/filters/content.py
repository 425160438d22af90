r"""Filters on what a problem contains: figures and links, and the language it is written in."""

from __future__ import annotations

import functools
import re
import unicodedata

from mathrl.data.filters.base import RowFilter, register_filter
from mathrl.data.filters.text import prose_text

__all__ = ["FiguresAndLinks", "NonEnglish"]

_FIGURE_PATTERNS = (
    ("asymptote figure", re.compile(r"\[asy\]|\\begin\{asy\}", re.IGNORECASE)),
    (
        "image",
        re.compile(
            r"!\[[^\]]*\]\([^)]*\)|<img\b|\\includegraphics|\\begin\{(?:tikzpicture|picture)\}"
            r"|\b[\w/-]+\.(?:png|jpe?g|gif|svg|bmp|webp)\b",
            re.IGNORECASE,
        ),
    ),
    ("hyperlink", re.compile(r"https?://|\bwww\.[a-z0-9-]+\.|\\url\{|\\href\{|<a\s+href", re.IGNORECASE)),
    (
        "figure reference",
        re.compile(
            r"\b(?:in|from|see|use)\s+the\s+(?:figure|diagram|graph|picture|image)\b|"
            r"\b(?:figure|diagram|graph|picture|image)\s+(?:below|above|shown)\b|"
            r"\bas\s+shown\s+(?:in\s+the\s+(?:figure|diagram|graph|picture)|below|above)\b|"
            r"\bshown\s+in\s+the\s+(?:figure|diagram|graph|picture)\b|\b(?:figure|fig\.)\s*\d+\b",
            re.IGNORECASE,
        ),
    ),
)


@register_filter
class FiguresAndLinks(RowFilter):
    """Remove problems that need a figure or a link: [asy] code, image links, URLs, "the figure below"."""

    name = "figures_links"

    def __init__(self, figure_references: bool = True):
        self.figure_references = figure_references

    def check(self, record: dict):
        problem = record.get("problem") or ""
        for reason, pattern in _FIGURE_PATTERNS:
            if reason == "figure reference" and not self.figure_references:
                continue
            match = pattern.search(problem)
            if match:
                return reason, {"match": match.group(0)}
        return None


@functools.lru_cache(maxsize=1)
def _language_identifier():
    # py3langid ships its model inside the wheel; nothing is downloaded at run time.
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    return LanguageIdentifier.from_model_file(MODEL_FILE, norm_probs=True)


def _script_share(text: str) -> float:
    """Return the share of letters that are not Latin (Cyrillic, CJK, Arabic, ...)."""
    letters = [char for char in text if char.isalpha()]
    if not letters:
        return 0.0
    non_latin = sum(1 for char in letters if "LATIN" not in unicodedata.name(char, "LATIN"))
    return non_latin / len(letters)


@register_filter
class NonEnglish(RowFilter):
    """Remove problems whose prose (LaTeX, math and digits stripped) is not in one of ``languages``.

    Texts with fewer than ``min_words`` prose words are kept, since language ID on a few words is a
    guess. A text is removed when more than ``max_non_latin`` of its letters are in a non-Latin script,
    or when py3langid names another language with probability at least ``min_confidence``.
    """

    name = "non_english"

    def __init__(
        self,
        languages: list[str] | tuple[str, ...] = ("en",),
        min_words: int = 6,
        min_confidence: float = 0.9,
        max_non_latin: float = 0.3,
    ):
        if not languages:
            raise ValueError("non_english needs at least one language code to keep, e.g. languages: [en]")
        self.languages = list(languages)
        self.min_words = min_words
        self.min_confidence = min_confidence
        self.max_non_latin = max_non_latin

    def check(self, record: dict):
        prose = prose_text(record.get("problem") or "")
        if len(prose.split()) < self.min_words:
            return None
        share = _script_share(prose)
        if share > self.max_non_latin and "en" in self.languages and len(self.languages) == 1:
            return "non-English", {"non_latin_share": round(share, 3)}
        language, probability = _language_identifier().classify(prose)
        if language not in self.languages and probability >= self.min_confidence:
            return "non-English", {"language": language, "probability": round(float(probability), 3)}
        return None
