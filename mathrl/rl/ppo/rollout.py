"""PPO rollouts: the prompt order (and its position, for resuming), sampling completions, and scoring them.

Shapes: ``R`` rollout rows (prompts times samples), ``P`` padded prompt tokens, ``T`` completion
tokens, ``S = P + T``. Prompts are left-padded and completions right-padded, so every completion
starts at column ``P``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from mathrl.data.prompts import to_trl_rows

__all__ = ["PromptSampler", "Rollout", "training_rows", "generate_rollout", "score_completions", "token_logprobs"]

logger = logging.getLogger(__name__)


def training_rows(records: list[dict], template: str) -> list[dict]:
    """Return one row per problem: the chat prompt plus every record field, which the rewards receive
    as columns (``prompt`` arrives as ``prompts``)."""
    return [{key: value for key, value in row.items() if value is not None} for row in to_trl_rows(records, template)]


class PromptSampler:
    """Hand each process its share of a shuffled prompt order, one step at a time.

    Each epoch is a fresh permutation drawn from ``seed + epoch``; a step takes the next
    ``prompts_per_step * num_processes`` prompts, and process ``i`` takes the ``i``-th slice. Prompts
    left over at the end of an epoch (fewer than one step's worth) are skipped. ``state_dict`` is the
    data position that a checkpoint stores.
    """

    def __init__(self, num_rows: int, prompts_per_step: int, num_processes: int = 1, process_index: int = 0,
                 seed: int = 0):
        self.per_step = prompts_per_step * num_processes
        if num_rows < self.per_step:
            raise ValueError(f"{num_rows} training prompts are fewer than one step needs (training.prompts_per_step="
                             f"{prompts_per_step} x {num_processes} processes); add data or lower prompts_per_step")
        self.num_rows = num_rows
        self.prompts_per_step = prompts_per_step
        self.process_index = process_index
        self.seed = seed
        self.epoch = 0
        self.cursor = 0
        self._order = self._permutation()

    def _permutation(self) -> list[int]:
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        return torch.randperm(self.num_rows, generator=generator).tolist()

    def next_indices(self) -> list[int]:
        if self.cursor + self.per_step > self.num_rows:
            self.epoch += 1
            self.cursor = 0
            self._order = self._permutation()
        start = self.cursor + self.process_index * self.prompts_per_step
        self.cursor += self.per_step
        return self._order[start : start + self.prompts_per_step]

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "cursor": self.cursor, "seed": self.seed, "num_rows": self.num_rows}

    def load_state_dict(self, state: dict) -> None:
        if state["num_rows"] != self.num_rows or state["seed"] != self.seed:
            raise ValueError(f"checkpoint data position is for {state['num_rows']} prompts with seed {state['seed']}, "
                             f"but this run has {self.num_rows} prompts with seed {self.seed}; resume with the same data")
        self.epoch, self.cursor = state["epoch"], state["cursor"]
        self._order = self._permutation()


@dataclass
class Rollout:
    """Sampled completions of one step on one process."""

    input_ids: torch.Tensor  # (R, S)
    attention_mask: torch.Tensor  # (R, S)
    completion_mask: torch.Tensor  # (R, T), 1 up to and including the end-of-sequence token
    prompt_length: int  # P
    completions: list[str]
    rows: list[dict]  # the training row of each completion (a prompt's row repeated per sample)
    truncated: torch.Tensor  # (R,) bool: no end-of-sequence token within the length limit
    scores: torch.Tensor | None = None  # (R,) weighted reward sum; 0 where unscored
    scored: torch.Tensor | None = None  # (R,) bool: every reward function gave a value
    reward_values: dict[str, list[float | None]] = field(default_factory=dict)


def _eos_ids(model, tokenizer) -> set[int]:
    ids = {tokenizer.eos_token_id}
    configured = getattr(model.generation_config, "eos_token_id", None)
    if isinstance(configured, int):
        ids.add(configured)
    elif configured:
        ids.update(configured)
    ids.discard(None)
    return ids


@torch.no_grad()
def generate_rollout(model, tokenizer, rows: list[dict], samples: int, max_new_tokens: int, temperature: float,
                     top_p: float, device: torch.device) -> Rollout:
    """Sample ``samples`` completions for each row's prompt with ``model`` (unwrapped, in eval mode)."""
    texts = [tokenizer.apply_chat_template(row["prompt"], tokenize=False, add_generation_prompt=True) for row in rows]
    batch = tokenizer(texts, return_tensors="pt", padding=True, padding_side="left",
                      add_special_tokens=False).to(device)
    output = model.generate(**batch, max_new_tokens=max_new_tokens, num_return_sequences=samples, do_sample=True,
                            temperature=temperature, top_p=top_p, top_k=None, pad_token_id=tokenizer.pad_token_id,
                            eos_token_id=sorted(_eos_ids(model, tokenizer)))  # (R, S)
    prompt_length = batch["input_ids"].shape[1]
    completion_ids = output[:, prompt_length:]  # (R, T)

    # Real completion tokens run up to and including the first end-of-sequence token; generate pads after it.
    is_eos = torch.zeros_like(completion_ids, dtype=torch.bool)
    for eos in _eos_ids(model, tokenizer):
        is_eos |= completion_ids == eos
    num_tokens = completion_ids.shape[1]
    positions = torch.arange(num_tokens, device=device).expand_as(completion_ids)
    first_eos = torch.where(is_eos, positions, num_tokens).min(dim=1).values  # (R,)
    completion_mask = (positions <= first_eos[:, None]).long()
    prompt_mask = batch["attention_mask"].repeat_interleave(samples, dim=0)
    decoded = tokenizer.batch_decode(completion_ids * completion_mask + tokenizer.pad_token_id * (1 - completion_mask),
                                     skip_special_tokens=True)
    return Rollout(
        input_ids=output,
        attention_mask=torch.cat([prompt_mask, completion_mask], dim=1),
        completion_mask=completion_mask,
        prompt_length=prompt_length,
        completions=decoded,
        rows=[row for row in rows for _ in range(samples)],
        truncated=first_eos >= num_tokens,
    )


def score_completions(rollout: Rollout, reward_funcs: list[Callable], weights: list[float]) -> dict[str, float]:
    """Score the rollout's completions in place (``scores``, ``scored``, ``reward_values``); return reward metrics.

    A row that any reward function left unscored (None) is unscored as a whole, because a partial
    sum would shift its reward. Its score is 0 and the trainer masks it out of every loss.
    """
    completions = [[{"role": "assistant", "content": text}] for text in rollout.completions]
    columns: dict[str, list] = {}
    for key in sorted({key for row in rollout.rows for key in row}):
        columns["prompts" if key == "prompt" else key] = [row.get(key) for row in rollout.rows]
    # Token ids up to and including the first end-of-sequence token, as TRL passes them to GRPO rewards.
    completion_tokens = rollout.input_ids[:, rollout.prompt_length:]
    columns["completion_ids"] = [
        ids[mask.bool()].tolist() for ids, mask in zip(completion_tokens, rollout.completion_mask)
    ]
    metrics: dict[str, float] = {}
    logged: dict[str, float] = {}
    num_rows = len(completions)
    total = torch.zeros(num_rows, dtype=torch.float64)
    scored = torch.ones(num_rows, dtype=torch.bool)
    for fn, weight in zip(reward_funcs, weights):
        values = fn(completions=completions, log_metric=logged.__setitem__, **columns)
        name = fn.__name__
        rollout.reward_values[name] = values
        present = [v for v in values if v is not None]
        metrics[f"reward/{name}/mean"] = sum(present) / len(present) if present else float("nan")
        metrics[f"reward/{name}/frac_none"] = 1 - len(present) / max(num_rows, 1)
        for i, value in enumerate(values):
            if value is None:
                scored[i] = False
            else:
                total[i] += weight * value
    metrics.update({k: v for k, v in logged.items() if k not in metrics})
    rollout.scored = scored
    rollout.scores = torch.where(scored, total, 0.0).float()
    metrics["reward/frac_none"] = 1 - scored.float().mean().item()
    metrics["reward/mean"] = rollout.scores[scored].mean().item() if scored.any() else float("nan")
    return metrics


def token_logprobs(logits: torch.Tensor, input_ids: torch.Tensor, temperature: float) -> torch.Tensor:
    """Log-probabilities of the tokens that follow each logit position: (R, T+1, V) logits for the last T+1 positions
    of ``input_ids`` (R, S) -> (R, T).

    Logits are divided by the sampling temperature, so the log-probabilities are those of the
    distribution the completions were drawn from.
    """
    logits = logits[:, :-1].float() / temperature  # (R, T, V)
    targets = input_ids[:, -logits.shape[1]:]  # (R, T)
    picked = logits.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    return picked - torch.logsumexp(logits, dim=-1)
