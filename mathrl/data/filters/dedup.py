"""Exact and near-duplicate removal; the first occurrence of each problem is kept."""

from __future__ import annotations

import logging

from mathrl.data.filters.base import Filter, FilterResult, Removal, register_filter
from mathrl.data.filters.text import normalize_text, word_tokens

__all__ = ["ExactDedup", "NearDedup"]

logger = logging.getLogger(__name__)


def _record_key(record: dict, index: int) -> str:
    return str(record.get("id") if record.get("id") is not None else f"row-{index}")


@register_filter
class ExactDedup(Filter):
    """Remove problems whose normalised text (whitespace, case, $ and LaTeX spacing) repeats an earlier one.

    With ``include_answer`` the answer is part of the key, so the same text with another answer stays.
    """

    name = "exact_dedup"

    def __init__(self, include_answer: bool = False):
        self.include_answer = include_answer

    def apply(self, records: list[dict]) -> FilterResult:
        first_seen: dict[str, str] = {}
        kept, removed = [], []
        for index, record in enumerate(records):
            key = normalize_text(record.get("problem") or "")
            if self.include_answer:
                key += "\x00" + normalize_text(record.get("answer") or "")
            if key in first_seen:
                removed.append(Removal(record, "exact duplicate", {"duplicate_of": first_seen[key]}))
                continue
            first_seen[key] = _record_key(record, index)
            kept.append(record)
        return FilterResult(kept, removed)


@register_filter
class NearDedup(Filter):
    """Remove near duplicates found by MinHash LSH (datasketch) over word shingles of the normalised text.

    A candidate that LSH returns is removed only when its estimated Jaccard similarity to a kept row is
    at least ``threshold``. ``shingle_size`` words form one shingle; texts shorter than that form one.
    """

    name = "near_dedup"

    def __init__(self, threshold: float = 0.8, num_perm: int = 128, shingle_size: int = 3, seed: int = 1):
        if not 0.0 < threshold <= 1.0:
            raise ValueError(f"near_dedup threshold={threshold} must be in (0, 1]")
        if num_perm < 16:
            raise ValueError(f"near_dedup num_perm={num_perm} is too small for a useful estimate; use >= 16")
        if shingle_size < 1:
            raise ValueError(f"near_dedup shingle_size={shingle_size} must be >= 1")
        self.threshold = threshold
        self.num_perm = num_perm
        self.shingle_size = shingle_size
        self.seed = seed

    def _shingles(self, text: str) -> list[bytes]:
        tokens = word_tokens(text)
        size = self.shingle_size
        if len(tokens) <= size:
            return [" ".join(tokens).encode()] if tokens else []
        return [" ".join(tokens[i : i + size]).encode() for i in range(len(tokens) - size + 1)]

    def apply(self, records: list[dict]) -> FilterResult:
        from datasketch import MinHash, MinHashLSH

        lsh = MinHashLSH(threshold=self.threshold, num_perm=self.num_perm)
        signatures: dict[str, MinHash] = {}
        kept, removed = [], []
        for index, record in enumerate(records):
            shingles = self._shingles(record.get("problem") or "")
            if not shingles:
                kept.append(record)
                continue
            signature = MinHash(num_perm=self.num_perm, seed=self.seed)
            signature.update_batch(shingles)

            best_key, best_similarity = None, 0.0
            for candidate in lsh.query(signature):
                similarity = signature.jaccard(signatures[candidate])
                if similarity > best_similarity:
                    best_key, best_similarity = candidate, similarity
            if best_key is not None and best_similarity >= self.threshold:
                detail = {"duplicate_of": best_key, "jaccard": round(best_similarity, 3)}
                removed.append(Removal(record, "near duplicate", detail))
                continue

            # LSH keys must be unique; a repeated id gets the row index appended.
            key = _record_key(record, index)
            if key in signatures:
                key = f"{key}#row-{index}"
            lsh.insert(key, signature)
            signatures[key] = signature
            kept.append(record)
        return FilterResult(kept, removed)
