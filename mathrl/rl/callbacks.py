"""Trainer callbacks: metrics to JSONL and TensorBoard under mathrl's names, and dev-accuracy checks."""

from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path

from transformers import TrainerCallback

__all__ = ["MetricsCallback", "DevAccuracyCallback", "TimeLimitCallback", "rename_metric"]

logger = logging.getLogger(__name__)

_RENAMES = {
    "loss": "loss/total",
    "policy_loss": "loss/policy",
    "kl": "loss/kl",
    "aux_loss": "loss/moe_aux",
    "reward": "reward/mean",
    "reward_std": "reward/std",
    "frac_reward_zero_std": "adv/frac_zero_std",
    "clip_ratio/low_mean": "clip/frac_low",
    "clip_ratio/high_mean": "clip/frac_high",
    "clip_ratio/region_mean": "clip/frac_region",
    "clip_ratio/low_min": "clip/frac_low_min",
    "clip_ratio/high_max": "clip/frac_high_max",
    "entropy": "policy/entropy",
    "grad_norm": "optim/grad_norm",
    "learning_rate": "optim/lr",
    "epoch": "progress/epoch",
    "num_tokens": "progress/num_tokens",
    "mean_token_accuracy": "sft/token_accuracy",
}


def rename_metric(key: str) -> str:
    """Map a TRL/transformers log key to mathrl's slash-namespaced name (unknown keys pass through).

    >>> rename_metric("rewards/accuracy/mean"), rename_metric("frac_reward_zero_std"), rename_metric("moe/dropped_frac")
    ('reward/accuracy/mean', 'adv/frac_zero_std', 'moe/dropped_frac')
    """
    if key in _RENAMES:
        return _RENAMES[key]
    if key.startswith("rewards/"):
        return "reward/" + key[len("rewards/"):]
    if key.startswith("completions/"):
        return "completion/" + key[len("completions/"):]
    return key


class MetricsCallback(TrainerCallback):
    """Write every log event from the main process to ``metrics.jsonl`` and TensorBoard."""

    def __init__(self, run_dir: str | Path, stage: str, tensorboard: bool = True, step_offset: int = 0):
        self.path = Path(run_dir) / "metrics.jsonl"
        self.stage = stage
        self.step_offset = step_offset
        self.tensorboard_dir = Path(run_dir) / "tensorboard" if tensorboard else None
        self._writer = None
        self._last_time: float | None = None
        self._last_tokens: float | None = None

    def _scalars(self, logs: dict) -> dict:
        out = {}
        for key, value in logs.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            if isinstance(value, float) and not math.isfinite(value):
                continue
            out[rename_metric(key)] = value
        return out

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs:
            return
        metrics = self._scalars(logs)
        now = time.perf_counter()
        tokens = logs.get("num_tokens")
        if tokens is not None and self._last_time is not None and self._last_tokens is not None and now > self._last_time:
            metrics["perf/tokens_per_s"] = (tokens - self._last_tokens) / (now - self._last_time)
        self._last_time, self._last_tokens = now, tokens
        self.write(state.global_step, metrics)

    def write(self, step: int, metrics: dict) -> None:
        """Append one record to metrics.jsonl and TensorBoard (call from the main process only)."""
        step = step + self.step_offset
        record = {"stage": self.stage, "step": step, "time": time.time(), **metrics}
        with self.path.open("a") as handle:
            handle.write(json.dumps(record) + "\n")
        if self.tensorboard_dir is not None:
            if self._writer is None:
                from torch.utils.tensorboard import SummaryWriter

                self._writer = SummaryWriter(str(self.tensorboard_dir))
            for key, value in metrics.items():
                self._writer.add_scalar(f"{self.stage}/{key}" if self.stage == "sft" else key, value, step)
            self._writer.flush()

    def on_train_end(self, args, state, control, **kwargs):
        if self._writer is not None:
            self._writer.close()
            self._writer = None


class DevAccuracyCallback(TrainerCallback):
    """Measure greedy accuracy on a dev set every ``every`` steps; stop early or keep the best model.

    Every process evaluates the same dev set greedily, so all reach the same decision without a
    collective; on one process this costs nothing extra, on several it runs in parallel.
    """

    def __init__(self, tokenizer, records: list[dict], template: str, every: int, max_new_tokens: int,
                 stop_at: float | None = None, progress: bool = False, on_best=None, metrics: MetricsCallback | None = None):
        self.tokenizer = tokenizer
        self.records = records
        self.template = template
        self.every = every
        self.max_new_tokens = max_new_tokens
        self.stop_at = stop_at
        self.metrics = metrics
        self.progress = progress
        self.on_best = on_best
        self.history: list[tuple[int, float]] = []
        self.best: tuple[int, float] | None = None

    def measure(self, model) -> float:
        from mathrl.eval.runner import evaluate

        metrics, _ = evaluate(model, self.tokenizer, self.records, template=self.template, samples=1,
                              temperature=0.0, max_new_tokens=self.max_new_tokens, progress=self.progress,
                              description="dev accuracy")
        return metrics["accuracy"]

    def _check(self, state, control, model):
        accuracy = self.measure(model)
        self.history.append((state.global_step, accuracy))
        logger.info("step %d: dev accuracy %.1f%%", state.global_step, 100 * accuracy)
        state.log_history.append({"step": state.global_step, "dev/accuracy": accuracy})
        if self.metrics is not None and state.is_world_process_zero:
            self.metrics.write(state.global_step, {"dev/accuracy": accuracy})
        if self.best is None or accuracy > self.best[1]:
            self.best = (state.global_step, accuracy)
            if self.on_best is not None:
                self.on_best(model, state.global_step, accuracy)
        if self.stop_at is not None and accuracy >= self.stop_at:
            logger.info("dev accuracy %.1f%% reached the target %.1f%%; stopping", 100 * accuracy, 100 * self.stop_at)
            control.should_training_stop = True

    def on_step_end(self, args, state, control, model=None, **kwargs):
        if self.every > 0 and state.global_step % self.every == 0:
            self._check(state, control, model)
        return control


class TimeLimitCallback(TrainerCallback):
    """Stop training once ``seconds`` of wall time have passed since training began."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self._started: float | None = None

    def on_train_begin(self, args, state, control, **kwargs):
        self._started = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        if self._started is not None and time.perf_counter() - self._started >= self.seconds:
            control.should_training_stop = True
        return control
