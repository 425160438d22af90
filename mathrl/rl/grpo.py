"""GRPO and its variants (Dr. GRPO, DAPO, GSPO, ...) on TRL's GRPOTrainer, subclassed narrowly.

mathrl adds atomic checkpoints, guarded rewards, metrics under mathrl's names, and extra metric
sources (the MoE runtime's telemetry) merged into every log event.
"""

from __future__ import annotations

import json
import logging
import math
import random
import types
from collections.abc import Callable
from pathlib import Path

import torch
from datasets import Dataset
from trl import GRPOConfig as TRLGRPOConfig
from accelerate.utils import gather_object
from trl import GRPOTrainer

from mathrl.config import Recipe
from mathrl.data.passrate import PassRateTracker, SkipSolvedSampler
from mathrl.data.prompts import to_trl_rows
from mathrl.models.lora import build_peft_config
from mathrl.models.moe import enable_moe_runtime, is_moe_runtime_enabled
from mathrl.moe.config import ReplayMode
from mathrl.rl.callbacks import DevAccuracyCallback, MetricsCallback
from mathrl.rl.checkpoint import AtomicCheckpointMixin, save_model_atomic
from mathrl.rl.dynamic_sampling import concat_batches, informative_groups, select_rows
from mathrl.rl.moe_replay import MoEReplayMixin
from mathrl.rl.rewards import build_reward_funcs

__all__ = ["MathGRPOTrainer", "grpo_args", "build_grpo_trainer"]

logger = logging.getLogger(__name__)

PASS_RATES_FILE = "pass_rates.json"


