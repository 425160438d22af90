"""Top-k gating rules of the supported MoE families, computed from router logits in fp32.

Each rule turns router logits into a fresh selection (`select`) and recomputes the routing weights
of any given selection (`weights_for`), so that a replayed selection still gets its weights, and
their gradient, from the current router output.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from mathrl.registry import Registry

__all__ = ["Gating", "SoftmaxTopK", "TopKSoftmax", "SigmoidGroupTopK", "GATINGS", "router_entropy"]

GATINGS: Registry[type["Gating"]] = Registry("gating rule")


class Gating:
    """A gating rule. Shapes: logits (N, E) fp32; indices (N, K) int64; weights (N, K) fp32."""

    top_k: int

    def select(self, logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Return (weights, indices) of the top-k experts of each row."""
        indices = self.choose(logits)
        return self.weights_for(logits, indices), indices

    def choose(self, logits: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def weights_for(self, logits: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def probs(self, logits: torch.Tensor) -> torch.Tensor:
        """Return the per-expert routing distribution (rows sum to 1), used by telemetry and aux loss."""
        return torch.softmax(logits, dim=-1)


@GATINGS.register("softmax_topk")
@dataclass
class SoftmaxTopK(Gating):
    """Softmax over all experts, then top-k, optionally renormalised (Qwen2/3-MoE, Mixtral, OLMoE)."""

    top_k: int
    norm_topk_prob: bool

    def select(self, logits):
        probs = torch.softmax(logits, dim=-1)
        # Top-k of the probabilities, not the logits, so that rounding ties break as in transformers.
        indices = torch.topk(probs.detach(), self.top_k, dim=-1).indices
        return self._normalise(probs.gather(1, indices)), indices

    def choose(self, logits):
        return torch.topk(torch.softmax(logits, dim=-1), self.top_k, dim=-1).indices

    def weights_for(self, logits, indices):
        return self._normalise(torch.softmax(logits, dim=-1).gather(1, indices))  # (N, K)

    def _normalise(self, weights):
        if self.norm_topk_prob:
            weights = weights / weights.sum(dim=-1, keepdim=True)
        return weights


@GATINGS.register("topk_softmax")
@dataclass
class TopKSoftmax(Gating):
    """Top-k of the logits, then a softmax over the k chosen logits (GPT-OSS)."""

    top_k: int

    def choose(self, logits):
        return torch.topk(logits, self.top_k, dim=-1).indices

    def weights_for(self, logits, indices):
        return torch.softmax(logits.gather(1, indices), dim=-1)


@GATINGS.register("sigmoid_group_topk")
@dataclass
class SigmoidGroupTopK(Gating):
    """Group-limited top-k over sigmoid scores plus a correction bias (DeepSeek-V3).

    Only experts of the best `topk_group` of `n_group` groups compete, and a group scores the sum
    of its two best experts. The weights are the chosen sigmoid scores without the bias, optionally
    renormalised, times `routed_scaling_factor`.
    """

    top_k: int
    n_group: int
    topk_group: int
    norm_topk_prob: bool
    routed_scaling_factor: float
    correction_bias: torch.Tensor | None = None  # (E,), a buffer of the router module

    def choose(self, logits):
        with torch.no_grad():
            scores = logits.sigmoid()
            if self.correction_bias is not None:
                scores = scores + self.correction_bias.float()
            num_tokens, num_experts = scores.shape
            if self.n_group > 1:
                grouped = scores.view(num_tokens, self.n_group, num_experts // self.n_group)
                group_scores = grouped.topk(min(2, grouped.shape[-1]), dim=-1).values.sum(
                    dim=-1
                )  # (N, groups)
                group_idx = torch.topk(group_scores, k=self.topk_group, dim=-1, sorted=False).indices
                group_mask = torch.zeros_like(group_scores, dtype=torch.bool).scatter_(1, group_idx, True)
                expert_mask = group_mask.unsqueeze(-1).expand_as(grouped).reshape(num_tokens, num_experts)
                scores = scores.masked_fill(~expert_mask, float("-inf"))
            return torch.topk(scores, k=self.top_k, dim=-1, sorted=False).indices

    def weights_for(self, logits, indices):
        weights = logits.sigmoid().gather(1, indices)
        if self.norm_topk_prob:
            weights = weights / (weights.sum(dim=-1, keepdim=True) + 1e-20)
        return weights * self.routed_scaling_factor

    def probs(self, logits):
        scores = logits.sigmoid()
        return scores / scores.sum(dim=-1, keepdim=True)


def router_entropy(probs: torch.Tensor) -> torch.Tensor:
    """Return the entropy in nats of each row of a distribution. Shapes: (N, E) -> (N,)."""
    return torch.special.entr(probs).sum(dim=-1)


def router_logits(
    hidden_states: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, dtype: torch.dtype
) -> torch.Tensor:
    """Compute router logits in `dtype` (fp32 by default). Shapes: (N, H) -> (N, E)."""
    bias = None if bias is None else bias.to(dtype)
    return F.linear(hidden_states.to(dtype), weight.to(dtype), bias)
