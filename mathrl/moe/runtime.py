"""Per-model and per-layer state of the runtime, and the two forwards it installs.

`MoERuntime` is the per-model context object. Transformers does not pass the attention mask to
MoE blocks. So a forward pre-hook on the model's base module (the one that receives
``attention_mask``) stores the current token layout (B, T) and the mask of real tokens on the
runtime, and a forward hook clears them when the forward ends. With activation checkpointing on
and grad enabled, the layout stays until the next forward, so that the recomputation in backward
dispatches the same tokens.

`LayerState.route` replaces each router's forward and `LayerState.run_experts` is registered as
the ``"mathrl"`` implementation of transformers' `ExpertsInterface`. Both keep transformers'
contracts: the router returns (logits, weights, indices) and the experts return (N, H).
"""

from __future__ import annotations

import logging
from typing import Callable

import torch

from mathrl.moe.config import MoEConfig
from mathrl.moe.dispatch import combine, permute, plan_dispatch
from mathrl.moe.experts import ExpertWeights, KernelChooser, expert_mlp
from mathrl.moe.replay import Routing, RoutingRecorder
from mathrl.moe.router import Gating, router_entropy, router_logits
from mathrl.moe.telemetry import LayerStats

__all__ = ["MoERuntime", "LayerState"]

logger = logging.getLogger(__name__)

_UNSET = object()


class MoERuntime:
    """Options, MoE layers, routing record/replay and the current forward's token layout of one model."""

    def __init__(self, config: MoEConfig):
        self.config = config
        self.layers: dict[int, LayerState] = {}
        self.chooser = KernelChooser(config.expert_impl)
        self.parallel = None  # mathrl.moe.parallel.engine.ExpertParallel when the experts are sharded
        self.recorder: RoutingRecorder | None = None
        self.replay: Routing | None = None
        self.forward_id = 0
        self.keep_layout = False  # True while activation checkpointing will recompute layers in backward
        self.in_forward = False
        self.batch_shape: tuple[int, int] | None = None
        self.mask: torch.Tensor | None = None  # (B, T) bool, True on real tokens
        self.forward_replay: Routing | None = None  # the replay active when the forward began
        self._token_index = _UNSET
        self._warned_mask = False

    def begin_forward(self, input_ids, inputs_embeds, attention_mask) -> None:
        """Store the token layout and the mask of the current tokens (the last T mask columns)."""
        self.forward_id += 1
        self.in_forward = True
        self.forward_replay = self.replay
        self._token_index = _UNSET
        tokens = input_ids if input_ids is not None else inputs_embeds
        self.batch_shape = tuple(tokens.shape[:2]) if tokens is not None and tokens.dim() >= 2 else None
        self.mask = None
        if attention_mask is None or self.batch_shape is None:
            return
        batch, length = self.batch_shape
        if (
            isinstance(attention_mask, torch.Tensor)
            and attention_mask.dim() == 2
            and attention_mask.shape[0] == batch
            and attention_mask.shape[1] >= length
        ):
            self.mask = attention_mask[:, -length:].bool()  # (B, T)
        elif not self._warned_mask:
            self._warned_mask = True
            shape = getattr(attention_mask, "shape", type(attention_mask).__name__)
            logger.warning(
                "attention_mask of shape %s is not a 2-D (B, >=T) mask for tokens of shape %s, so "
                "every token is dispatched; pass the 2-D mask for padding-aware dispatch",
                shape,
                self.batch_shape,
            )

    def end_forward(self) -> None:
        if not self.keep_layout:
            self.in_forward = False
            self.batch_shape = None
            self.mask = None
            self.forward_replay = None
            self._token_index = _UNSET

    def matches_layout(self, num_rows: int) -> bool:
        return self.batch_shape is not None and self.batch_shape[0] * self.batch_shape[1] == num_rows

    def real_rows(self, num_rows: int) -> torch.Tensor | None:
        """(B*T,) bool of real tokens in the current forward, or None when every row counts as real."""
        if self.mask is None or not self.matches_layout(num_rows):
            return None
        return self.mask.reshape(-1)

    def token_index(self, num_rows: int) -> torch.Tensor | None:
        """(N,) rows of the real tokens, or None when no row is padding. Syncs once per forward."""
        real = self.real_rows(num_rows) if self.config.padding_aware else None
        if real is None:
            return None
        if self._token_index is _UNSET:
            count = int(real.sum())  # one host sync per forward, shared by all layers
            self._token_index = None if count == real.numel() else real.nonzero().squeeze(1)
        return self._token_index

    def replay_indices(self, layer: int, num_rows: int) -> torch.Tensor | None:
        """(B*T, K) int64 replayed experts of `layer` for the current forward, or None without replay.

        Inside a model forward this is the replay that was active when the forward began, so that
        activation checkpointing recomputes with it even after `replay_routing` has exited.
        """
        replay = self.forward_replay if self.in_forward else self.replay
        if replay is None:
            return None
        if layer not in replay.indices:
            raise ValueError(f"the replayed routing has no entry for MoE layer {layer}")
        indices = replay.indices[layer]
        shape = tuple(indices.shape[:2])
        if (self.batch_shape is not None and shape != self.batch_shape) or shape[0] * shape[1] != num_rows:
            raise ValueError(
                f"the replayed routing has token layout {shape} but this forward has "
                f"{self.batch_shape or num_rows}; select rows and use Routing.slice or pad_to "
                "to align it"
            )
        return indices.reshape(num_rows, -1).long()