class MathGRPOTrainer(AtomicCheckpointMixin, MoEReplayMixin, GRPOTrainer):
    """TRL's GRPOTrainer plus atomic checkpoints, dynamic sampling, bad-step guards and extra metrics.

    Args beyond GRPOTrainer's:
        metric_sources: callables returning ``{name: value}`` merged into every training log record
            (the MoE runtime's telemetry).
        dynamic_sampling: replace zero-advantage groups with new ones, up to ``max_rounds`` extra
            generation rounds per batch.
        max_bad_steps: consecutive steps with a non-finite loss, or with every reward None, before
            the run stops with an error.
        pass_rates: a tracker of each problem's pass rate, updated from every generated group
            (the ``pass_rate_reward`` values, gathered over processes); the sampler then skips
            problems the policy always or never solves.
    """

    def __init__(self, *args, metric_sources: list[Callable[[], dict]] | None = None, dynamic_sampling: bool = False,
                 max_rounds: int = 3, max_bad_steps: int = 3, pass_rates: PassRateTracker | None = None,
                 pass_rate_reward: str | None = None, success_threshold: float = 1.0,
                 replay: ReplayMode = ReplayMode.OFF, moe_enabled: bool = False, **kwargs):
        self.pass_rates = pass_rates
        super().__init__(*args, **kwargs)
        self._setup_moe(replay, moe_enabled)
        self.pass_rate_reward = pass_rate_reward
        self.success_threshold = success_threshold
        self.metric_sources = list(metric_sources or [])
        self.dynamic_sampling = dynamic_sampling
        self.max_rounds = max_rounds
        self.max_bad_steps = max_bad_steps
        self._unscored_steps = 0
        self._bad_loss_steps = 0
        self._skip_step = False
        self._extra_prompt_rng = random.Random(self.args.seed * 1_000_003 + self.accelerator.process_index)

    # ----------------------------------------------------------------------------------------------
    # Logging

    def log(self, logs: dict, start_time: float | None = None) -> None:
        if "loss" in logs:
            logs.update(self.moe_metrics())
            for source in self.metric_sources:
                logs.update(source())
        super().log(logs, start_time)

    # ----------------------------------------------------------------------------------------------
    # Rewards: stop when nothing can be scored for several steps in a row

    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
        rewards_per_func = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
        if self.pass_rates is not None and self.model.training:
            # Gathered over processes, so every process's tracker and sampler stay identical.
            ids = gather_object([example["id"] for example in inputs])
            column = rewards_per_func[:, self.reward_func_names.index(self.pass_rate_reward)].tolist()
            solved = [None if math.isnan(v) else v >= self.success_threshold for v in column]
            self.pass_rates.update_many(ids, solved)
        unscored = torch.isnan(rewards_per_func).all(dim=1)  # (B*G,) over all processes
        self._metrics["train"]["reward/frac_none"].append(unscored.float().mean().item())
        if bool(unscored.all()):
            self._unscored_steps += 1
            if self._unscored_steps >= self.max_bad_steps:
                sample = {key: inputs[0][key] for key in ("problem", "answer") if key in inputs[0]}
                sample["completion"] = completions[0]
                raise RuntimeError(
                    f"every reward returned None for every completion in {self._unscored_steps} consecutive "
                    f"generation batches; check the reward functions and the dataset's answer column. "
                    f"Sample row: {sample}"
                )
        else:
            self._unscored_steps = 0
        return rewards_per_func

    # ----------------------------------------------------------------------------------------------
    # Sampling: skip problems whose tracked pass rate is 0 or 1

    def _get_train_sampler(self, dataset=None):
        dataset = dataset if dataset is not None else self.train_dataset
        if self.pass_rates is None:
            return super()._get_train_sampler(dataset)
        return SkipSolvedSampler(dataset, dataset["id"], self.pass_rates, mini_repeat_count=self.num_generations,
                                 batch_size=self.args.generation_batch_size // self.num_generations,
                                 repeat_count=self.num_iterations * self.args.steps_per_generation,
                                 shuffle=self.shuffle_dataset, seed=self.args.seed)

    def _save_extra_state(self, checkpoint_dir: str) -> None:
        if self.pass_rates is not None:
            Path(checkpoint_dir, PASS_RATES_FILE).write_text(json.dumps(self.pass_rates.state_dict()))

    def load_extra_state(self, checkpoint_dir: str) -> None:
        """Restore what ``_save_extra_state`` wrote, when resuming from ``checkpoint_dir``."""
        path = Path(checkpoint_dir, PASS_RATES_FILE)
        if self.pass_rates is not None and path.is_file():
            self.pass_rates.load_state_dict(json.loads(path.read_text()))

    # ----------------------------------------------------------------------------------------------
    # Dynamic sampling

    def _extra_inputs(self, groups: int) -> list[dict]:
        dataset = self.train_dataset
        rows = []
        for _ in range(groups):
            row = dataset[self._extra_prompt_rng.randrange(len(dataset))]
            rows.extend([row] * self.num_generations)
        return rows

    def _generate_and_score_once(self, inputs):
        return self._attach_routing(super()._generate_and_score_completions(inputs))

    def _generate_and_score_completions(self, inputs):
        batch = self._generate_and_score_once(inputs)
        if not self.dynamic_sampling or not self.model.training:
            return batch

        G = self.num_generations
        groups = len(inputs) // G
        pool = [batch]
        rounds = 0
        while True:
            informative = sum(int(informative_groups(b["advantages"], G).sum()) for b in pool)
            missing = torch.tensor([max(groups - informative, 0)], device=self.accelerator.device)
            # Every process must run the same number of rounds: each round gathers rewards across them.
            if int(self.accelerator.gather(missing).max()) == 0 or rounds >= self.max_rounds:
                break
            pool.append(self._generate_and_score_once(self._extra_inputs(groups)))
            rounds += 1

        merged = concat_batches([select_rows(b, torch.arange(len(b["advantages"]), device=b["advantages"].device))
                                 for b in pool], self.processing_class.pad_token_id)
        keep = informative_groups(merged["advantages"], G)
        order = torch.cat([keep.nonzero().flatten(), (~keep).nonzero().flatten()])[:groups]  # informative first
        rows = (order[:, None] * G + torch.arange(G, device=order.device)).flatten()  # (groups*G,)
        result = select_rows(merged, rows)
        loss_mask = result["completion_mask"] * result.get("tool_mask", 1)
        result["num_items_in_batch"] = self.accelerator.gather(loss_mask.sum()).sum()
        self._metrics["train"]["dynamic_sampling/rounds"].append(float(rounds))
        self._metrics["train"]["dynamic_sampling/informative_frac"].append(
            float(informative_groups(result["advantages"], G).float().mean()))
        return result

    # ----------------------------------------------------------------------------------------------
    # Non-finite losses: skip the optimizer step on every process, stop after several in a row

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        with self._replay_context(model, inputs):
            loss = super().compute_loss(model, inputs, return_outputs=return_outputs,
                                        num_items_in_batch=num_items_in_batch)
        aux = self._moe_aux_loss(model)
        if aux is not None:
            self._metrics["train"]["loss/moe_aux"].append(aux.item())
            loss = loss + aux
        if not torch.isfinite(loss).all():
            logger.warning("non-finite loss %s at step %d; the optimizer step is skipped", loss.item(),
                           self.state.global_step)
            self._skip_step = True
            # A zero loss still connected to the parameters keeps DDP's gradient all-reduce in step.
            loss = sum((p * 0).sum() for p in model.parameters() if p.requires_grad)
        return loss

    def create_optimizer(self, *args, **kwargs):
        optimizer = super().create_optimizer(*args, **kwargs)
        step = optimizer.step

        def guarded_step(_optimizer, *step_args, **step_kwargs):
            flag = torch.tensor([float(self._skip_step)], device=self.accelerator.device)
            skip = bool(self.accelerator.gather(flag).max() > 0)
            self._skip_step = False
            if skip:
                optimizer.zero_grad(set_to_none=True)
                self._bad_loss_steps += 1
                self._metrics["train"]["optim/skipped_steps"].append(1.0)
                if self._bad_loss_steps >= self.max_bad_steps:
                    raise RuntimeError(f"the loss was NaN or infinite in {self._bad_loss_steps} consecutive steps; "
                                       "lower the learning rate or check the rewards and the model's dtype")
                return None
            self._bad_loss_steps = 0
            return step(*step_args, **step_kwargs)

        # Bound like the original, because torch's LR schedulers wrap `optimizer.step.__func__`.
        optimizer.step = types.MethodType(guarded_step, optimizer)
        return optimizer


