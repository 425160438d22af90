"""Expert MLPs on dispatched tokens: grouped matmul, padded batched matmul or a per-expert loop.

All three kernels take the tokens in expert order (see `dispatch`). None of them indexes the 3-D
expert weights per expert under autograd, because the backward of ``weight[e]`` allocates a
gradient the size of all experts for every expert. At 64 experts that cost dominates the backward
of transformers' eager experts (see benchmarks/moe_layer.py). `KernelChooser` measures the kernels
once per shape bucket and caches the fastest.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

from mathrl.moe.dispatch import DispatchPlan, plan_dispatch
from mathrl.registry import Registry

__all__ = ["ExpertWeights", "KERNELS", "KernelChooser", "expert_mlp", "grouped_mm_applies"]

logger = logging.getLogger(__name__)

Kernel = Callable[[torch.Tensor, "ExpertWeights", DispatchPlan], torch.Tensor]
KERNELS: Registry[Kernel] = Registry("expert kernel")


@dataclass
class ExpertWeights:
    """Views of one layer's expert weights in input-major layout, whatever the checkpoint stores."""

    up: torch.Tensor  # (E, H, 2I) with a gate, (E, H, I) without
    down: torch.Tensor  # (E, I, H)
    up_bias: torch.Tensor | None  # (E, 2I) or (E, I)
    down_bias: torch.Tensor | None  # (E, H)
    activation: Callable[[torch.Tensor], torch.Tensor]  # (..., 2I) -> (..., I), or the plain activation

    @classmethod
    def from_module(cls, experts: torch.nn.Module) -> "ExpertWeights":
        """Read a transformers experts module decorated with `use_experts_implementation`."""
        has_gate = getattr(experts, "has_gate", True)
        has_bias = getattr(experts, "has_bias", False)
        name = "gate_up_proj" if has_gate else "up_proj"
        up, down = getattr(experts, name), experts.down_proj
        if not getattr(experts, "is_transposed", False):  # stored (E, out, in): take transposed views
            up, down = up.transpose(1, 2), down.transpose(1, 2)
        return cls(
            up=up,
            down=down,
            up_bias=getattr(experts, f"{name}_bias") if has_bias else None,
            down_bias=experts.down_proj_bias if has_bias else None,
            activation=experts._apply_gate if has_gate else experts.act_fn,
        )

    @property
    def num_experts(self) -> int:
        return self.up.shape[0]


def _aligned(tensor: torch.Tensor) -> bool:
    size = tensor.element_size()
    strides_ok = all(stride == 1 or (stride * size) % 16 == 0 for stride in tensor.stride())
    return strides_ok and tensor.data_ptr() % 16 == 0


def grouped_mm_applies(x: torch.Tensor, weights: ExpertWeights) -> bool:
    """Check whether `torch.nn.functional.grouped_mm` accepts these operands.

    On CPU (torch 2.13) it needs 16-byte-aligned strides and data pointers; on CUDA it needs bf16
    and compute capability 8.0 or newer.
    """
    if not hasattr(F, "grouped_mm"):
        return False
    if x.device.type == "cuda":
        return x.dtype == torch.bfloat16 and torch.cuda.get_device_capability(x.device) >= (8, 0)
    row_bytes_ok = (weights.down.shape[1] * x.element_size()) % 16 == 0  # the activation output (S, I)
    return (
        x.device.type == "cpu"
        and _aligned(x)
        and _aligned(weights.up)
        and _aligned(weights.down)
        and row_bytes_ok
    )


def _add_bias(out: torch.Tensor, bias: torch.Tensor | None, plan: DispatchPlan) -> torch.Tensor:
    if bias is None:
        return out
    return out + bias.index_select(0, plan.expert_index).to(out.dtype)  # (S, n); its gradient is (E, n) once


@KERNELS.register("grouped_mm")
def grouped_mm_kernel(x: torch.Tensor, weights: ExpertWeights, plan: DispatchPlan) -> torch.Tensor:
    """Run both projections as `torch.nn.functional.grouped_mm` over the expert groups. (S, H) -> (S, H)."""
    offsets = plan.offsets
    hidden = _add_bias(F.grouped_mm(x.to(weights.up.dtype), weights.up, offs=offsets), weights.up_bias, plan)
    hidden = weights.activation(hidden).contiguous()  # (S, I)
    return _add_bias(F.grouped_mm(hidden, weights.down, offs=offsets), weights.down_bias, plan)  # (S, H)


