"""GRPO and its variants (Dr. GRPO, DAPO, GSPO, ...) on TRL's GRPOTrainer, subclassed narrowly.

mathrl adds atomic checkpoints, guarded rewards, metrics under mathrl's names, and extra metric
sources (the MoE runtime's telemetry) merged into every log event.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import torch
from datasets import Dataset
from trl import GRPOConfig as TRLGRPOConfig
from trl import GRPOTrainer

from mathrl.config import Recipe
from mathrl.data.prompts import to_trl_rows
from mathrl.rl.callbacks import DevAccuracyCallback, MetricsCallback
from mathrl.rl.checkpoint import AtomicCheckpointMixin, save_model_atomic
from mathrl.rl.rewards import build_reward_funcs

__all__ = ["MathGRPOTrainer", "grpo_args", "build_grpo_trainer", "TRAINER_COLUMNS"]

logger = logging.getLogger(__name__)

TRAINER_COLUMNS = ("prompt", "problem", "answer", "source", "subject", "level", "id")
"""Record fields kept in the training dataset; TRL passes each to the reward functions."""


class MathGRPOTrainer(AtomicCheckpointMixin, GRPOTrainer):
    """TRL's GRPOTrainer with atomic checkpoints and extra metric sources."""

    def __init__(self, *args, metric_sources: list[Callable[[], dict]] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.metric_sources = list(metric_sources or [])

    def log(self, logs: dict, start_time: float | None = None) -> None:
        if "loss" in logs or any(k.startswith("rewards/") for k in self._metrics["train"]):
            for source in self.metric_sources:
                logs.update(source())
        super().log(logs, start_time)


def grpo_args(recipe: Recipe, output_dir: Path, reward_weights: list[float]) -> TRLGRPOConfig:
    """Translate the recipe's grpo, generation, training and logging sections into TRL's GRPOConfig."""
    g, gen, t = recipe.grpo, recipe.generation, recipe.training
    return TRLGRPOConfig(
        output_dir=str(output_dir),
        seed=recipe.seed,
        max_steps=t.max_steps,
        learning_rate=t.learning_rate,
        lr_scheduler_type=t.lr_scheduler,
        warmup_steps=t.warmup_steps,
        weight_decay=t.weight_decay,
        max_grad_norm=t.max_grad_norm,
        per_device_train_batch_size=t.prompts_per_step * g.num_generations,
        gradient_accumulation_steps=t.gradient_accumulation_steps,
        num_generations=g.num_generations,
        max_completion_length=gen.max_completion_length,
        temperature=gen.temperature,
        top_p=gen.top_p,
        top_k=0,
        beta=g.beta,
        epsilon=g.epsilon,
        epsilon_high=g.epsilon_high,
        loss_type=g.loss_type,
        importance_sampling_level=g.importance_sampling_level,
        scale_rewards=g.scale_rewards,
        mask_truncated_completions=g.mask_truncated_completions,
        num_iterations=g.num_iterations,
        reward_weights=reward_weights,
        logging_steps=recipe.logging.logging_steps,
        save_strategy="steps" if t.save_steps > 0 else "no",
        save_steps=max(t.save_steps, 1),
        save_total_limit=t.save_total_limit,
        report_to=["wandb"] if recipe.logging.wandb else "none",
        disable_tqdm=not recipe.logging.progress,
        bf16=recipe.model.dtype == "bfloat16",
        use_cpu=not torch.cuda.is_available(),
        router_aux_loss_coef=recipe.moe.aux_loss_coef,
        shuffle_dataset=True,
        log_completions=False,
    )


def _training_rows(records: list[dict], template: str) -> list[dict]:
    rows = to_trl_rows(records, template)
    return [{key: row[key] for key in TRAINER_COLUMNS if key in row and row[key] is not None} for row in rows]


def build_grpo_trainer(recipe: Recipe, model, tokenizer, train_records: list[dict], run_dir: Path,
                       metrics: MetricsCallback, dev_records: list[dict] | None = None,
                       metric_sources: list[Callable[[], dict]] | None = None,
                       peft_config=None) -> tuple[MathGRPOTrainer, DevAccuracyCallback | None]:
    """Return a ready GRPO trainer (and its dev-accuracy callback, when the recipe asks for one)."""
    reward_funcs, weights = build_reward_funcs(recipe.rewards)
    rows = _training_rows(train_records, recipe.data.prompt_template)
    columns = sorted({key for row in rows for key in row})
    rows = [{key: row.get(key) for key in columns} for row in rows]
    args = grpo_args(recipe, run_dir / "checkpoints", weights)

    callbacks = [metrics]
    dev = None
    if recipe.training.eval_steps > 0 and dev_records:
        best_dir = run_dir / "best"

        def keep_best(model, step, accuracy):
            if recipe.training.keep_best and args.process_index == 0:
                save_model_atomic(model, tokenizer, best_dir)
                logger.info("new best dev accuracy %.1f%% at step %d; saved to %s", 100 * accuracy, step, best_dir)

        dev = DevAccuracyCallback(tokenizer, dev_records, recipe.data.prompt_template, every=recipe.training.eval_steps,
                                  max_new_tokens=recipe.generation.max_completion_length, on_best=keep_best,
                                  metrics=metrics)
        callbacks.append(dev)

    trainer = MathGRPOTrainer(
        model=model,
        reward_funcs=reward_funcs,
        args=args,
        train_dataset=Dataset.from_list(rows),
        processing_class=tokenizer,
        callbacks=callbacks,
        metric_sources=metric_sources,
        peft_config=peft_config,
    )
    return trainer, dev
