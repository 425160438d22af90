"""Skills for skill-pair problem generation: read from subject/type/domain labels, or named by a model
from a worked solution; then sampled as pairs of distinct skills."""

from __future__ import annotations

import itertools
import random
import re
from collections import Counter
from typing import Any

__all__ = [
    "SKILL_PROMPT",
    "parse_skill_list",
    "sample_skill_pairs",
    "skills_from_labels",
    "skills_from_model",
]

SKILL_PROMPT = (
    "Name the mathematical skills that the solution below uses, as a comma-separated list of short "
    "phrases (for example: solving linear equations, modular arithmetic). Reply with the list only.\n\n"
    "Problem:\n{problem}\n\nSolution:\n{solution}"
)


def _label_skills(record: dict, fields: tuple[str, ...]) -> list[str]:
    skills = []
    for name in fields:
        value = record.get(name)
        values = value if isinstance(value, (list, tuple)) else [value]
        for item in values:
            if isinstance(item, str) and item.strip():
                # Big-Math domains read "Mathematics -> Algebra -> Linear Equations"; the last part is the skill.
                skills.append(item.split("->")[-1].strip())
    return skills


def skills_from_labels(
    records: list[dict], fields: tuple[str, ...] = ("subject", "type", "domain"), min_count: int = 1
) -> list[str]:
    """Return the distinct skills named by the records' label fields, most frequent first."""
    counts: Counter = Counter()
    for record in records:
        counts.update(list(dict.fromkeys(_label_skills(record, fields))))
    return [skill for skill, count in counts.most_common() if count >= min_count]


def parse_skill_list(reply: str, max_skills: int = 5) -> list[str]:
    """Split a model's reply into skill phrases (commas, semicolons, new lines or list bullets)."""
    parts = re.split(r"[,;\n]|\s\d+[.)]\s", reply)
    skills = []
    for part in parts:
        skill = re.sub(r"^[\s\-*•\d.)]+|[\s.]+$", "", part).lower()
        if 2 < len(skill) <= 60 and skill not in skills:
            skills.append(skill)
    return skills[:max_skills]


def skills_from_model(
    records: list[dict], backend: Any, max_tokens: int = 64, min_count: int = 1
) -> list[str]:
    """Ask ``backend`` to name the skills of each record's solution; return the skills, most frequent first.

    Records without a solution are skipped.
    """
    usable = [
        record for record in records if isinstance(record.get("solution"), str) and record["solution"].strip()
    ]
    if not usable:
        raise ValueError(
            "skills from a model need records with a worked 'solution'; none of the records has one"
        )
    conversations = [
        [
            {
                "role": "user",
                "content": SKILL_PROMPT.format(problem=record["problem"], solution=record["solution"]),
            }
        ]
        for record in usable
    ]
    replies = backend.complete(conversations, n=1, temperature=0.0, max_tokens=max_tokens)
    counts: Counter = Counter()
    for (reply,) in replies:
        counts.update(list(dict.fromkeys(parse_skill_list(reply))))
    return [skill for skill, count in counts.most_common() if count >= min_count]


def sample_skill_pairs(skills: list[str], n: int, seed: int = 0) -> list[tuple[str, str]]:
    """Draw ``n`` distinct unordered pairs of distinct skills (fewer when fewer pairs exist)."""
    unique = list(dict.fromkeys(skills))
    if len(unique) < 2:
        raise ValueError(f"skill-pair generation needs at least two distinct skills, got {unique}")
    pairs = list(itertools.combinations(unique, 2))
    random.Random(seed).shuffle(pairs)
    return pairs[:n]