class LayerState:
    """The runtime's handle on one MoE block: its gating rule, statistics and aux losses."""

    def __init__(self, runtime: MoERuntime, layer: int, num_experts: int, make_gating: Callable[..., Gating]):
        self.runtime = runtime
        self.layer = layer
        self.num_experts = num_experts
        self.make_gating = make_gating
        self.stats = LayerStats(num_experts)
        self.aux_losses: list[torch.Tensor] = []

    def route(self, router: torch.nn.Module, hidden_states: torch.Tensor):
        """Router forward: fp32 logits, top-k (or replayed) experts and their weights.

        Shapes: hidden_states (..., H) -> logits (N, E) fp32, weights (N, K) fp32, indices (N, K).
        """
        runtime, config = self.runtime, self.runtime.config
        hidden = hidden_states.reshape(-1, hidden_states.shape[-1])  # (N, H)
        dtype = getattr(torch, config.router_dtype)
        logits = router_logits(hidden, router.weight, getattr(router, "bias", None), dtype)  # (N, E)
        gating = self.make_gating(router)
        real = runtime.real_rows(hidden.shape[0])  # (N,) or None
        replayed = runtime.replay_indices(self.layer, hidden.shape[0])

        if replayed is None:
            weights, indices = gating.select(logits)
        else:
            fresh = gating.choose(logits.detach())
            valid = (replayed >= 0).all(dim=-1)  # (N,) rows that were recorded
            indices = torch.where(valid.unsqueeze(-1), replayed, fresh)
            weights = gating.weights_for(logits, indices)
            if config.telemetry:
                compared = valid if real is None else valid & real
                changed = (indices.sort(dim=-1).values != fresh.sort(dim=-1).values).any(dim=-1) & compared
                self.stats.add_route_change(changed.sum(), compared.sum())

        if runtime.recorder is not None:
            layout = runtime.batch_shape if runtime.matches_layout(hidden.shape[0]) else None
            runtime.recorder.add(runtime.forward_id, self.layer, indices, layout, real, self.num_experts)
        if config.telemetry:
            with torch.no_grad():
                entropy = router_entropy(gating.probs(logits))  # (N,)
                if real is None:
                    self.stats.add_entropy(entropy.sum(), entropy.new_full((), entropy.numel()))
                else:
                    self.stats.add_entropy((entropy * real).sum(), real.sum())
        if torch.is_grad_enabled() and (config.aux_loss_coef > 0 or config.z_loss_coef > 0):
            self.aux_losses.append(self._aux_loss(gating, logits, indices, real))
        return logits, weights, indices

    def _aux_loss(self, gating: Gating, logits, indices, real) -> torch.Tensor:
        """Switch-style load-balancing loss E * sum_e f_e * P_e and router z-loss, over real tokens."""
        config = self.runtime.config
        weight = torch.ones(logits.shape[0], device=logits.device) if real is None else real.float()  # (N,)
        count = weight.sum().clamp_min(1.0)
        loss = logits.new_zeros(())
        if config.aux_loss_coef > 0:
            mean_prob = (gating.probs(logits) * weight.unsqueeze(-1)).sum(0) / count  # (E,)
            top_k = indices.shape[-1]
            share = torch.zeros(self.num_experts, device=logits.device).index_add_(
                0, indices.reshape(-1), weight.repeat_interleave(top_k)
            ) / (count * top_k)  # (E,)
            loss = loss + config.aux_loss_coef * self.num_experts * (share * mean_prob).sum()
        if config.z_loss_coef > 0:
            z = torch.logsumexp(logits, dim=-1).pow(2)  # (N,)
            loss = loss + config.z_loss_coef * (z * weight).sum() / count
        return loss

    def run_experts(
        self,
        experts: torch.nn.Module,
        hidden_states: torch.Tensor,
        top_k_index: torch.Tensor,
        top_k_weights: torch.Tensor,
    ) -> torch.Tensor:
        """Experts forward: drop padding, dispatch, expert MLPs, combine. Shapes: (N, H), (N, K) -> (N, H)."""
        runtime, config = self.runtime, self.runtime.config
        num_rows = hidden_states.shape[0]
        token_index = runtime.token_index(num_rows)
        if token_index is not None:  # padding tokens are not dispatched at all
            hidden = hidden_states.index_select(0, token_index)  # (N_real, H)
            top_k_index = top_k_index.index_select(0, token_index)
            top_k_weights = top_k_weights.index_select(0, token_index)
        else:
            hidden = hidden_states

        plan = plan_dispatch(top_k_index, self.num_experts, config.capacity_mode, config.capacity_factor)
        dispatched = permute(hidden, plan)  # (S, H)
        if runtime.parallel is not None:  # experts sharded over ranks: all-to-all or all-gather
            expert_out = runtime.parallel.run(
                self.layer, experts, dispatched, plan, runtime.chooser
            )  # (S, H)
        else:
            weights = ExpertWeights.from_module(experts)
            kernel = runtime.chooser.choose(dispatched, weights, plan)
            expert_out = expert_mlp(dispatched, weights, plan, kernel)  # (S, H)
        out_dtype = torch.promote_types(expert_out.dtype, top_k_weights.dtype)
        out = combine(expert_out, top_k_weights, plan, out_dtype)  # (N_real, H)

        if token_index is not None:
            out = out.new_zeros(num_rows, out.shape[-1]).index_copy(0, token_index, out)  # (N, H)
        if config.telemetry:
            self.stats.add_load(plan.requested, plan.dropped)
        return out.to(hidden_states.dtype)
