"""Differentiable collectives of expert parallelism: all-to-all with variable splits, all-gather of shards.

`all_to_all` sends rows ``[sum(input_splits[:j]), sum(input_splits[:j+1]))`` of a contiguous buffer
to rank j of the group and receives ``output_splits[j]`` rows from rank j. Its backward is the
all-to-all of the gradient with the splits swapped. gloo returns wrong data without an error when
the splits of two ranks disagree, or when a buffer split evenly has a size not divisible by the
group size, so ``check=True`` exchanges the split sizes first and raises on every rank.

`start_all_to_all` and `wait_all_to_all` split it into an asynchronous start and a wait, so that a
caller can compute between them. Their backward is asynchronous in the same way.
`hierarchical_all_to_all` exchanges inside each node first and across nodes second.
"""

from __future__ import annotations

import torch
import torch.distributed as dist

__all__ = [
    "SplitMismatchError",
    "all_to_all",
    "check_splits",
    "start_all_to_all",
    "wait_all_to_all",
    "hierarchical_all_to_all",
    "all_gather_shards",
    "all_gather_into",
    "average_gradient",
]


class SplitMismatchError(ValueError):
    """The split sizes of an all-to-all do not agree between ranks."""


def _rank(group) -> int:
    return dist.get_rank(group)


