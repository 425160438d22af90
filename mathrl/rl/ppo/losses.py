"""PPO loss terms as pure functions returning ``(loss, metrics)``, with registries for each kind.

Shapes: ``R`` rows (completions) of ``T`` completion tokens; every mask is 1 on tokens that count.
Losses are token means over the mask, so a minibatch of long completions does not outweigh one of
short completions per token.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from mathrl.registry import Registry
from mathrl.rl.ppo.gae import masked_mean, masked_var

__all__ = ["POLICY_LOSSES", "VALUE_LOSSES", "KL_ESTIMATORS", "clipped_policy_loss", "clipped_value_loss",
           "kl_loss", "entropy_from_logits", "explained_variance"]

LossFn = Callable[..., tuple[torch.Tensor, dict[str, float]]]

POLICY_LOSSES: Registry[LossFn] = Registry("policy loss")
VALUE_LOSSES: Registry[LossFn] = Registry("value loss")
KL_ESTIMATORS: Registry[Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = Registry("KL estimator")


# Per-token estimators of KL(policy || reference) from log-probabilities of tokens sampled from the
# policy (J. Schulman, "Approximating KL divergence", 2020): k1 is unbiased but can be negative,
# k2 is biased with low variance, k3 is unbiased and never negative.
@KL_ESTIMATORS.register("k1")
def kl_k1(logprobs: torch.Tensor, ref_logprobs: torch.Tensor) -> torch.Tensor:
    return logprobs - ref_logprobs


@KL_ESTIMATORS.register("k2")
def kl_k2(logprobs: torch.Tensor, ref_logprobs: torch.Tensor) -> torch.Tensor:
    return 0.5 * (logprobs - ref_logprobs) ** 2


@KL_ESTIMATORS.register("k3")
def kl_k3(logprobs: torch.Tensor, ref_logprobs: torch.Tensor) -> torch.Tensor:
    # Clamped so a token the reference finds very unlikely cannot overflow exp().
    log_ratio = (ref_logprobs - logprobs).clamp(-20.0, 20.0)
    return torch.exp(log_ratio) - log_ratio - 1


@POLICY_LOSSES.register("clip")
def clipped_policy_loss(logprobs: torch.Tensor, old_logprobs: torch.Tensor, advantages: torch.Tensor,
                        mask: torch.Tensor, epsilon: float = 0.2,
                        epsilon_high: float | None = None) -> tuple[torch.Tensor, dict[str, float]]:
    """Clipped surrogate objective, negated: ``-min(ratio * A, clip(ratio, 1 - eps, 1 + eps_high) * A)``.

    Metrics: ``clip/frac_low`` (tokens with A < 0 held at 1 - eps), ``clip/frac_high`` (A > 0 held at
    1 + eps_high) and ``policy/approx_kl`` (the k3 estimate of KL(old || new)).
    """
    epsilon_high = epsilon if epsilon_high is None else epsilon_high
    log_ratio = logprobs - old_logprobs
    ratio = torch.exp(log_ratio)
    clipped = ratio.clamp(1 - epsilon, 1 + epsilon_high)
    loss = masked_mean(torch.maximum(-advantages * ratio, -advantages * clipped), mask)
    with torch.no_grad():
        low = ((ratio < 1 - epsilon) & (advantages < 0)).to(ratio.dtype)
        high = ((ratio > 1 + epsilon_high) & (advantages > 0)).to(ratio.dtype)
        metrics = {
            "clip/frac_low": masked_mean(low, mask).item(),
            "clip/frac_high": masked_mean(high, mask).item(),
            "policy/approx_kl": masked_mean((ratio - 1) - log_ratio, mask).item(),
        }
    return loss, metrics


@VALUE_LOSSES.register("clipped")
def clipped_value_loss(values: torch.Tensor, old_values: torch.Tensor, returns: torch.Tensor, mask: torch.Tensor,
                       clip: float | None = 0.2) -> tuple[torch.Tensor, dict[str, float]]:
    """Half the squared error to the returns; with ``clip``, the larger of the plain and clipped errors.

    The clipped prediction is ``old_values + clamp(values - old_values, -clip, clip)``, so one update
    cannot move a value far from its rollout estimate. Metric ``value/clip_frac``: tokens where the
    clipped error was the larger one.
    """
    error = (values - returns) ** 2
    if clip is None:
        loss = 0.5 * masked_mean(error, mask)
        return loss, {"value/clip_frac": 0.0}
    clipped_values = old_values + (values - old_values).clamp(-clip, clip)
    clipped_error = (clipped_values - returns) ** 2
    loss = 0.5 * masked_mean(torch.maximum(error, clipped_error), mask)
    with torch.no_grad():
        frac = masked_mean((clipped_error > error).to(values.dtype), mask).item()
    return loss, {"value/clip_frac": frac}


def kl_loss(logprobs: torch.Tensor, ref_logprobs: torch.Tensor, mask: torch.Tensor,
            estimator: str = "k3") -> tuple[torch.Tensor, dict[str, float]]:
    """Token mean of the KL estimate between the policy and the reference (unweighted)."""
    kl = masked_mean(KL_ESTIMATORS.get(estimator)(logprobs, ref_logprobs), mask)
    return kl, {"loss/kl": kl.item()}


def entropy_from_logits(logits: torch.Tensor) -> torch.Tensor:
    """Entropy of the categorical distribution at each position; (..., V) -> (...)."""
    log_probs = torch.log_softmax(logits.float(), dim=-1)
    return -(log_probs.exp() * log_probs).sum(-1)


def explained_variance(values: torch.Tensor, returns: torch.Tensor, mask: torch.Tensor) -> float:
    """1 - Var(returns - values) / Var(returns) over the mask: 1 is a perfect critic, 0 no better than a constant."""
    var_returns = masked_var(returns, mask)
    if var_returns.item() == 0:
        return float("nan")
    return (1 - masked_var(returns - values, mask) / var_returns).item()
