"""Decontamination against evaluation sets: normalised exact match, then word n-gram overlap.

The overlap of a training problem is the share of its word n-grams that occur in any evaluation
problem. At or above ``threshold`` the row is removed, and its detail names the evaluation problem
that shares the most n-grams.
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

from mathrl.data.filters.base import Filter, FilterResult, Removal, register_filter
from mathrl.data.filters.text import normalize_text, word_ngrams, word_tokens

__all__ = ["SHIPPED_EVAL_SETS", "Decontaminate", "load_eval_problems"]

logger = logging.getLogger(__name__)

SHIPPED_EVAL_SETS = ("math500", "aime24", "aime25", "amc23", "minerva_math", "olympiadbench", "gsm8k:test")
"""Evaluation sets shipped with mathrl, as ``name`` or ``name:split``."""


def load_eval_problems(spec: str) -> list[tuple[str, str, str]]:
    """Return ``(set name, problem id, problem text)`` for a dataset ``name``, ``name:split`` or file path."""
    from mathrl.data.loaders import DATASETS, load_problem_set

    name, split = spec, None
    if spec not in DATASETS and ":" in spec and not Path(spec).exists():
        name, _, split = spec.rpartition(":")
    problem_set = load_problem_set(name, split=split)
    label = spec if split is None else f"{name}:{problem_set.split}"
    return [
        (label, str(record.get("id") if record.get("id") is not None else index), record["problem"])
        for index, record in enumerate(problem_set.records)
    ]


@register_filter
class Decontaminate(Filter):
    """Remove training problems that match an evaluation problem (see the module docstring).

    ``against`` lists dataset names (``math500``), ``name:split`` (``gsm8k:test``) or file paths; the
    default is every shipped evaluation set. Problems shorter than ``n`` words are checked by exact
    match only.
    """

    name = "decontaminate"

    def __init__(
        self, against: list[str] | tuple[str, ...] = SHIPPED_EVAL_SETS, n: int = 10, threshold: float = 0.5
    ):
        if n < 3:
            raise ValueError(f"decontaminate n={n} is too short to tell copies from common phrases; use >= 3")
        if not 0.0 < threshold <= 1.0:
            raise ValueError(f"decontaminate threshold={threshold} must be in (0, 1]")
        if not against:
            raise ValueError("decontaminate needs at least one evaluation set in 'against'")
        self.against = list(against)
        self.n = n
        self.threshold = threshold
        self._index: tuple[dict, dict] | None = None

    def _build_index(self) -> tuple[dict[str, tuple[str, str]], dict[tuple, tuple[str, str]]]:
        exact: dict[str, tuple[str, str]] = {}
        grams: dict[tuple, tuple[str, str]] = {}
        total = 0
        for spec in self.against:
            for set_name, problem_id, problem in load_eval_problems(spec):
                total += 1
                source = (set_name, problem_id)
                exact.setdefault(normalize_text(problem), source)
                tokens = word_tokens(problem)
                if len(tokens) >= self.n:
                    for gram in word_ngrams(tokens, self.n):
                        grams.setdefault(gram, source)
        logger.info(
            "decontaminate: indexed %d evaluation problems from %s (%d %d-grams)",
            total,
            ", ".join(self.against),
            len(grams),
            self.n,
        )
        return exact, grams

    def apply(self, records: list[dict]) -> FilterResult:
        if self._index is None:
            self._index = self._build_index()
        exact, grams = self._index
        kept, removed = [], []
        for record in records:
            problem = record.get("problem") or ""
            source = exact.get(normalize_text(problem))
            if source is not None:
                detail = {"eval_set": source[0], "eval_id": source[1], "match": "exact", "overlap": 1.0}
                removed.append(Removal(record, "contaminated", detail))
                continue
            tokens = word_tokens(problem)
            if len(tokens) < self.n:
                kept.append(record)
                continue
            own = word_ngrams(tokens, self.n)
            hits = Counter(grams[gram] for gram in own if gram in grams)
            overlap = sum(hits.values()) / len(own)
            if overlap >= self.threshold:
                (set_name, eval_id), _ = hits.most_common(1)[0]
                detail = {
                    "eval_set": set_name,
                    "eval_id": eval_id,
                    "match": f"{self.n}-gram",
                    "overlap": round(overlap, 3),
                }
                removed.append(Removal(record, "contaminated", detail))
            else:
                kept.append(record)
        return FilterResult(kept, removed)

    def options(self) -> dict:
        return {"against": self.against, "n": self.n, "threshold": self.threshold}