def check_splits(rows: int, output_splits, input_splits, group, device=None) -> None:
    """Raise SplitMismatchError on every rank unless the all-to-all splits of all ranks agree.

    Rank i's ``input_splits[j]`` must equal rank j's ``output_splits[i]``, and the input splits must sum
    to the rows of the buffer. Without splits, the buffer size must be divisible by the group size.
    Costs one small all-to-all and one all-reduce.
    """
    world = dist.get_world_size(group)
    device = device or torch.device("cpu")
    problem = ""
    if input_splits is None:
        if rows % world:
            problem = f"rank {_rank(group)}: {rows} rows cannot be split evenly over {world} ranks"
        input_splits = [rows // world] * world
    if output_splits is None:
        output_splits = [rows // world] * world
    if len(input_splits) != world or len(output_splits) != world:
        problem = problem or (
            f"rank {_rank(group)}: splits {list(input_splits)} / {list(output_splits)} "
            f"do not have one entry per rank ({world})"
        )
        input_splits = output_splits = [0] * world
    if not problem and sum(input_splits) != rows:
        problem = (
            f"rank {_rank(group)}: input splits {list(input_splits)} sum to {sum(input_splits)}, "
            f"not {rows} rows"
        )

    sent = torch.tensor(list(input_splits), dtype=torch.int64, device=device)
    received = torch.empty_like(sent)
    dist.all_to_all_single(received, sent, group=group)  # received[j] = rank j's input_splits[me]
    if not problem and received.tolist() != list(output_splits):
        problem = (
            f"rank {_rank(group)} expects {list(output_splits)} rows from the ranks but they send "
            f"{received.tolist()}"
        )
    flag = torch.tensor([1 if problem else 0], dtype=torch.int64, device=device)
    dist.all_reduce(flag, op=dist.ReduceOp.MAX, group=group)
    if flag.item():
        raise SplitMismatchError(
            "all-to-all split sizes disagree between ranks"
            + (f" ({problem})" if problem else " on another rank")
            + "; exchange the per-expert counts first and derive the splits from them"
        )


def _splits(x: torch.Tensor, output_splits, input_splits, group):
    if input_splits is None and output_splits is None:
        world = dist.get_world_size(group)
        return [x.shape[0] // world] * world, [x.shape[0] // world] * world
    return list(output_splits), list(input_splits)


def _exchange(x: torch.Tensor, output_splits, input_splits, group, async_op=False):
    out = x.new_empty((sum(output_splits),) + tuple(x.shape[1:]))
    work = dist.all_to_all_single(
        out, x.contiguous(), output_splits, input_splits, group=group, async_op=async_op
    )
    return out, work


class _AllToAll(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, output_splits, input_splits, group):
        ctx.splits = (output_splits, input_splits)
        ctx.group = group
        return _exchange(x, output_splits, input_splits, group)[0]

    @staticmethod
    def backward(ctx, grad):
        output_splits, input_splits = ctx.splits
        return _AllToAll.apply(grad.contiguous(), input_splits, output_splits, ctx.group), None, None, None


def all_to_all(
    x: torch.Tensor, output_splits=None, input_splits=None, group=None, check: bool = True
) -> torch.Tensor:
    """Exchange rows of `x` with every rank of `group`.

    Shapes: (sum(input_splits), ...) -> (sum(output_splits), ...).

    Without splits, every rank sends ``x.shape[0] / world`` rows to each rank.
    """
    if check:
        check_splits(x.shape[0], output_splits, input_splits, group, x.device)
    output_splits, input_splits = _splits(x, output_splits, input_splits, group)
    return _AllToAll.apply(x, output_splits, input_splits, group)


class Pending:
    """The in-flight communication of one `start_all_to_all`, shared with its `wait_all_to_all`."""

    def __init__(self, output_splits, input_splits, group):
        self.output_splits = output_splits
        self.input_splits = input_splits
        self.group = group
        self.work = None
        self.grad = None  # the gradient buffer being received in backward


class _Start(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, pending):
        ctx.pending = pending
        out, pending.work = _exchange(x, pending.output_splits, pending.input_splits, pending.group, True)
        return out

    @staticmethod
    def backward(ctx, grad):
        pending = ctx.pending
        if pending.work is None:  # _Wait.backward did not run: exchange now
            pending.grad, pending.work = _exchange(
                grad, pending.input_splits, pending.output_splits, pending.group
            )
        pending.work.wait()
        grad_x, pending.grad, pending.work = pending.grad, None, None
        return grad_x, None


class _Wait(torch.autograd.Function):
    @staticmethod
    def forward(ctx, out, pending):
        pending.work.wait()
        pending.work = None
        ctx.pending = pending
        return out

    @staticmethod
    def backward(ctx, grad):
        # Start the reverse exchange here; _Start.backward waits for it, so that autograd can run
        # other nodes (the expert backward of another chunk) in between.
        pending = ctx.pending
        pending.grad, pending.work = _exchange(
            grad.contiguous(), pending.input_splits, pending.output_splits, pending.group, True
        )
        return grad, None


def start_all_to_all(x: torch.Tensor, output_splits, input_splits, group) -> tuple[torch.Tensor, Pending]:
    """Start an all-to-all without waiting; the returned buffer is valid only after `wait_all_to_all`.

    The splits are not checked (see `check_splits`).
    """
    pending = Pending(list(output_splits), list(input_splits), group)
    return _Start.apply(x, pending), pending


def wait_all_to_all(out: torch.Tensor, pending: Pending) -> torch.Tensor:
    """Wait for the all-to-all started by `start_all_to_all` and return its received rows."""
    return _Wait.apply(out, pending)


def _block_order(sizes: list[list[int]], order: list[tuple[int, int]]) -> torch.Tensor:
    """Row permutation that reorders a buffer of blocks ``sizes[a][b]`` (stored a-major) into `order`."""
    starts = {}
    offset = 0
    for a, row in enumerate(sizes):
        for b, size in enumerate(row):
            starts[(a, b)] = offset
            offset += size
    parts = [torch.arange(starts[key], starts[key] + sizes[key[0]][key[1]]) for key in order]
    return torch.cat(parts) if parts else torch.zeros(0, dtype=torch.int64)


def hierarchical_all_to_all(
    x: torch.Tensor, counts: list[list[int]], rank: int, local_size: int, intra_group, inter_group
) -> torch.Tensor:
    """All-to-all in two steps: inside each node, then between the ranks at the same local position.

    `counts[i][j]` is the number of rows rank i sends to rank j (ranks of the EP group, node-major,
    `local_size` per node); every rank must pass the same matrix. The result equals the flat
    all-to-all: rows from every rank, in rank order. Differentiable through its parts.
    Shapes: (sum(counts[rank]), ...) -> (sum(counts[:, rank]), ...).
    """
    world = len(counts)
    nodes = world // local_size
    node, local = divmod(rank, local_size)

    def at(n, position):
        return n * local_size + position

    # Step 1, inside the node: send to local peer p every row bound for position p of any node.
    mine = [[counts[rank][at(m, p)] for p in range(local_size)] for m in range(nodes)]  # [node][position]
    order = [(m, p) for p in range(local_size) for m in range(nodes)]
    x = x.index_select(0, _block_order(mine, order).to(x.device))
    sent = [sum(counts[rank][at(m, p)] for m in range(nodes)) for p in range(local_size)]
    received = [sum(counts[at(node, p)][at(m, local)] for m in range(nodes)) for p in range(local_size)]
    x = _AllToAll.apply(x, received, sent, intra_group)

    # Step 2, across nodes: the rows are grouped by local source, then by destination node.
    held = [[counts[at(node, p)][at(m, local)] for m in range(nodes)] for p in range(local_size)]
    order = [(p, m) for m in range(nodes) for p in range(local_size)]
    x = x.index_select(0, _block_order(held, order).to(x.device))
    sent = [sum(counts[at(node, p)][at(m, local)] for p in range(local_size)) for m in range(nodes)]
    received = [sum(counts[at(m, p)][rank] for p in range(local_size)) for m in range(nodes)]
    return _AllToAll.apply(x, received, sent, inter_group)  # rows by source node, then source position


def all_gather_into(out: torch.Tensor, x: torch.Tensor, group) -> None:
    """Gather every rank's `x` into `out`, concatenated along dim 0 (the layout gloo and NCCL both accept)."""
    gather = getattr(dist, "all_gather_single", None) or dist.all_gather_into_tensor  # renamed in torch 2.13
    gather(out, x, group=group)


class _AllGather(torch.autograd.Function):
    @staticmethod
    def forward(ctx, shard, group):
        ctx.group = group
        world = dist.get_world_size(group)
        out = shard.new_empty((world * shard.shape[0],) + tuple(shard.shape[1:]))
        all_gather_into(out, shard.contiguous(), group)
        return out.view((world,) + tuple(shard.shape))

    @staticmethod
    def backward(ctx, grad):
        group = ctx.group
        grad = grad.contiguous()
        if dist.get_backend(group) == "gloo":  # gloo has no reduce-scatter
            dist.all_reduce(grad, group=group)
            return grad[dist.get_rank(group)].clone(), None
        out = grad.new_empty(grad.shape[1:])
        scatter = getattr(dist, "reduce_scatter_single", None) or dist.reduce_scatter_tensor
        scatter(out, grad.flatten(0, 1), group=group)
        return out, None


def all_gather_shards(shard: torch.Tensor, group) -> torch.Tensor:
    """Stack the equally shaped shards of every rank. Shapes: (...) -> (world, ...); the backward sums."""
    return _AllGather.apply(shard, group)


class _AverageGradient(torch.autograd.Function):
    @staticmethod
    def forward(ctx, weight, scale, group):
        ctx.scale, ctx.group = scale, group
        return weight.view_as(weight)

    @staticmethod
    def backward(ctx, grad):
        grad = grad * ctx.scale
        if ctx.group is not None:
            dist.all_reduce(grad, group=ctx.group)
        return grad, None, None


def average_gradient(weight: torch.Tensor, scale: float, group=None) -> torch.Tensor:
    """Identity whose backward multiplies the gradient by `scale` and sums it over `group` (if any)."""
    return _AverageGradient.apply(weight, scale, group)
