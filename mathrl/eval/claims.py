"""Scoring of claim sets: judgement accuracy, macro-F1, per-field scores, explicit-example rate and
the counterexample success rate on checkable false claims. No torch.

Macro-F1 averages the F1 of the "true" and "false" classes, so a model that always answers true
scores about 0.47 on a set that is 88% true (as CounterMATH is) while its accuracy reads 88%.
A completion without a verdict counts as wrong for both classes.
"""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Any

from rewards import VerifyOptions, check_counterexamples, extract_judgement
from rewards.counterexample.assignment import EXAMPLE_CUE
from rewards.judgement import parse_judgement

from mathrl.eval.metrics import ProblemResult, summarize

__all__ = ["claim_report_lines", "gives_example", "macro_f1", "score_claims"]

CLAIM_GROUP_KEYS = ("field", "level", "source")
_EXAMPLE_CONTENT = re.compile(r"[=\d$\\\[(]")
_EXAMPLE_WINDOW = 120


def gives_example(completion: str) -> bool:
    """True when the completion names a concrete example: an example cue ("counterexample", "for
    example", "take", ...) followed in the same sentence, within 120 characters, by math (a digit,
    ``=``, ``$``, a backslash or a bracket).

    >>> gives_example("The statement is false. Counterexample: n = 40."), gives_example("It is false.")
    (True, False)
    """
    tail = completion[-20_000:]
    for cue in EXAMPLE_CUE.finditer(tail):
        window = re.split(r"\.\s|\n", tail[cue.end() : cue.end() + _EXAMPLE_WINDOW], maxsplit=1)[0]
        if _EXAMPLE_CONTENT.search(window):
            return True
    return False


def macro_f1(expected: list[bool], predicted: list[bool | None]) -> float:
    """Mean F1 of the true and false classes present in ``expected`` or ``predicted``.

    >>> macro_f1([True, True, False], [True, True, True])
    0.4
    >>> macro_f1([True, False], [True, False])
    1.0
    """
    classes = {value for value in expected} | {value for value in predicted if value is not None}
    scores = []
    for label in sorted(classes):
        tp = sum(e == label and p == label for e, p in zip(expected, predicted))
        fp = sum(e != label and p == label for e, p in zip(expected, predicted))
        fn = sum(e == label and p != label for e, p in zip(expected, predicted))
        scores.append(2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0)
    return sum(scores) / len(scores) if scores else 0.0


def _claim_metrics(rows: list[dict]) -> dict:
    expected = [row["expected"] for row in rows]
    predicted = [row["verdict"] for row in rows]
    checked = [row["check"] for row in rows if row["check"] is not None]
    scored = [c for c in checked if c.correct is not None]
    return {
        "samples": len(rows),
        "judgement_accuracy": sum(e == p for e, p in zip(expected, predicted)) / len(rows) if rows else 0.0,
        "macro_f1": macro_f1(expected, predicted),
        "frac_no_verdict": sum(p is None for p in predicted) / len(rows) if rows else 0.0,
        "frac_explicit_example": sum(row["example"] for row in rows) / len(rows) if rows else 0.0,
        "counterexample_samples": len(checked),
        "counterexample_success": sum(bool(c.correct) for c in scored) / len(checked) if checked else None,
    }


def score_claims(
    records: list[dict], completions: list[list[str]], samples: int, verify_options: VerifyOptions | None = None
) -> tuple[dict, list[ProblemResult]]:
    """Return (metrics, per-claim results) for claim records and their sampled completions.

    ``accuracy``, ``pass@k`` and ``maj@k`` count right verdicts; the claim metrics sit next to
    them, overall and in ``by_field``. ``counterexample_success`` is the share of samples on
    false claims with a predicate whose counterexample checks out (None when there are none).
    """
    rows: list[dict] = []
    check_pairs = []
    for record, group in zip(records, completions):
        expected = parse_judgement(record.get("judgement"))
        if expected is None:
            raise ValueError(f"claim {record.get('id')!r} has no judgement; every claim record needs true or false")
        checkable = expected is False and bool(record.get("predicate"))
        for completion in group:
            rows.append(
                {
                    "expected": expected,
                    "verdict": extract_judgement(completion),
                    "example": gives_example(completion),
                    "check": None,
                    "field": str(record.get("field") or "unknown"),
                }
            )
            if checkable:
                check_pairs.append((len(rows) - 1, record, completion))
    verdicts = check_counterexamples(((r, c) for _, r, c in check_pairs), verify_options)
    for (index, _, _), verdict in zip(check_pairs, verdicts):
        rows[index]["check"] = verdict

    results = []
    position = 0
    for record, group in zip(records, completions):
        group_rows = rows[position : position + len(group)]
        position += len(group)
        results.append(
            ProblemResult(
                problem=record.get("statement") or record["problem"],
                gold=record["judgement"],
                completions=group,
                answers=[None if r["verdict"] is None else str(r["verdict"]).lower() for r in group_rows],
                correct=[r["verdict"] == r["expected"] for r in group_rows],
                reasons=[r["check"].reason.value if r["check"] is not None else "" for r in group_rows],
                group={key: str(record[key]) for key in CLAIM_GROUP_KEYS if record.get(key) not in (None, "")},
            )
        )

    metrics = summarize(results, k=samples)
    metrics["kind"] = "claims"
    metrics.update(_claim_metrics(rows))
    by_field: dict[str, list[dict]] = defaultdict(list)
    for row in rows:
        by_field[row["field"]].append(row)
    metrics["by_field"] = {field: _claim_metrics(field_rows) for field, field_rows in sorted(by_field.items())}
    return metrics, results


def _percent(value: Any) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def claim_report_lines(metrics: dict) -> list[str]:
    """Markdown lines with the claim metrics, overall and per field."""
    lines = [
        "",
        "## Claims",
        "",
        f"- judgement accuracy: {_percent(metrics['judgement_accuracy'])}",
        f"- macro-F1: {100 * metrics['macro_f1']:.1f}",
        f"- responses giving an explicit example: {_percent(metrics['frac_explicit_example'])}",
        f"- counterexample success on checkable false claims: {_percent(metrics['counterexample_success'])} "
        f"of {metrics['counterexample_samples']} samples",
        "",
        "| field | samples | judgement accuracy | macro-F1 | explicit example | counterexample success |",
        "|---|---|---|---|---|---|",
    ]
    for field, values in metrics["by_field"].items():
        lines.append(
            f"| {field} | {values['samples']} | {_percent(values['judgement_accuracy'])} | "
            f"{100 * values['macro_f1']:.1f} | {_percent(values['frac_explicit_example'])} | "
            f"{_percent(values['counterexample_success'])} |"
        )
    return lines
