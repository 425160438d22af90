"""The expert-parallel state of one model: its groups, chooser and per-layer forwards.

`mathrl.moe.enable` builds an `ExpertParallel` when ``moe.expert_parallel.size > 1`` and
torch.distributed is initialised; `LayerState.run_experts` then hands each layer's dispatched
rows to `ExpertParallel.run` instead of the single-process kernels.
"""

from __future__ import annotations

import logging

import torch

from mathrl.moe.config import ExpertParallelConfig
from mathrl.moe.dispatch import DispatchPlan
from mathrl.moe.experts import KernelChooser
from mathrl.moe.parallel.chooser import ParallelChooser, candidates
from mathrl.moe.parallel.forward import ParallelExperts, gather_counts
from mathrl.moe.parallel.groups import ExpertParallelGroups
from mathrl.moe.parallel.sharding import local_weights, make_layout, shard_experts

__all__ = ["ExpertParallel"]

logger = logging.getLogger(__name__)


def _in_backward() -> bool:
    """True while autograd runs a backward pass (an activation-checkpoint recomputation)."""
    return torch._C._current_graph_task_id() != -1


def _time_backward(out: torch.Tensor, inputs: list[torch.Tensor], report, clock) -> None:
    """Call `report(seconds)` with the time from the gradient of `out` until every gradient of `inputs`.

    The inputs are the dispatched rows and the expert weights, so the time includes the weight
    gradients' collectives. Every rank runs the same backward graph, so the hooks fire, and `report`
    may run a collective, at the same point on all ranks.
    """
    marks = {"left": len(inputs)}

    def begin(grad):
        marks["start"] = clock()

    def end(grad):
        marks["left"] -= 1
        if marks["left"] == 0 and "start" in marks:
            report(clock() - marks["start"])

    out.register_hook(begin)
    for tensor in inputs:
        tensor.register_hook(end)


class ExpertParallel:
    """Shards each MoE layer's experts over the EP group and runs their forward with a chosen (r, d)."""

    def __init__(self, config: ExpertParallelConfig, groups: ExpertParallelGroups):
        self.config = config
        self.groups = groups
        self.layers: dict[int, ParallelExperts] = {}
        self.choosers: dict[tuple[int, ...], ParallelChooser] = {}
        self.recent: dict[int, tuple[int, int]] = {}  # layer -> (r, d) of its last forward with grad

    def add_layer(self, layer: int, experts: torch.nn.Module) -> None:
        """Shard one experts module in place and prepare its forward."""
        layout = make_layout(experts, self.groups.size, self.groups.rank)
        if self.config.r != "auto":
            layout.check_degree(self.config.r)
        for r in layout.degrees():
            if 0 < r < layout.splits:
                self.groups.gather_group(layout.splits // r)  # collective: create the groups now, in order
        shard_experts(experts, layout)
        self.layers[layer] = ParallelExperts(layout, self.groups, self.config.hierarchical)

    def chooser(self, layer: int) -> ParallelChooser:
        degrees = tuple(self.layers[layer].layout.degrees())
        if degrees not in self.choosers:
            pairs = candidates(list(degrees), self.config.r, self.config.degree)
            self.choosers[degrees] = ParallelChooser(pairs, self.groups.ep_group)
        return self.choosers[degrees]

    def run(
        self,
        layer: int,
        experts: torch.nn.Module,
        dispatched: torch.Tensor,
        plan: DispatchPlan,
        kernels: KernelChooser,
    ) -> torch.Tensor:
        """Return the expert output of each of this rank's dispatched rows. Shapes: (S, H) -> (S, H)."""
        parallel = self.layers[layer]
        counts = gather_counts(plan.counts, self.groups.ep_group)  # W x E, the same on every rank
        chooser = self.chooser(layer)
        if _in_backward() and layer in self.recent:
            # A checkpoint recomputation must save the same tensors as the forward it repeats.
            pair, timing = self.recent[layer], False
        else:
            key = chooser.key(layer, sum(map(sum, counts)))
            pair, timing = chooser.select(key)
        clock = chooser.timed(dispatched.device)
        started = clock() if timing else 0.0
        weights = local_weights(experts, self.groups)
        out = parallel.run(weights, dispatched, plan, counts, *pair, kernels)
        if timing:
            forward_s = clock() - started
            inputs = [t for t in (dispatched, weights.up, weights.down) if t.requires_grad]
            if out.requires_grad and inputs:
                _time_backward(
                    out, inputs, lambda seconds: chooser.record(key, pair, forward_s + seconds), clock
                )
            else:
                chooser.record(key, pair, forward_s)
        if torch.is_grad_enabled() and not _in_backward():
            self.recent[layer] = pair
        return out
