"""Supervised warm start with TRL's SFTTrainer, stopped on a dev-accuracy target.

A model trained from scratch scores 0, and GRPO learns nothing from groups whose rewards are all 0,
so a short imitation stage brings the policy to a non-zero starting accuracy first.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import torch
from datasets import Dataset
from trl import SFTConfig as TRLSFTConfig
from trl import SFTTrainer

from mathrl.config import Recipe
from mathrl.data.prompts import format_prompt
from mathrl.rl.callbacks import DevAccuracyCallback, MetricsCallback
from mathrl.rl.checkpoint import AtomicCheckpointMixin

__all__ = ["sft_target", "run_sft"]

logger = logging.getLogger(__name__)

_CALCULATOR = re.compile(r"<<[^<>]*>>")
_GSM8K_FINAL = re.compile(r"\n?####\s*(.+)\s*$")


def sft_target(record: dict, target: str) -> str:
    r"""Return the assistant text the warm start imitates for ``record``.

    ``answer`` gives just the boxed answer; ``solution`` gives the worked solution (GSM8K calculator
    annotations and ``#### answer`` lines removed) ending in a boxed answer.

    >>> sft_target({"answer": "72"}, "answer")
    '\\boxed{72}'
    >>> sft_target({"answer": "72", "solution": "48/2 = <<48/2=24>>24\n#### 72"}, "solution")
    '48/2 = 24\nThe final answer is \\boxed{72}.'
    """
    boxed = f"\\boxed{{{record['answer']}}}"
    if target == "answer":
        return boxed
    if target != "solution":
        raise ValueError(f"invalid sft.target {target!r}; valid values: answer, solution")
    solution = record.get("solution") or ""
    if not solution:
        return boxed
    solution = _GSM8K_FINAL.sub("", _CALCULATOR.sub("", solution)).rstrip()
    if "\\boxed" in solution:
        return solution
    return f"{solution}\nThe final answer is {boxed}."


class _SFTTrainer(AtomicCheckpointMixin, SFTTrainer):
    pass


def run_sft(recipe: Recipe, model, tokenizer, train_records: list[dict], dev_records: list[dict] | None,
            run_dir: Path, metrics: MetricsCallback, extra_callbacks: list | None = None) -> dict:
    """Train ``model`` in place on (prompt, target) pairs; return a summary with the dev accuracy curve."""
    cfg = recipe.sft
    rows = [
        {"prompt": format_prompt(r, recipe.data.prompt_template),
         "completion": [{"role": "assistant", "content": sft_target(r, cfg.target)}]}
        for r in train_records
    ]
    args = TRLSFTConfig(
        output_dir=str(run_dir / "sft"),
        max_steps=cfg.max_steps,
        learning_rate=cfg.learning_rate,
        per_device_train_batch_size=cfg.batch_size,
        lr_scheduler_type="constant",
        logging_steps=recipe.logging.logging_steps * 10,
        save_strategy="no",
        report_to="none",
        seed=recipe.seed,
        completion_only_loss=True,
        disable_tqdm=not recipe.logging.progress,
        bf16=recipe.model.dtype == "bfloat16",
        use_cpu=not torch.cuda.is_available(),
        dataloader_drop_last=True,
        max_length=None,
    )
    dev = None
    callbacks = [metrics, *(extra_callbacks or [])]
    if dev_records and cfg.stop_at_accuracy is not None:
        dev = DevAccuracyCallback(tokenizer, dev_records, recipe.data.prompt_template, every=cfg.eval_every,
                                  max_new_tokens=recipe.generation.max_completion_length, stop_at=cfg.stop_at_accuracy,
                                  metrics=metrics)
        callbacks.append(dev)
    trainer = _SFTTrainer(model=model, args=args, train_dataset=Dataset.from_list(rows), processing_class=tokenizer,
                          callbacks=callbacks)
    logger.info("SFT warm start: %d examples, up to %d steps", len(rows), cfg.max_steps)
    trainer.train()
    summary = {"steps": trainer.state.global_step}
    if dev is not None:
        summary["dev_accuracy"] = dev.history[-1][1] if dev.history else None
        summary["dev_curve"] = dev.history
        if not dev.history or dev.history[-1][0] != trainer.state.global_step:
            accuracy = dev.measure(model)
            summary["dev_accuracy"] = accuracy
            summary["dev_curve"].append((trainer.state.global_step, accuracy))
        if summary["dev_accuracy"] < cfg.stop_at_accuracy:
            logger.warning("SFT ended at %d steps with dev accuracy %.1f%%, below the target %.1f%%; "
                           "GRPO may get few groups with a reward signal", trainer.state.global_step,
                           100 * summary["dev_accuracy"], 100 * cfg.stop_at_accuracy)
    return summary
