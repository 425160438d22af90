"""Expert forward over an expert-parallel group for a given parallel degree r and pipelining degree d.

`ParallelExperts.run` replaces the single-process `expert_mlp` call: it takes this rank's dispatched
rows (sorted by expert, see `dispatch`) and returns each row's expert output, so the runtime's
combine step stays the same. Capacity drops happen before, on each rank's own tokens, so every
(r, d) computes the function that the single-process runtime computes on that rank's batch.

Legend: C[w][e] is the number of rows rank w dispatches to expert e (gathered on every rank
before any all-to-all, so that all ranks derive the same splits). A *block* is the rows of one
expert that one rank sends to one destination in one chunk.
"""

from __future__ import annotations

import torch
import torch.distributed as dist

from mathrl.moe.dispatch import DispatchPlan
from mathrl.moe.experts import ExpertWeights, KernelChooser, expert_mlp
from mathrl.moe.parallel.all_to_all import (
    all_gather_into,
    check_splits,
    hierarchical_all_to_all,
    start_all_to_all,
    wait_all_to_all,
)
from mathrl.moe.parallel.groups import ExpertParallelGroups
from mathrl.moe.parallel.layout import ExpertLayout
from mathrl.moe.parallel.sharding import gathered_weights

__all__ = ["ParallelExperts", "gather_counts", "chunk_bounds"]


def gather_counts(counts: torch.Tensor, group) -> list[list[int]]:
    """All-gather every rank's per-expert row counts. Shapes: (E,) -> W x E nested list (one host sync)."""
    world = dist.get_world_size(group)
    out = counts.new_empty(world * counts.shape[0])
    all_gather_into(out, counts.contiguous(), group)
    return out.view(world, -1).tolist()


def chunk_bounds(count: int, chunk: int, chunks: int) -> tuple[int, int]:
    """Rows [start, stop) of `chunk` when `count` rows are split into `chunks` near-equal parts."""
    return count * chunk // chunks, count * (chunk + 1) // chunks


def _ranges(starts: list[int], lengths: list[int], device) -> torch.Tensor:
    """Concatenate arange(start, start + length) over the blocks, in one vectorised step."""
    if not starts or sum(lengths) == 0:
        return torch.zeros(0, dtype=torch.int64, device=device)
    lengths_t = torch.tensor(lengths, dtype=torch.int64)
    starts_t = torch.tensor(starts, dtype=torch.int64)
    ends = torch.cumsum(lengths_t, 0)
    shift = torch.repeat_interleave(starts_t - (ends - lengths_t), lengths_t)
    return (torch.arange(int(ends[-1])) + shift).to(device)


def _local_plan(counts: list[int], device) -> DispatchPlan:
    """A plan over rows already sorted by local expert, for the single-process kernels."""
    rows = sum(counts)
    counts_t = torch.tensor(counts, dtype=torch.int64, device=device)
    order = torch.arange(rows, device=device)
    return DispatchPlan(
        num_tokens=rows,
        top_k=1,
        num_experts=len(counts),
        slot_order=order,
        token_index=order,
        expert_index=torch.repeat_interleave(torch.arange(len(counts), device=device), counts_t),
        counts=counts_t,
        requested=counts_t,
        dropped=None,
        capacity=None,
    )


def _compute(
    x: torch.Tensor, weights: ExpertWeights, plan: DispatchPlan, chooser: KernelChooser
) -> torch.Tensor:
    """Run the expert MLPs, keeping the result in the autograd graph of x and of every weight.

    Every rank must run the same backward collectives, so a rank without rows still returns a
    (0, H) tensor that depends on its inputs instead of a constant.
    """
    if x.shape[0] == 0:
        anchor = x.sum() + weights.up.sum() + weights.down.sum()
        for bias in (weights.up_bias, weights.down_bias):
            if bias is not None:
                anchor = anchor + bias.sum()
        return (anchor * 0).to(weights.down.dtype).expand(0, weights.down.shape[-1])
    return expert_mlp(x, weights, plan, chooser.choose(x, weights, plan))


