"""PPO with a critic on transformers + accelerate: rollout, GAE, several clipped epochs per batch.

In one step, each process samples ``num_generations`` completions for each of its
``prompts_per_step`` prompts with the unwrapped policy and scores them with the guarded reward
functions. It then computes old log-probabilities, reference log-probabilities and values, and
turns the scores into token rewards and GAE advantages. Last, it runs ``epochs`` passes of
minibatch updates over the batch.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import DistributedDataParallelKwargs
from transformers import get_scheduler

from mathrl.config import Recipe
from mathrl.rl.callbacks import DevAccuracyCallback, MetricsCallback
from mathrl.rl.checkpoint import save_model_atomic
from mathrl.rl.ppo.gae import ADVANTAGE_ESTIMATORS, masked_mean, token_rewards, whiten
from mathrl.rl.ppo.losses import (KL_ESTIMATORS, POLICY_LOSSES, VALUE_LOSSES, entropy_from_logits,
                                  explained_variance, kl_loss)
from mathrl.rl.ppo.rollout import (PromptSampler, Rollout, generate_rollout, score_completions, token_logprobs,
                                   training_rows)
from mathrl.rl.ppo.state import TrainerState, load_checkpoint, save_checkpoint
from mathrl.rl.ppo.value_head import (CriticModel, PolicyWithValueHead, add_lora, freeze_router, fresh_copy,
                                      position_ids_from_mask)
from mathrl.rl.rewards import build_reward_funcs

__all__ = ["PPOTrainer", "build_ppo_trainer", "MAX_BAD_STEPS"]

logger = logging.getLogger(__name__)

MAX_BAD_STEPS = 3
"""Consecutive steps with a non-finite loss, or with no scored completion, after which training stops."""


class PPOTrainer:
    """Train ``model`` in place with PPO; ``model`` is the policy's starting point (e.g. after the warm start).

    ``metric_sources`` are called on the main process at every log step, and the dicts they return
    are merged into the log record (the MoE runtime's telemetry plugs in here).
    """

    def __init__(self, recipe: Recipe, model, tokenizer, rows: list[dict], run_dir: Path,
                 metrics: MetricsCallback, dev: DevAccuracyCallback | None = None,
                 metric_sources: list[Callable[[], dict]] | None = None):
        self.recipe, self.cfg = recipe, recipe.ppo
        self.tokenizer = tokenizer
        self.run_dir = Path(run_dir)
        self.metrics = metrics
        self.dev = dev
        self.metric_sources = list(metric_sources or [])
        self.state = TrainerState()
        self.reward_funcs, self.reward_weights = build_reward_funcs(recipe.rewards)
        self.rows = rows
        # find_unused_parameters: experts that receive no token in a minibatch get no gradient.
        self.accelerator = Accelerator(cpu=not torch.cuda.is_available(),
                                       kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)])
        acc = self.accelerator
        self.sampler = PromptSampler(len(rows), recipe.training.prompts_per_step, acc.num_processes,
                                     acc.process_index, recipe.seed)
        self._build_models(model)
        self._bad_loss_steps = 0
        self._unscored_steps = 0

    # ------------------------------------------------------------------------------------------
    # Models and optimizers

    def _build_models(self, model) -> None:
        recipe, cfg, acc = self.recipe, self.cfg, self.accelerator
        lora = recipe.model.lora.enable
        if recipe.moe.freeze_router:
            freeze_router(model)
        # The reference is the starting policy: the adapter-disabled model under LoRA, else a frozen copy.
        self.reference = None
        if cfg.kl_coef > 0 and not lora:
            self.reference = fresh_copy(model).requires_grad_(False).eval().to(acc.device)
        critic = CriticModel(model) if cfg.critic == "separate" else None
        if lora:
            model = add_lora(model, recipe.model.lora)
            if critic is not None:
                critic.backbone = add_lora(critic.backbone, recipe.model.lora, causal_lm=False)
        t = recipe.training

        def optimizer_for(module, lr):
            params = [p for p in module.parameters() if p.requires_grad]
            return torch.optim.AdamW(params, lr=lr, weight_decay=t.weight_decay)

        def scheduler_for(optimizer):
            return get_scheduler(t.lr_scheduler, optimizer, num_warmup_steps=t.warmup_steps,
                                 num_training_steps=t.max_steps)

        if critic is None:
            module = PolicyWithValueHead(model)
            optimizer = optimizer_for(module.policy, t.learning_rate)
            optimizer.add_param_group({"params": list(module.value_head.parameters()),
                                       "lr": cfg.critic_learning_rate or t.learning_rate})
            self.module, self.optimizer = acc.prepare(module, optimizer)
            self.critic, self.critic_optimizer = None, None
            self.optimizers = {"policy": self.optimizer}
        else:
            optimizer = optimizer_for(model, t.learning_rate)
            critic_optimizer = optimizer_for(critic, cfg.critic_learning_rate or t.learning_rate)
            self.module, self.critic, self.optimizer, self.critic_optimizer = acc.prepare(
                model, critic, optimizer, critic_optimizer)
            self.optimizers = {"policy": self.optimizer, "critic": self.critic_optimizer}
        # Schedulers step once per rollout step; accelerate's wrapper would step them once per process.
        self.schedulers = {key: scheduler_for(opt) for key, opt in self.optimizers.items()}
        self.module.eval()  # no dropout anywhere, so rollout and update forwards see the same policy
        if self.critic is not None:
            self.critic.eval()

    @property
    def model(self):
        """The policy language model (a peft model under LoRA), unwrapped from data parallelism."""
        unwrapped = self.accelerator.unwrap_model(self.module)
        return unwrapped.policy if isinstance(unwrapped, PolicyWithValueHead) else unwrapped

    def _critic_module(self) -> torch.nn.Module:
        return self.accelerator.unwrap_model(self.critic if self.critic is not None else self.module)

    def _forward(self, rollout: Rollout, rows: torch.Tensor, with_grad: bool, reference: bool = False):
        """Return (token log-probs, entropy, values, MoE aux loss) for the given rows; values are None for the reference."""
        ids, mask = rollout.input_ids[rows], rollout.attention_mask[rows]
        num_tokens = rollout.completion_mask.shape[1]
        aux_coef = self.recipe.moe.aux_loss_coef
        kwargs = {"logits_to_keep": num_tokens + 1}
        if aux_coef and with_grad:
            kwargs["output_router_logits"] = True
        with torch.set_grad_enabled(with_grad):
            values = None
            if reference:
                if self.reference is not None:
                    output = self.reference(input_ids=ids, attention_mask=mask,
                                            position_ids=position_ids_from_mask(mask), use_cache=False, **kwargs)
                else:
                    with self.model.disable_adapter():
                        output = self.model(input_ids=ids, attention_mask=mask,
                                            position_ids=position_ids_from_mask(mask), use_cache=False, **kwargs)
            elif self.critic is None:
                output, values = self.module(ids, mask, **kwargs)
            else:
                output = self.module(input_ids=ids, attention_mask=mask, position_ids=position_ids_from_mask(mask),
                                     use_cache=False, **kwargs)
                values = self.critic(ids, mask)
            if values is not None:
                values = values[:, -num_tokens - 1 : -1]  # (r, T): value of the state that emits each token
            logprobs = token_logprobs(output.logits, ids, self.recipe.generation.temperature)
            entropy = entropy_from_logits(output.logits[:, :-1].detach() / self.recipe.generation.temperature)
            aux = getattr(output, "aux_loss", None) if "output_router_logits" in kwargs else None
            if "output_router_logits" in kwargs and aux is None:
                raise ValueError(f"moe.aux_loss_coef={aux_coef} but {type(self.model).__name__} returns no aux_loss; "
                                 "set moe.aux_loss_coef: 0 for this model")
        return logprobs, entropy, values, aux

    # ------------------------------------------------------------------------------------------
    # One step

    def _rollout(self) -> tuple[Rollout, dict]:
        gen = self.recipe.generation
        rows = [self.rows[i] for i in self.sampler.next_indices()]
        rollout = generate_rollout(self.model, self.tokenizer, rows, self.cfg.num_generations,
                                   gen.max_completion_length, gen.temperature, gen.top_p, self.accelerator.device)
        metrics = score_completions(rollout, self.reward_funcs, self.reward_weights)
        scores = rollout.scores.view(-1, self.cfg.num_generations)
        scored = rollout.scored.view(-1, self.cfg.num_generations)
        same = [bool(s[m].numel() > 0 and (s[m] == s[m][0]).all()) for s, m in zip(scores, scored)]
        metrics["adv/frac_zero_std"] = sum(same) / len(same)
        lengths = rollout.completion_mask.sum(1).float()
        metrics["completion/mean_length"] = lengths.mean().item()
        metrics["completion/frac_truncated"] = rollout.truncated.float().mean().item()
        return rollout, metrics

    @torch.no_grad()
    def _advantages(self, rollout: Rollout) -> dict:
        """Old log-probs, values, KL, token rewards, advantages and returns for the whole rollout."""
        cfg = self.cfg
        num_rows = rollout.input_ids.shape[0]
        chunks = torch.arange(num_rows).split(cfg.minibatch_size)
        old_logprobs, values, ref_logprobs = [], [], []
        for rows in chunks:
            logprobs, _, v, _ = self._forward(rollout, rows, with_grad=False)
            old_logprobs.append(logprobs)
            values.append(v)
            if cfg.kl_coef > 0:
                ref_logprobs.append(self._forward(rollout, rows, with_grad=False, reference=True)[0])
        batch = {"old_logprobs": torch.cat(old_logprobs), "values": torch.cat(values)}

        # Unscored rows keep a zero mask, so they get no reward, no advantage and no loss.
        mask = rollout.completion_mask.float() * rollout.scored.float()[:, None].to(rollout.completion_mask.device)
        batch["mask"] = mask
        kl = None
        if cfg.kl_coef > 0:
            batch["ref_logprobs"] = torch.cat(ref_logprobs)
            kl = KL_ESTIMATORS.get(cfg.kl_estimator)(batch["old_logprobs"], batch["ref_logprobs"])

        rewards = token_rewards(rollout.scores.to(mask.device), mask, kl if cfg.kl_mode == "reward" else None,
                                cfg.kl_coef)
        advantages, returns = ADVANTAGE_ESTIMATORS.get("gae")(rewards, batch["values"], mask, cfg.gamma, cfg.lam)
        metrics = {"adv/mean": masked_mean(advantages, mask).item(),
                   "value/mean": masked_mean(batch["values"], mask).item(),
                   "value/explained_variance": explained_variance(batch["values"], returns, mask)}
        if kl is not None:
            metrics["loss/kl"] = masked_mean(kl, mask).item()

        if cfg.whiten_advantages:
            # Statistics over the scored tokens of every process, so each process scales alike.
            stats = torch.stack([(advantages * mask).sum(), (advantages ** 2 * mask).sum(), mask.sum()])
            total, total_sq, count = self.accelerator.reduce(stats, reduction="sum").tolist()
            count = max(count, 1.0)
            mean = total / count
            var = max(total_sq / count - mean ** 2, 0.0)
            metrics["adv/std"] = math.sqrt(var)
            advantages = whiten(advantages, mask, torch.tensor(mean), torch.tensor(var))
        batch.update(advantages=advantages, returns=returns)
        return batch | {"metrics": metrics}

    def _all_finite(self, *tensors: torch.Tensor) -> bool:
        """True when every tensor is finite on every process (so all processes skip together)."""
        bad = torch.tensor([float(not all(bool(torch.isfinite(t).all()) for t in tensors))],
                           device=self.accelerator.device)
        return self.accelerator.reduce(bad, reduction="sum").item() == 0

    def _update(self, rollout: Rollout, batch: dict, train_policy: bool) -> tuple[dict, bool]:
        """Run the epochs of minibatch updates; return (mean metrics, whether every update was finite)."""
        cfg, acc, t = self.cfg, self.accelerator, self.recipe.training
        num_rows = rollout.input_ids.shape[0]
        logged = defaultdict(list)
        policy_loss_fn, value_loss_fn = POLICY_LOSSES.get("clip"), VALUE_LOSSES.get("clipped")
        for _ in range(cfg.epochs):
            for rows in torch.randperm(num_rows).split(cfg.minibatch_size):
                mask = batch["mask"][rows]
                logprobs, entropy, values, aux = self._forward(rollout, rows, with_grad=True)
                policy_loss, policy_metrics = policy_loss_fn(logprobs, batch["old_logprobs"][rows],
                                                             batch["advantages"][rows], mask, cfg.epsilon,
                                                             cfg.epsilon_high)
                value_loss, value_metrics = value_loss_fn(values, batch["values"][rows], batch["returns"][rows], mask,
                                                          cfg.value_clip)
                loss = policy_loss - cfg.entropy_coef * masked_mean(entropy, mask) if cfg.entropy_coef else policy_loss
                if cfg.kl_coef > 0 and cfg.kl_mode == "loss":
                    kl_term, kl_metrics = kl_loss(logprobs, batch["ref_logprobs"][rows], mask, cfg.kl_estimator)
                    loss = loss + cfg.kl_coef * kl_term
                    policy_metrics.update(kl_metrics)
                if aux is not None:
                    loss = loss + self.recipe.moe.aux_loss_coef * aux
                    policy_metrics["loss/moe_aux"] = aux.item()
                if not train_policy:
                    loss = loss * 0.0  # the critic warm-up: keep the graph (DDP needs it), drop the policy gradient
                critic_loss = cfg.vf_coef * value_loss
                if self.critic is None:
                    loss = loss + critic_loss

                if not self._all_finite(loss, critic_loss):
                    logger.warning("non-finite loss at step %d (policy %s, value %s; is a reward infinite?); skipping "
                                   "the rest of this step's update", self.state.global_step + 1, policy_loss.item(),
                                   value_loss.item())
                    self._zero_grad()
                    return self._mean(logged), False

                acc.backward(loss)
                if self.critic is not None:
                    acc.backward(critic_loss)
                grad_norm = acc.clip_grad_norm_(self.module.parameters(), t.max_grad_norm)
                norms = [grad_norm]
                if self.critic is not None:
                    norms.append(acc.clip_grad_norm_(self.critic.parameters(), t.max_grad_norm))
                if not self._all_finite(*[torch.as_tensor(n) for n in norms]):
                    logger.warning("non-finite gradient norm at step %d; skipping the rest of this step's update",
                                   self.state.global_step + 1)
                    self._zero_grad()
                    return self._mean(logged), False
                if train_policy or self.critic is None:
                    self.optimizer.step()
                if self.critic is not None:
                    self.critic_optimizer.step()
                self._zero_grad()

                logged["loss/policy"].append(policy_loss.item())
                logged["loss/value"].append(value_loss.item())
                logged["policy/entropy"].append(masked_mean(entropy, mask).item())
                logged["optim/grad_norm"].append(float(grad_norm))
                if self.critic is not None:
                    logged["optim/critic_grad_norm"].append(float(norms[1]))
                for key, value in (policy_metrics | value_metrics).items():
                    logged[key].append(value)
        return self._mean(logged), True

    def _zero_grad(self) -> None:
        for optimizer in self.optimizers.values():
            optimizer.zero_grad(set_to_none=True)

    @staticmethod
    def _mean(logged: dict) -> dict:
        return {key: sum(values) / len(values) for key, values in logged.items() if values}

    # ------------------------------------------------------------------------------------------
    # The loop

    def _reduce_metrics(self, metrics: dict) -> dict:
        """Average each metric over processes (every process has the same keys); drop non-finite values."""
        keys = sorted(metrics)
        values = torch.tensor([float(metrics[k]) for k in keys], dtype=torch.float64, device=self.accelerator.device)
        finite = torch.isfinite(values)
        sums = self.accelerator.reduce(torch.stack([torch.where(finite, values, 0.0), finite.double()]),
                                       reduction="sum")
        return {k: (sums[0, i] / sums[1, i]).item() for i, k in enumerate(keys) if sums[1, i] > 0}

    def _check_scored(self, rollout: Rollout) -> bool:
        """Count steps where no completion on any process was scored; raise after MAX_BAD_STEPS in a row."""
        count = torch.tensor([float(rollout.scored.sum())], device=self.accelerator.device)
        if self.accelerator.reduce(count, reduction="sum").item() > 0:
            self._unscored_steps = 0
            return True
        self._unscored_steps += 1
        logger.warning("step %d: every reward was None; skipping the update (%d of %d such steps in a row allowed)",
                       self.state.global_step + 1, self._unscored_steps, MAX_BAD_STEPS)
        if self._unscored_steps >= MAX_BAD_STEPS:
            row = rollout.rows[0]
            values = {name: values[0] for name, values in rollout.reward_values.items()}
            raise RuntimeError(
                f"every reward was None for {MAX_BAD_STEPS} steps in a row; check the reward functions and the "
                f"dataset columns they need. Sample row: prompt={row['prompt']!r}, answer={row.get('answer')!r}, "
                f"completion={rollout.completions[0]!r}, rewards={values}")
        return False

    def _check_finite(self, finite: bool) -> None:
        if finite:
            self._bad_loss_steps = 0
            return
        self._bad_loss_steps += 1
        if self._bad_loss_steps >= MAX_BAD_STEPS:
            raise RuntimeError(f"the loss was NaN or infinite for {MAX_BAD_STEPS} steps in a row (last at step "
                               f"{self.state.global_step}); lower training.learning_rate or check the rewards for "
                               "infinite values")

    def _save(self) -> None:
        self.state.data_position = self.sampler.state_dict()
        if self.dev is not None:
            self.state.best_dev = list(self.dev.best) if self.dev.best else None
            self.state.dev_history = [list(item) for item in self.dev.history]
        save_checkpoint(self.accelerator, self.run_dir / "checkpoints", self.state, self.model, self.tokenizer,
                        self._critic_module(), self.optimizers, self.schedulers, self.recipe.training.save_total_limit)

    def _resume(self, checkpoint: str) -> None:
        self.state = load_checkpoint(self.accelerator, checkpoint, self.model, self._critic_module(), self.optimizers,
                                     self.schedulers)
        self.sampler.load_state_dict(self.state.data_position)
        if self.dev is not None:
            self.dev.history = [tuple(item) for item in self.state.dev_history]
            self.dev.best = tuple(self.state.best_dev) if self.state.best_dev else None
        logger.info("resumed from %s at step %d", checkpoint, self.state.global_step)

    def _check_dev(self) -> None:
        step, dev = self.state.global_step, self.dev
        accuracy = dev.measure(self.model)
        dev.history.append((step, accuracy))
        logger.info("step %d: dev accuracy %.1f%%", step, 100 * accuracy)
        if self.accelerator.is_main_process:
            self.metrics.write(step, {"dev/accuracy": accuracy})
        if dev.best is None or accuracy > dev.best[1]:
            dev.best = (step, accuracy)
            if self.recipe.training.keep_best and self.accelerator.is_main_process:
                model = self.model
                # Save full weights, so the best model loads without knowing the adapter's base.
                if hasattr(model, "merge_and_unload"):
                    model = copy.deepcopy(model).merge_and_unload()
                save_model_atomic(model, self.tokenizer, self.run_dir / "best")
                logger.info("new best dev accuracy %.1f%% at step %d", 100 * accuracy, step)
        self.accelerator.wait_for_everyone()

    def train(self, resume_from_checkpoint: str | None = None) -> TrainerState:
        """Run PPO steps until ``training.max_steps``; return the trainer state."""
        t, cfg, acc = self.recipe.training, self.cfg, self.accelerator
        if resume_from_checkpoint:
            self._resume(resume_from_checkpoint)
        logger.info("PPO: %d steps of %d prompts x %d samples per process, %d epochs of minibatch %d, %s critic",
                    t.max_steps, t.prompts_per_step, cfg.num_generations, cfg.epochs, cfg.minibatch_size, cfg.critic)
        while self.state.global_step < t.max_steps:
            started = time.perf_counter()
            rollout, metrics = self._rollout()
            rollout_seconds = time.perf_counter() - started
            step_ok = self._check_scored(rollout)
            if step_ok:
                batch = self._advantages(rollout)
                metrics.update(batch.pop("metrics"))
                update_metrics, finite = self._update(rollout, batch, self.state.global_step >= cfg.critic_warmup_steps)
                metrics.update(update_metrics)
                metrics["skipped"] = float(not finite)
                self._check_finite(finite)
            for scheduler in self.schedulers.values():
                scheduler.step()
            self.state.global_step += 1
            seconds = time.perf_counter() - started
            tokens = float(rollout.completion_mask.sum())
            metrics.update({"perf/tokens_per_s": tokens / seconds, "perf/step_s": seconds,
                            "perf/rollout_s": rollout_seconds, "optim/lr": self.schedulers["policy"].get_last_lr()[0]})
            metrics = self._reduce_metrics(metrics)
            # Per-process throughput averaged over processes; the run's total is that times the process count.
            metrics["perf/tokens_per_s"] *= acc.num_processes
            if acc.is_main_process and self.state.global_step % self.recipe.logging.logging_steps == 0:
                for source in self.metric_sources:
                    metrics.update(source())
                self.metrics.write(self.state.global_step, metrics)
                logger.info("step %d/%d: reward %.3f, policy loss %.4f, value loss %.4f, %.1f s",
                            self.state.global_step, t.max_steps, metrics.get("reward/mean", float("nan")),
                            metrics.get("loss/policy", float("nan")), metrics.get("loss/value", float("nan")),
                            seconds)
            if self.dev is not None and t.eval_steps > 0 and self.state.global_step % t.eval_steps == 0:
                self._check_dev()
            if t.save_steps > 0 and self.state.global_step % t.save_steps == 0:
                self._save()
        self.metrics.on_train_end(None, None, None)
        return self.state


def build_ppo_trainer(recipe: Recipe, model, tokenizer, train_records: list[dict], run_dir: Path,
                      metrics: MetricsCallback, dev_records: list[dict] | None = None,
                      metric_sources: list[Callable[[], dict]] | None = None
                      ) -> tuple[PPOTrainer, DevAccuracyCallback | None]:
    """Return a ready PPO trainer (and the dev-accuracy tracker, when the recipe asks for one)."""
    dev = None
    if recipe.training.eval_steps > 0 and dev_records:
        # Used as a container of measure(), history and best; the PPO loop calls it, not a transformers Trainer.
        dev = DevAccuracyCallback(tokenizer, dev_records, recipe.data.prompt_template, every=recipe.training.eval_steps,
                                  max_new_tokens=recipe.generation.max_completion_length, metrics=metrics)
    rows = training_rows(train_records, recipe.data.prompt_template)
    trainer = PPOTrainer(recipe, model, tokenizer, rows, run_dir, metrics, dev, metric_sources)
    return trainer, dev
