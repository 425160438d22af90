"""Process groups of expert parallelism, built from the torch.distributed world that a launcher created.

The world of P ranks is cut into P / W expert-parallel (EP) groups of W consecutive ranks. Ranks at
the same position of different EP groups hold the same expert shard and form an expert
data-parallel group, over which expert gradients are averaged. With a hierarchical all-to-all, each
EP group is further cut into nodes of L consecutive ranks (L = LOCAL_WORLD_SIZE by default).

Every group gets its own communicator, even one that spans the whole world, so that expert
collectives never interleave with DDP's gradient all-reduce on the default group.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field

import torch.distributed as dist

__all__ = ["ExpertParallelGroups", "setup_groups"]

logger = logging.getLogger(__name__)


def _new_group(blocks: list[list[int]], rank: int):
    """Create one group per block (every rank takes part in every creation) and return the caller's."""
    mine = None
    for ranks in blocks:
        group = dist.new_group(ranks)
        if rank in ranks:
            mine = group
    return mine


@dataclass
class ExpertParallelGroups:
    """The calling rank's place in the expert-parallel layout and the groups it communicates over."""

    size: int  # W
    rank: int  # position in the EP group, 0 <= rank < W
    global_rank: int
    ep_group: object  # the W ranks that share one copy of all experts
    ep_ranks: list[int]
    dp_size: int  # P / W: copies of each expert shard
    dp_group: object | None  # ranks holding the same shard; None when dp_size == 1
    local_size: int  # L: ranks per node, for the hierarchical all-to-all
    intra_group: object | None = None  # the L ranks of this node inside the EP group
    inter_group: object | None = None  # the W / L ranks at this local position, one per node
    _gather_groups: dict = field(default_factory=dict, repr=False)

    @property
    def num_nodes(self) -> int:
        return self.size // self.local_size

    def gather_group(self, block: int):
        """Return the group of the `block` consecutive EP ranks that contain this rank (created on first use).

        Every rank must call this for the same `block` values in the same order, as for any group creation.
        """
        if block not in self._gather_groups:
            blocks = []
            for start in range(0, dist.get_world_size(), block):
                blocks.append(list(range(start, start + block)))
            self._gather_groups[block] = _new_group(blocks, self.global_rank)
        return self._gather_groups[block]


def setup_groups(
    size: int, hierarchical: bool = False, local_size: int | None = None
) -> ExpertParallelGroups | None:
    """Build the EP groups of `size` ranks; None when torch.distributed is not initialised or size == 1.

    Raises ValueError when the world size is not a multiple of `size`, or, with `hierarchical`, when
    `size` is not a multiple of the node size.
    """
    if size <= 1:
        return None
    if not (dist.is_available() and dist.is_initialized()):
        logger.warning(
            "moe.expert_parallel.size=%d but torch.distributed is not initialised; running all experts "
            "on this process (launch with accelerate launch or torchrun to shard them)",
            size,
        )
        return None
    world, rank = dist.get_world_size(), dist.get_rank()
    if world % size:
        raise ValueError(
            f"moe.expert_parallel.size={size} does not divide the world size {world}; "
            "use a divisor of the number of processes"
        )
    blocks = [list(range(start, start + size)) for start in range(0, world, size)]
    ep_group = _new_group(blocks, rank)
    ep_ranks = blocks[rank // size]
    dp_size = world // size
    dp_group = None
    if dp_size > 1:
        dp_group = _new_group([list(range(position, world, size)) for position in range(size)], rank)

    local = local_size or int(os.environ.get("LOCAL_WORLD_SIZE", size))
    local = min(local, size)
    groups = ExpertParallelGroups(
        size=size,
        rank=rank % size,
        global_rank=rank,
        ep_group=ep_group,
        ep_ranks=ep_ranks,
        dp_size=dp_size,
        dp_group=dp_group,
        local_size=local,
    )
    if hierarchical:
        if size % local:
            raise ValueError(
                f"hierarchical all-to-all needs moe.expert_parallel.size={size} to be a multiple of "
                f"the ranks per node ({local})"
            )
        intra, inter = [], []
        for base in range(0, world, size):
            intra += [list(range(base + n * local, base + (n + 1) * local)) for n in range(size // local)]
            inter += [list(range(base + position, base + size, local)) for position in range(local)]
        groups.intra_group = _new_group(intra, rank)
        groups.inter_group = _new_group(inter, rank)
    return groups
