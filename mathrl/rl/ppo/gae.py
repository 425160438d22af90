"""Advantage estimation for PPO on token sequences: GAE, token-level rewards and whitening.

Every function is pure: tensors in, tensors out. Shapes use ``R`` for rollout rows (``B*G``
completions) and ``T`` for completion tokens; masks are 1 on real completion tokens.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from mathrl.registry import Registry

__all__ = ["ADVANTAGE_ESTIMATORS", "gae", "token_rewards", "masked_mean", "masked_var", "whiten"]

AdvantageEstimator = Callable[..., tuple[torch.Tensor, torch.Tensor]]

ADVANTAGE_ESTIMATORS: Registry[AdvantageEstimator] = Registry("advantage estimator")


def masked_mean(x: torch.Tensor, mask: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    """Mean of ``x`` over positions where ``mask`` is 1; 0 where the mask is empty."""
    mask = mask.to(x.dtype)
    if dim is None:
        return (x * mask).sum() / mask.sum().clamp(min=1)
    return (x * mask).sum(dim) / mask.sum(dim).clamp(min=1)


def masked_var(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Population variance of ``x`` over positions where ``mask`` is 1."""
    mean = masked_mean(x, mask)
    return masked_mean((x - mean) ** 2, mask)


def whiten(x: torch.Tensor, mask: torch.Tensor, mean: torch.Tensor | None = None, var: torch.Tensor | None = None,
           shift_mean: bool = True, eps: float = 1e-8) -> torch.Tensor:
    """Scale ``x`` to unit variance (and zero mean unless ``shift_mean`` is False) over the masked positions.

    ``mean`` and ``var`` override the local statistics, e.g. with values reduced over all processes.
    Masked-out positions come back as 0.
    """
    mean = masked_mean(x, mask) if mean is None else mean
    var = masked_var(x, mask) if var is None else var
    out = (x - mean) * torch.rsqrt(var + eps)
    if not shift_mean:
        out = out + mean
    return out * mask.to(x.dtype)


def token_rewards(scores: torch.Tensor, mask: torch.Tensor, kl: torch.Tensor | None = None,
                  kl_coef: float = 0.0) -> torch.Tensor:
    """Spread sequence scores over tokens: each score on its row's last real token, minus ``kl_coef * kl`` per token.

    ``scores``: (R,), ``mask``: (R, T), ``kl``: (R, T) or None. Rows whose mask is empty get no score.
    """
    mask = mask.to(scores.dtype)
    rewards = torch.zeros_like(mask)  # (R, T)
    lengths = mask.sum(dim=1).long()
    # Index of the last 1 in each row (masks may have gaps, so take the max position, not length - 1).
    positions = torch.arange(mask.shape[1], device=mask.device).expand_as(mask)
    last = torch.where(mask.bool(), positions, -1).max(dim=1).values
    rows = torch.nonzero(lengths > 0).squeeze(1)
    rewards[rows, last[rows]] = scores[rows]
    if kl is not None and kl_coef:
        rewards = rewards - kl_coef * kl * mask
    return rewards


@ADVANTAGE_ESTIMATORS.register("gae")
def gae(rewards: torch.Tensor, values: torch.Tensor, mask: torch.Tensor, gamma: float = 1.0,
        lam: float = 0.95) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimation over the masked tokens of each row; return (advantages, returns).

    ``rewards``, ``values``, ``mask``: (R, T). The recursion runs backwards over T, vectorised over R.
    A masked-out token is skipped: it passes the running value and advantage on unchanged, so gaps
    in a mask behave as if the masked tokens were removed. The value after a row's last real token
    is 0 (the episode ends there). Masked positions of the outputs are 0.
    """
    mask = mask.to(values.dtype)
    num_rows, num_tokens = values.shape
    advantages = torch.zeros_like(values)
    next_value = values.new_zeros(num_rows)  # V(s_{t+1}) of the next real token
    running = values.new_zeros(num_rows)  # A_{t+1} of the next real token
    for t in reversed(range(num_tokens)):
        m = mask[:, t]
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        advantage = delta + gamma * lam * running
        running = m * advantage + (1 - m) * running
        next_value = m * values[:, t] + (1 - m) * next_value
        advantages[:, t] = m * advantage
    returns = (advantages + values) * mask
    return advantages, returns