class _LoopLinear(torch.autograd.Function):
    """Multiply each expert's row group by weight[e]. The hand-written backward writes every
    expert's weight gradient into one (E, in, out) tensor."""

    @staticmethod
    def forward(ctx, x, weight, counts):
        out = x.new_empty(x.shape[0], weight.shape[-1])
        start = 0
        for expert, count in enumerate(counts):
            if count:
                torch.mm(x[start : start + count], weight[expert], out=out[start : start + count])
                start += count
        ctx.save_for_backward(x, weight)
        ctx.counts = counts
        return out

    @staticmethod
    def backward(ctx, grad_out):
        x, weight = ctx.saved_tensors
        grad_x = torch.empty_like(x) if ctx.needs_input_grad[0] else None
        grad_w = torch.zeros_like(weight) if ctx.needs_input_grad[1] else None
        grad_out = grad_out.contiguous()
        start = 0
        for expert, count in enumerate(ctx.counts):
            if not count:
                continue
            rows = slice(start, start + count)
            if grad_x is not None:
                torch.mm(grad_out[rows], weight[expert].t(), out=grad_x[rows])
            if grad_w is not None:
                grad_w[expert] = x[rows].t() @ grad_out[rows]
            start += count
        return grad_x, grad_w, None


@KERNELS.register("loop")
def loop_kernel(x: torch.Tensor, weights: ExpertWeights, plan: DispatchPlan) -> torch.Tensor:
    """Run one matmul per expert inside an autograd Function. (S, H) -> (S, H). Syncs once for the counts."""
    counts = plan.counts.tolist()
    hidden = _add_bias(_LoopLinear.apply(x.to(weights.up.dtype), weights.up, counts), weights.up_bias, plan)
    hidden = weights.activation(hidden)  # (S, I)
    return _add_bias(_LoopLinear.apply(hidden, weights.down, counts), weights.down_bias, plan)  # (S, H)


@KERNELS.register("batched")
def batched_kernel(x: torch.Tensor, weights: ExpertWeights, plan: DispatchPlan) -> torch.Tensor:
    """Scatter tokens into an (E, C, H) buffer and run two `bmm`. (S, H) -> (S, H).

    Uses the plan's capacity, or the max load when the plan is dropless (one host sync).
    """
    num_experts = weights.num_experts
    capacity = plan.capacity if plan.capacity is not None else int(plan.counts.max())
    capacity = max(capacity, 1)
    rows = plan.expert_index * capacity + plan.positions()  # (S,) row in the padded buffer
    buffer = x.new_zeros(num_experts * capacity, x.shape[-1], dtype=weights.up.dtype)
    buffer = buffer.index_copy(0, rows, x.to(weights.up.dtype)).view(num_experts, capacity, -1)  # (E, C, H)
    hidden = torch.bmm(buffer, weights.up)  # (E, C, 2I)
    if weights.up_bias is not None:
        hidden = hidden + weights.up_bias.unsqueeze(1)
    hidden = weights.activation(hidden)  # (E, C, I)
    out = torch.bmm(hidden, weights.down)  # (E, C, H)
    if weights.down_bias is not None:
        out = out + weights.down_bias.unsqueeze(1)
    return out.reshape(num_experts * capacity, -1).index_select(0, rows)  # (S, H)


def expert_mlp(x: torch.Tensor, weights: ExpertWeights, plan: DispatchPlan, kernel: str) -> torch.Tensor:
    """Run every expert MLP on its dispatched rows. Shapes: (S, H) -> (S, H)."""
    if x.shape[0] == 0:
        return x.new_zeros(0, weights.down.shape[-1], dtype=weights.down.dtype)
    return KERNELS.get(kernel)(x, weights, plan)


def _bucket(num_slots: int) -> int:
    return 1 << max(4, (max(num_slots, 1) - 1).bit_length())


