"""Evaluate a model on a problem set: sample, extract, verify, summarise, and write the reports."""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path

from rewards import VerifyOptions, verify_many

from mathrl.data.prompts import format_prompt
from mathrl.eval.metrics import ProblemResult, summarize
from mathrl.eval.sampling import generate_completions

__all__ = ["evaluate", "write_reports", "GROUP_KEYS"]

logger = logging.getLogger(__name__)

GROUP_KEYS = ("subject", "level", "source")
"""Record fields that get a per-value breakdown when the data has them."""


def evaluate(model, tokenizer, records: list[dict], template: str = "boxed", samples: int = 1,
             temperature: float = 0.0, top_p: float = 1.0, max_new_tokens: int = 64, batch_size: int = 64,
             progress: bool = True, verify_options: VerifyOptions | None = None,
             description: str = "evaluating") -> tuple[dict, list[ProblemResult]]:
    """Return (metrics, per-problem results) for ``records`` in the problem-record format."""
    if not records:
        raise ValueError("cannot evaluate on an empty problem set")
    prompts = [format_prompt(record, template) for record in records]
    completions = generate_completions(model, tokenizer, prompts, samples=samples, temperature=temperature,
                                       top_p=top_p, max_new_tokens=max_new_tokens, batch_size=batch_size,
                                       progress=progress, description=description)
    pairs = [(record["answer"], completion) for record, group in zip(records, completions) for completion in group]
    verdicts = iter(verify_many(pairs, options=verify_options))

    results = []
    for record, group in zip(records, completions):
        group_verdicts = [next(verdicts) for _ in group]
        results.append(ProblemResult(
            problem=record["problem"],
            gold=record["answer"],
            completions=group,
            answers=[v.answer for v in group_verdicts],
            correct=[v.correct for v in group_verdicts],
            reasons=[str(getattr(v.reason, "value", v.reason)) for v in group_verdicts],
            group={key: str(record[key]) for key in GROUP_KEYS if record.get(key) not in (None, "")},
        ))
    return summarize(results, k=samples), results


def _write_atomic(path: Path, text: str) -> None:
    with tempfile.NamedTemporaryFile("w", dir=path.parent, delete=False, suffix=".tmp") as handle:
        handle.write(text)
    os.replace(handle.name, path)


def _markdown_table(name: str, metrics: dict, k: int, header: dict | None = None) -> str:
    columns = ["n", "accuracy", f"pass@{k}", f"maj@{k}", "frac_no_answer"]
    lines = [f"# Evaluation: {name}", ""]
    for key, value in (header or {}).items():
        lines.append(f"- {key}: {value}")
    lines += ["", "| group | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]

    def row(label: str, values: dict) -> str:
        cells = [str(values[c]) if c == "n" else f"{100 * values[c]:.1f}%" for c in columns]
        return f"| {label} | " + " | ".join(cells) + " |"

    lines.append(row("**all**", metrics))
    for key, buckets in metrics["by"].items():
        for value, values in buckets.items():
            lines.append(row(f"{key}={value}", values))
    return "\n".join(lines) + "\n"


def _plot(metrics: dict, k: int, path: Path) -> bool:
    """Bar chart of accuracy per breakdown value; returns False when there is nothing to plot."""
    groups = [(key, value, v["accuracy"]) for key, buckets in metrics["by"].items() if key != "source"
              for value, v in buckets.items()]
    if not groups:
        return False
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(max(4, 0.5 * len(groups) + 2), 3.5))
    ax.bar([f"{key}={value}" for key, value, _ in groups], [100 * a for _, _, a in groups])
    ax.axhline(100 * metrics["accuracy"], color="black", linestyle="--", label=f"all: {100 * metrics['accuracy']:.1f}%")
    ax.set_ylabel("accuracy (%)")
    ax.set_ylim(0, 100)
    ax.legend()
    plt.setp(ax.get_xticklabels(), rotation=45, ha="right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True


def write_reports(output_dir: str | Path, name: str, metrics: dict, results: list[ProblemResult], k: int,
                  header: dict | None = None) -> Path:
    """Write metrics.json, report.md, samples.jsonl (and accuracy.png when there are breakdowns)."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    _write_atomic(output_dir / "metrics.json", json.dumps({"dataset": name, **(header or {}), **metrics}, indent=2))
    _write_atomic(output_dir / "report.md", _markdown_table(name, metrics, k, header))
    lines = [
        json.dumps({"problem": r.problem, "gold": r.gold, "completions": r.completions, "answers": r.answers,
                    "correct": r.correct, "reasons": r.reasons, **r.group})
        for r in results
    ]
    _write_atomic(output_dir / "samples.jsonl", "\n".join(lines) + "\n")
    _plot(metrics, k, output_dir / "accuracy.png")
    return output_dir