def grpo_args(recipe: Recipe, output_dir: Path, reward_weights: list[float],
              runtime_enabled: bool = False) -> TRLGRPOConfig:
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
        # With mathrl's runtime the aux loss comes from the runtime (see MoEReplayMixin); TRL's own
        # path would turn on output_router_logits, which transformers 5.25 cannot use in generate.
        router_aux_loss_coef=0.0 if runtime_enabled else recipe.moe.aux_loss_coef,
        # An easy-to-hard (or reverse) order is the curriculum itself; shuffling would undo it.
        shuffle_dataset=recipe.data.difficulty.order == "none",
        log_completions=False,
    )


def build_grpo_trainer(recipe: Recipe, model, tokenizer, train_records: list[dict], run_dir: Path,
                       metrics: MetricsCallback, dev_records: list[dict] | None = None,
                       metric_sources: list[Callable[[], dict]] | None = None,
                       ) -> tuple[MathGRPOTrainer, DevAccuracyCallback | None]:
    """Return a ready GRPO trainer (and its dev-accuracy callback, when the recipe asks for one)."""
    reward_funcs, weights = build_reward_funcs(recipe.rewards)
    adaptive = recipe.data.adaptive_pass_rate
    pass_rates = None
    if adaptive.enable:
        names = [f.__name__ for f in reward_funcs]
        if adaptive.reward not in names:
            raise ValueError(f"data.adaptive_pass_rate.reward={adaptive.reward!r} is not among the recipe's "
                             f"rewards ({', '.join(names)})")
        pass_rates = PassRateTracker(adaptive.min_observations)
        metric_sources = [*(metric_sources or []), pass_rates.metrics]
    # Every record field becomes a dataset column, so TRL passes each one to the rewards: the claim
    # rewards need ``judgement``, ``variables`` and ``predicate``.
    rows = to_trl_rows(train_records, recipe.data.prompt_template)
    columns = sorted({key for row in rows for key in row})
    rows = [{key: row.get(key) for key in columns} for row in rows]
    runtime_enabled = is_moe_runtime_enabled(model)
    args = grpo_args(recipe, run_dir / "checkpoints", weights, runtime_enabled)

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
        peft_config=build_peft_config(recipe.model.lora),
        dynamic_sampling=recipe.grpo.dynamic_sampling,
        max_rounds=recipe.grpo.dynamic_sampling_max_rounds,
        max_bad_steps=recipe.training.max_bad_steps,
        pass_rates=pass_rates,
        pass_rate_reward=adaptive.reward,
        success_threshold=adaptive.success_threshold,
        replay=recipe.moe.replay,
        moe_enabled=runtime_enabled,
    )
    if runtime_enabled and trainer.ref_model is not None:
        enable_moe_runtime(trainer.accelerator.unwrap_model(trainer.ref_model), recipe.moe)
    return trainer, dev
