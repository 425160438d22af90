r"""Skill-pair problem generation in the style of MATH^2: for each pair of skills a generator writes a new
problem that needs both, a solver answers it k times, and the problem is kept when a majority of the
answers agree; that majority answer becomes the gold answer and the agreement rate is recorded.

Output folder (see data_cards/generated.md): ``problems.jsonl`` (kept, problem records),
``rejected.jsonl``, ``review.md`` (every candidate for people to check), ``report.json`` and
``CARD.md`` (the card template filled in).
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from mathrl.data.prompts import format_prompt
from mathrl.data.record import last_boxed, make_record

__all__ = [
    "GENERATE_PROMPT",
    "GenerationSettings",
    "MATCHERS",
    "generate_problems",
    "majority_answer",
    "parse_generated_problem",
    "write_generated",
]

logger = logging.getLogger(__name__)

GENERATE_PROMPT = (
    "Write one new, self-contained math problem that can only be solved by combining these two skills:\n"
    "1. {skill_a}\n2. {skill_b}\n\n"
    "The problem must have a single final answer that is a number or a closed-form expression: no proofs, "
    "no multiple choice, no parts. Reply in exactly this form:\n"
    "Problem: <the problem>\nAnswer: <the final answer>"
)

_PROBLEM = re.compile(
    r"problem\s*[:：]\s*(.+?)(?=\n\s*(?:answer|solution)\s*[:：]|\Z)", re.IGNORECASE | re.DOTALL
)
_ANSWER = re.compile(r"\n\s*answer\s*[:：]\s*(.+?)\s*$", re.IGNORECASE | re.DOTALL)


def parse_generated_problem(reply: str) -> tuple[str | None, str | None]:
    """Return ``(problem, generator's answer)`` from a ``Problem: ... Answer: ...`` reply; None when absent."""
    match = _PROBLEM.search(reply)
    if not match or len(match.group(1).strip()) < 10:
        return None, None
    answer = _ANSWER.search(reply, match.end())
    return match.group(1).strip(), (answer.group(1).strip() if answer else None)


# An answer matcher has two parts: extract(completion) -> str | None, and same(a, b) -> bool.
def _exact_extract(completion: str) -> str | None:
    return last_boxed(completion)


def _exact_same(first: str, second: str) -> bool:
    return re.sub(r"\s+|\$", "", first) == re.sub(r"\s+|\$", "", second)


def _verifier_extract(completion: str) -> str | None:
    import rewards

    return rewards.extract_answer(completion)


def _verifier_same(first: str, second: str) -> bool:
    import rewards

    return rewards.verify(first, f"\\boxed{{{second}}}").correct is True


MATCHERS: dict[str, tuple[Callable[[str], str | None], Callable[[str, str], bool]]] = {
    "verifier": (_verifier_extract, _verifier_same),
    "exact": (_exact_extract, _exact_same),
}
"""``verifier``: rewards.extract_answer and rewards.verify (the training verifier). ``exact``: the last
\\boxed{} and text equality without spaces and $, for setups without the verifier."""


def majority_answer(answers: list[str | None], same: Callable[[str, str], bool]) -> tuple[str | None, int]:
    """Group answers by ``same`` (the first answer of a group represents it); return the largest group's
    answer and size. Missing answers count as votes for nothing."""
    groups: list[list[str]] = []
    for answer in answers:
        if answer is None:
            continue
        for group in groups:
            if same(group[0], answer):
                group.append(answer)
                break
        else:
            groups.append([answer])
    if not groups:
        return None, 0
    best = max(groups, key=len)
    return best[0], len(best)


@dataclass
class GenerationSettings:
    samples: int = 8
    """Solver answers per problem (k)."""
    min_agreement: float = 0.5
    """A problem is kept when its majority answer has more than this share of the k answers."""
    temperature: float = 1.0
    """Sampling temperature of generator and solver."""
    max_problem_tokens: int = 512
    max_solution_tokens: int = 1024
    prompt_template: str = "boxed"
    """Prompt template name for the solver (see mathrl.data.prompts)."""
    matcher: str = "verifier"
    """Answer matcher name: verifier or exact (see MATCHERS)."""
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        if self.samples < 1:
            raise ValueError(f"samples={self.samples} must be >= 1")
        if not 0.0 <= self.min_agreement < 1.0:
            raise ValueError(f"min_agreement={self.min_agreement} must be in [0, 1)")
        if self.matcher not in MATCHERS:
            raise ValueError(f"unknown answer matcher {self.matcher!r}; valid names: {', '.join(MATCHERS)}")


def generate_problems(
    pairs: list[tuple[str, str]],
    generator: Any,
    solver: Any,
    settings: GenerationSettings,
    id_prefix: str = "gen",
) -> tuple[list[dict], list[dict]]:
    """Generate one candidate per skill pair and judge it; return ``(kept records, all candidates)``.

    Every candidate dict has the skills, the generator's reply, the solver's answers, the majority
    answer, the agreement rate and a ``status`` (kept, or the reason it was rejected).
    """
    extract, same = MATCHERS[settings.matcher]
    conversations = [
        [{"role": "user", "content": GENERATE_PROMPT.format(skill_a=a, skill_b=b)}] for a, b in pairs
    ]
    replies = generator.complete(
        conversations, n=1, temperature=settings.temperature, max_tokens=settings.max_problem_tokens
    )

    candidates = []
    for index, ((skill_a, skill_b), (reply,)) in enumerate(zip(pairs, replies)):
        problem, generator_answer = parse_generated_problem(reply)
        candidates.append(
            {
                "id": f"{id_prefix}-{index}",
                "skills": [skill_a, skill_b],
                "problem": problem,
                "generator_answer": generator_answer,
                "generator_reply": reply,
            }
        )

    solvable = [candidate for candidate in candidates if candidate["problem"]]
    solver_prompts = [format_prompt({"problem": c["problem"]}, settings.prompt_template) for c in solvable]
    solutions = (
        solver.complete(
            solver_prompts,
            n=settings.samples,
            temperature=settings.temperature,
            max_tokens=settings.max_solution_tokens,
        )
        if solvable
        else []
    )

    kept = []
    for candidate, completions in zip(solvable, solutions):
        answers = [extract(completion) for completion in completions]
        majority, votes = majority_answer(answers, same)
        agreement = votes / settings.samples
        candidate.update(
            answers=answers, majority_answer=majority, agreement=round(agreement, 4), solutions=completions
        )
        if majority is None:
            candidate["status"] = "no answer extracted"
        elif agreement <= settings.min_agreement:
            candidate["status"] = "no majority"
        else:
            candidate["status"] = "kept"
            solution = next(c for c, a in zip(completions, answers) if a is not None and same(majority, a))
            kept.append(
                make_record(
                    candidate["problem"],
                    majority,
                    source="generated",
                    id=candidate["id"],
                    solution=solution,
                    domain=list(candidate["skills"]),
                    skills=list(candidate["skills"]),
                    agreement=candidate["agreement"],
                    samples=settings.samples,
                    generator_answer=candidate["generator_answer"],
                    generator_agrees=(
                        candidate["generator_answer"] is not None
                        and same(majority, candidate["generator_answer"])
                    ),
                )
            )
    for candidate in candidates:
        candidate.setdefault("status", "no problem in the generator reply")
    return kept, candidates


def _review_markdown(candidates: list[dict], settings: GenerationSettings) -> str:
    lines = [
        "# Generated problems for review",
        "",
        f"{sum(c['status'] == 'kept' for c in candidates)} of {len(candidates)} candidates kept "
        f"(k = {settings.samples}, kept when agreement > {settings.min_agreement}, matcher {settings.matcher}).",
        "Check each kept problem: is it well posed, does it need both skills, is the majority answer right?",
        "",
    ]
    for candidate in candidates:
        lines += [
            f"## {candidate['id']}: {candidate['status']}",
            "",
            f"- skills: {', '.join(candidate['skills'])}",
            f"- majority answer: `{candidate.get('majority_answer')}` "
            f"(agreement {candidate.get('agreement', 0.0):.2f})",
            f"- generator's answer: `{candidate.get('generator_answer')}`",
            f"- sampled answers: {', '.join(f'`{a}`' for a in candidate.get('answers', []))}",
            "",
            "Problem:",
            "",
            "> " + (candidate["problem"] or candidate["generator_reply"][:300]).replace("\n", "\n> "),
            "",
        ]
    return "\n".join(lines)


def write_generated(
    out_dir: str | Path,
    kept: list[dict],
    candidates: list[dict],
    settings: GenerationSettings,
    provenance: dict[str, Any],
) -> Path:
    """Write problems.jsonl, rejected.jsonl, review.md, report.json and CARD.md under ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with (out_dir / "problems.jsonl").open("w", encoding="utf-8") as handle:
        for record in kept:
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    with (out_dir / "rejected.jsonl").open("w", encoding="utf-8") as handle:
        for candidate in candidates:
            if candidate["status"] != "kept":
                handle.write(json.dumps(candidate, ensure_ascii=False) + "\n")
    (out_dir / "review.md").write_text(_review_markdown(candidates, settings), encoding="utf-8")

    statuses: dict[str, int] = {}
    for candidate in candidates:
        statuses[candidate["status"]] = statuses.get(candidate["status"], 0) + 1
    report = {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        **provenance,
        "settings": {k: v for k, v in settings.__dict__.items() if k != "extra"},
        "candidates": len(candidates),
        "kept": len(kept),
        "status_counts": statuses,
    }
    (out_dir / "report.json").write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")

    template = (Path(__file__).parent / "card_template.md").read_text(encoding="utf-8")
    card = template.format(
        name=out_dir.name,
        created=report["created"],
        generator=provenance.get("generator"),
        solver=provenance.get("solver"),
        skills_from=provenance.get("skills_from"),
        pairs=len(candidates),
        kept=len(kept),
        samples=settings.samples,
        min_agreement=settings.min_agreement,
        matcher=settings.matcher,
        statuses=", ".join(f"{k}: {v}" for k, v in sorted(statuses.items())),
    )
    (out_dir / "CARD.md").write_text(card, encoding="utf-8")
    return out_dir