class KernelChooser:
    """Pick the fastest kernel per shape bucket by timing each candidate once, then cache the pick.

    The bucket key is (device, dtype, E, H, I, S rounded up to a power of two, with or without
    backward). `forced` skips the measurement. Each candidate runs at least `min_repeats` times
    and at most `max_repeats` times, stopping once it has used `budget_s` seconds.
    """

    def __init__(
        self, forced: str = "auto", min_repeats: int = 3, max_repeats: int = 20, budget_s: float = 0.05
    ):
        if forced != "auto" and forced not in KERNELS:
            raise ValueError(
                f"unknown expert kernel {forced!r}; valid names: auto, {', '.join(KERNELS.names())}"
            )
        self.forced = forced
        self.min_repeats = min_repeats
        self.max_repeats = max_repeats
        self.budget_s = budget_s
        self.choices: dict[tuple, str] = {}

    def candidates(self, x: torch.Tensor, weights: ExpertWeights) -> list[str]:
        names = ["batched", "loop"]
        if grouped_mm_applies(x, weights):
            names.insert(0, "grouped_mm")
        return names

    def choose(self, x: torch.Tensor, weights: ExpertWeights, plan: DispatchPlan) -> str:
        if self.forced != "auto":
            if self.forced == "grouped_mm" and not grouped_mm_applies(x, weights):
                return "loop"
            return self.forced
        backward = torch.is_grad_enabled() and (x.requires_grad or weights.up.requires_grad)
        key = (
            x.device.type,
            x.dtype,
            weights.up.dtype,
            tuple(weights.up.shape),
            tuple(weights.down.shape),
            weights.up_bias is not None,
            _bucket(x.shape[0]),
            backward,
        )
        choice = self.choices.get(key)
        if choice is None:
            choice = self.choices[key] = self._measure(x, weights, plan.top_k, _bucket(x.shape[0]), backward)
        return choice

    def _measure(self, x, weights, top_k, num_slots, backward) -> str:
        # Synthetic tokens with a balanced random routing, so the measurement does not touch the
        # caller's tensors or the parameters' .grad.
        generator = torch.Generator(device=x.device).manual_seed(0)
        num_tokens = max(1, num_slots // top_k)
        index = torch.randint(
            0, weights.num_experts, (num_tokens, top_k), device=x.device, generator=generator
        )
        plan = plan_dispatch(index, weights.num_experts)
        probe = ExpertWeights(
            up=weights.up.detach().requires_grad_(backward),
            down=weights.down.detach().requires_grad_(backward),
            up_bias=None if weights.up_bias is None else weights.up_bias.detach(),
            down_bias=None if weights.down_bias is None else weights.down_bias.detach(),
            activation=weights.activation,
        )
        tokens = torch.randn(
            plan.token_index.numel(), x.shape[-1], device=x.device, dtype=x.dtype, generator=generator
        ).requires_grad_(backward)
        timings = {}
        # Identity saved-tensor hooks shield the probe's graph from those of an enclosing
        # activation checkpoint, which would otherwise count the probe's saved tensors.
        with torch.autograd.graph.saved_tensors_hooks(lambda t: t, lambda t: t):
            for name in self.candidates(x, weights):
                try:
                    timings[name] = self._time(name, tokens, probe, plan, backward)
                except RuntimeError as error:  # a kernel that rejects these operands is not a candidate
                    logger.debug("expert kernel %s failed on %s: %s", name, tuple(tokens.shape), error)
        choice = min(timings, key=timings.get)
        logger.info(
            "expert kernel for %d slots, E=%d, H=%d%s: %s (ms: %s)",
            num_slots,
            weights.num_experts,
            x.shape[-1],
            " with backward" if backward else "",
            choice,
            ", ".join(f"{k} {v * 1e3:.2f}" for k, v in timings.items()),
        )
        return choice

    def _time(self, name, tokens, weights, plan, backward) -> float:
        def run():
            with torch.set_grad_enabled(backward):
                out = KERNELS.get(name)(tokens, weights, plan)
                if backward:
                    out.backward(torch.ones_like(out))
            if tokens.device.type == "cuda":
                torch.cuda.synchronize(tokens.device)

        run()  # warm-up
        # The minimum of several runs, repeated while cheap, resists load from other processes.
        best, spent, repeats = float("inf"), 0.0, 0
        while repeats < self.min_repeats or (repeats < self.max_repeats and spent < self.budget_s):
            start = time.perf_counter()
            run()
            elapsed = time.perf_counter() - start
            best, spent, repeats = min(best, elapsed), spent + elapsed, repeats + 1
        return best
