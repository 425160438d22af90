"""Sort-based dispatch and combine of routed tokens, with capacity modes.

Dispatch sorts the N*K (token, expert) assignments by expert and gathers the token rows in that
order, so that each expert's tokens are contiguous. Combine multiplies each expert output row by
its routing weight and adds it back to its token row with `index_add`. No step builds a one-hot
(N, E) or (N, E, C) tensor.

Legend: a *slot* is one assignment of a token to one of its K experts, ``slot = token * K + k``
(the row-major flattening of the (N, K) top-k tensors). Under a fixed capacity, every token's
first choice has priority over all second choices, then token order (batch-priority routing as
in GShard).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from mathrl.moe.config import CapacityMode

__all__ = ["DispatchPlan", "plan_dispatch", "permute", "combine", "fixed_capacity"]


@dataclass
class DispatchPlan:
    """Destination of each kept slot. S is the number of kept slots (N*K when nothing is dropped)."""

    num_tokens: int  # N
    top_k: int  # K
    num_experts: int  # E
    slot_order: torch.Tensor  # (S,) kept slot ids, sorted by expert
    token_index: torch.Tensor  # (S,) token row of each sorted slot
    expert_index: torch.Tensor  # (S,) expert of each sorted slot, non-decreasing
    counts: torch.Tensor  # (E,) kept slots per expert (int64, on device)
    requested: torch.Tensor  # (E,) routed slots per expert before capacity drops
    dropped: torch.Tensor | None  # () slots dropped by the capacity; None when nothing can drop
    capacity: int | None  # C, the slots each expert may take; None when dropless

    @property
    def offsets(self) -> torch.Tensor:
        """End of each expert's group in the sorted order, int32 as `torch.nn.functional.grouped_mm` needs."""
        return torch.cumsum(self.counts, dim=0, dtype=torch.int32)

    def positions(self) -> torch.Tensor:
        """Position of each sorted slot inside its expert's group. Shape (S,)."""
        starts = torch.cumsum(self.counts, dim=0) - self.counts  # (E,)
        return torch.arange(self.slot_order.numel(), device=self.counts.device) - starts[self.expert_index]


def fixed_capacity(num_slots: int, num_experts: int, capacity_factor: float) -> int:
    """Return ceil(capacity_factor * N*K / E), the per-expert capacity of CapacityMode.FIXED."""
    return max(1, math.ceil(capacity_factor * num_slots / num_experts))


def _count(expert_ids: torch.Tensor, num_experts: int) -> torch.Tensor:
    if expert_ids.device.type == "cpu":
        return torch.bincount(expert_ids, minlength=num_experts)
    # scatter_add instead of bincount: bincount sizes its result from the data, a host sync on CUDA.
    counts = torch.zeros(num_experts, dtype=torch.int64, device=expert_ids.device)
    return counts.scatter_add_(0, expert_ids, torch.ones_like(expert_ids))


def plan_dispatch(
    top_k_index: torch.Tensor,
    num_experts: int,
    capacity_mode: CapacityMode = CapacityMode.DROPLESS,
    capacity_factor: float = 1.25,
) -> DispatchPlan:
    """Sort the assignments of `top_k_index` by expert and apply the capacity mode.

    Shapes: top_k_index (N, K) -> a plan over S <= N*K kept slots. Dropless mode does not sync
    with the host; adaptive mode reads the max load and fixed mode the kept count (one sync each).
    """
    num_tokens, top_k = top_k_index.shape
    expert_ids = top_k_index.reshape(-1).long()  # (N*K,) expert of each slot
    requested = _count(expert_ids, num_experts)  # (E,)
    mode = CapacityMode(capacity_mode)
    capacity = None
    dropped = None
    counts = requested

    if mode is CapacityMode.FIXED:
        # Sort by (expert, k, token) so that the first positions of each group, the kept ones, go
        # to first choices.
        rank = torch.arange(top_k, device=expert_ids.device).repeat(num_tokens)  # (N*K,) k of each slot
        _, slot_order = torch.sort(expert_ids * top_k + rank, stable=True)
        expert_sorted = expert_ids[slot_order]
        capacity = fixed_capacity(expert_ids.numel(), num_experts, capacity_factor)
        starts = torch.cumsum(requested, dim=0) - requested
        position = torch.arange(expert_ids.numel(), device=expert_ids.device) - starts[expert_sorted]
        keep = position < capacity
        counts = requested.clamp(max=capacity)
        dropped = (~keep).sum()
        slot_order = slot_order[keep]  # host sync: the kept count sizes the result
        expert_sorted = expert_sorted[keep]
    else:
        expert_sorted, slot_order = torch.sort(expert_ids, stable=True)  # (N*K,)
        if mode is CapacityMode.ADAPTIVE:
            capacity = int(requested.max())  # host sync: the smallest capacity that drops nothing

    return DispatchPlan(
        num_tokens=num_tokens,
        top_k=top_k,
        num_experts=num_experts,
        slot_order=slot_order,
        token_index=torch.div(slot_order, top_k, rounding_mode="floor"),
        expert_index=expert_sorted,
        counts=counts,
        requested=requested,
        dropped=dropped,
        capacity=capacity,
    )


def permute(hidden_states: torch.Tensor, plan: DispatchPlan) -> torch.Tensor:
    """Gather token rows in expert order. Shapes: (N, H) -> (S, H)."""
    return hidden_states.index_select(0, plan.token_index)


def combine(
    expert_output: torch.Tensor,
    top_k_weights: torch.Tensor,
    plan: DispatchPlan,
    out_dtype: torch.dtype | None = None,
) -> torch.Tensor:
    """Weight each expert output row and add it to its token row. Shapes: (S, H), (N, K) -> (N, H).

    The sum runs in the promoted dtype of outputs and weights (fp32 with an fp32 router), and rows
    of tokens whose every slot was dropped stay zero.
    """
    slot_weights = top_k_weights.reshape(-1).index_select(0, plan.slot_order)  # (S,)
    weighted = expert_output * slot_weights.unsqueeze(-1)  # (S, H)
    dtype = out_dtype or weighted.dtype
    out = torch.zeros(plan.num_tokens, expert_output.shape[-1], dtype=dtype, device=expert_output.device)
    return out.index_add(0, plan.token_index, weighted.to(dtype))  # (N, H)
