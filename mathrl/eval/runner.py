"""Evaluate a model on a problem set: sample, extract, verify, summarise, and write the reports."""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path

from rewards import VerifyOptions

from mathrl.data.prompts import format_prompt
from mathrl.eval.metrics import ProblemResult
from mathrl.eval.sampling import generate_completions
from mathrl.eval.scorers import GROUP_KEYS, SCORERS, scorer_kind

__all__ = ["evaluate", "write_reports", "GROUP_KEYS"]

logger = logging.getLogger(__name__)


def evaluate(model, tokenizer, records: list[dict], template: str = "boxed", samples: int = 1,
             temperature: float = 0.0, top_p: float = 1.0, max_new_tokens: int = 64, batch_size: int = 64,
             progress: bool = True, verify_options: VerifyOptions | None = None,
             description: str = "evaluating", scorer: str | None = None) -> tuple[dict, list[ProblemResult]]:
    """Return (metrics, per-problem results) for ``records`` in the problem-record format.

    ``scorer`` names an entry of ``SCORERS``; None picks one from the records (``scorer_kind``).
    """
    if not records:
        raise ValueError("cannot evaluate on an empty problem set")
    prompts = [format_prompt(record, template) for record in records]
    completions = generate_completions(model, tokenizer, prompts, samples=samples, temperature=temperature,
                                       top_p=top_p, max_new_tokens=max_new_tokens, batch_size=batch_size,
                                       progress=progress, description=description)
    kind = scorer or scorer_kind(records)
    return SCORERS.get(kind).score(records, completions, samples=samples, verify_options=verify_options)


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
    report_lines = SCORERS.get(metrics.get("kind", "math")).report_lines
    if report_lines is not None:
        lines += report_lines(metrics)
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