class ParallelExperts:
    """The expert-parallel forward of one MoE layer."""

    def __init__(self, layout: ExpertLayout, groups: ExpertParallelGroups, hierarchical: bool = False):
        self.layout = layout
        self.groups = groups
        self.hierarchical = hierarchical
        self.check = False  # True: verify the all-to-all splits of every exchange (one extra collective each)

    def run(
        self,
        weights: ExpertWeights,
        dispatched: torch.Tensor,
        plan: DispatchPlan,
        counts: list[list[int]],
        r: int,
        d: int,
        chooser: KernelChooser,
    ) -> torch.Tensor:
        """Return the expert output of each dispatched row. Shapes: (S, H) -> (S, H).

        `weights` are this rank's shards (see `sharding.local_weights`).
        """
        if r == 0:
            full = gathered_weights(self.layout, weights, self.groups.ep_group, self.layout.splits)
            return _compute(dispatched, full, plan, chooser)
        if self.layout.splits > r:  # each group of s/r ranks gathers its slice of I/r
            block = self.layout.splits // r
            weights = gathered_weights(self.layout, weights, self.groups.gather_group(block), block)
        return self._exchange_and_compute(dispatched, counts, weights, r, d, chooser)

    # -- r >= 1 -------------------------------------------------------------------------------------

    def _sources(self, r: int) -> list[list[int]]:
        """For each local expert, the EP ranks that send it rows (ascending)."""
        layout = self.layout
        if layout.splits == 1:
            return [list(range(layout.world)) for _ in range(layout.local_experts)]
        replicas = layout.splits // r
        position = layout.slice_index % replicas
        return [[w for w in range(layout.world) if w % replicas == position]]

    def _exchange_and_compute(self, dispatched, counts, weights, r, d, chooser) -> torch.Tensor:
        """Steps per chunk: (1) send each block to its experts' ranks, (2) sort the received rows by
        local expert and compute, (3) send the outputs back, (4) add them to their rows (which also
        sums the r partial outputs of a split expert). The exchange of chunk i+1 is in flight while
        chunk i computes."""
        layout, device = self.layout, dispatched.device
        world, me = layout.world, layout.rank
        mine = counts[me]
        offsets = [0]
        for count in mine:
            offsets.append(offsets[-1] + count)
        local_ids = [layout.first_expert + k for k in range(layout.local_experts)]
        sources = self._sources(r)

        plans = []
        for chunk in range(d):
            # Send side: blocks in (expert, slice) order, which is destination order.
            starts, lengths, input_splits = [], [], [0] * world
            for expert in range(layout.num_experts):
                start, stop = chunk_bounds(mine[expert], chunk, d)
                for destination in self._destinations_of(me, expert, r):
                    starts.append(offsets[expert] + start)
                    lengths.append(stop - start)
                    input_splits[destination] += stop - start
            # Receive side: rows arrive by source, then by local expert.
            received = [[0] * len(local_ids) for _ in range(world)]  # [source][local expert]
            for k, expert in enumerate(local_ids):
                for source in sources[k]:
                    start, stop = chunk_bounds(counts[source][expert], chunk, d)
                    received[source][k] = stop - start
            plans.append((_ranges(starts, lengths, device), input_splits, received))

        def send(chunk):
            index, input_splits, received = plans[chunk]
            rows = dispatched.index_select(0, index)  # (rows of the chunk, H)
            output_splits = [sum(row) for row in received]
            if self.check:
                check_splits(rows.shape[0], output_splits, input_splits, self.groups.ep_group, device)
            if self.hierarchical:
                return self._hierarchical(rows, counts, chunk, d, r), None
            return start_all_to_all(rows, output_splits, input_splits, self.groups.ep_group)

        returned = []
        in_flight = send(0)
        for chunk in range(d):
            rows, pending = in_flight
            if pending is not None:
                rows = wait_all_to_all(rows, pending)  # (rows from all sources, H)
            if chunk + 1 < d:
                in_flight = send(chunk + 1)
            index, input_splits, received = plans[chunk]
            out = self._compute_local(rows, received, weights, chooser)
            output_splits = [sum(row) for row in received]
            if self.hierarchical:
                back = self._hierarchical(out, counts, chunk, d, r, reverse=True)
                returned.append((back, None))
            else:
                returned.append(start_all_to_all(out, input_splits, output_splits, self.groups.ep_group))

        result = None
        for chunk, (back, pending) in enumerate(returned):
            if pending is not None:
                back = wait_all_to_all(back, pending)
            if result is None:
                result = back.new_zeros(dispatched.shape[0], back.shape[-1])  # (S, H)
            result = result.index_add(0, plans[chunk][0], back)
        return result

    def _compute_local(self, rows, received, weights, chooser) -> torch.Tensor:
        """Sort received rows by local expert, run the experts, restore the received order."""
        num_local = len(received[0])
        local_counts = [sum(row[k] for row in received) for k in range(num_local)]
        device = rows.device
        if num_local == 1:
            return _compute(rows, weights, _local_plan(local_counts, device), chooser)
        starts, lengths, offset = {}, {}, 0
        for source, row in enumerate(received):
            for k, count in enumerate(row):
                starts[(k, source)] = offset
                lengths[(k, source)] = count
                offset += count
        keys = [(k, source) for k in range(num_local) for source in range(len(received))]
        order = _ranges([starts[key] for key in keys], [lengths[key] for key in keys], device)
        out = _compute(rows.index_select(0, order), weights, _local_plan(local_counts, device), chooser)
        inverse = torch.empty_like(order)
        inverse[order] = torch.arange(order.numel(), device=device)
        return out.index_select(0, inverse)

    def _hierarchical(self, rows, counts, chunk, d, r, reverse=False) -> torch.Tensor:
        """Exchange one chunk with the two-level all-to-all (synchronous)."""
        world = self.layout.world
        matrix = [[0] * world for _ in range(world)]  # rows each source sends to each destination
        for source in range(world):
            for expert in range(self.layout.num_experts):
                start, stop = chunk_bounds(counts[source][expert], chunk, d)
                for destination in self._destinations_of(source, expert, r):
                    matrix[source][destination] += stop - start
        if reverse:
            matrix = [list(column) for column in zip(*matrix)]
        groups = self.groups
        return hierarchical_all_to_all(
            rows, matrix, self.layout.rank, groups.local_size, groups.intra_group, groups.inter_group
        )

    def _destinations_of(self, source: int, expert: int, r: int) -> list[int]:
        """EP ranks that rank `source` sends expert `expert`'s rows to, one per slice of I/r, ascending."""
        layout = self.layout
        if layout.splits == 1:
            return [expert // layout.local_experts]
        replicas = layout.splits // r
        return [expert * layout.splits + q * replicas + source % replicas for q in range(r)]
