"""Shard the expert parameters of a transformers experts module in place, gather them back, save and load.

After `shard_experts`, the module's ``gate_up_proj`` (or ``up_proj``), ``down_proj`` and biases are
Parameters holding only this rank's shard (see `layout`), in the module's own storage orientation,
so that an optimizer sees only local expert weights. `full_tensors` gathers them to the plain
transformers layout (a collective: every rank of the group must call it); a load_state_dict
pre-hook cuts full-size tensors down to the local shard, so loading a plain checkpoint scatters it.
"""

from __future__ import annotations

import torch

from mathrl.moe.experts import ExpertWeights
from mathrl.moe.parallel.all_to_all import all_gather_shards, average_gradient
from mathrl.moe.parallel.layout import ExpertLayout, gate_layout, input_major, stored, up_name

__all__ = [
    "shard_experts",
    "unshard_experts",
    "gather_full",
    "expert_param_names",
    "full_tensors",
    "local_weights",
    "gathered_weights",
]


def expert_param_names(experts: torch.nn.Module) -> list[str]:
    """Names, inside the experts module, of the parameters that expert parallelism shards."""
    up = up_name(experts)
    names = [up, "down_proj"]
    if getattr(experts, "has_bias", False):
        names += [f"{up}_bias", "down_proj_bias"]
    return names


def _shard(layout: ExpertLayout, experts, name: str, full: torch.Tensor) -> torch.Tensor:
    """Cut this rank's shard of parameter `name` from its full stored tensor."""
    up = up_name(experts)
    if name == up:
        return stored(experts, layout.shard_up(input_major(experts, full)))
    if name == "down_proj":
        return stored(experts, layout.shard_down(input_major(experts, full)))
    if name == f"{up}_bias":
        return layout.shard_up(full)
    return layout.shard_expert_rows(full)  # down_proj_bias


def _load_hook(module, state_dict, prefix, *args, **kwargs):
    """Cut full-size expert tensors of a plain checkpoint to this rank's shard before loading."""
    layout = module._mathrl_layout
    for name in expert_param_names(module):
        key = prefix + name
        tensor = state_dict.get(key)
        if tensor is not None and tensor.shape != getattr(module, name).shape:
            state_dict[key] = _shard(layout, module, name, tensor)


def make_layout(experts: torch.nn.Module, world: int, rank: int) -> ExpertLayout:
    """Build the layout of one experts module; raises when its shapes cannot be spread over `world` ranks."""
    layout = ExpertLayout(
        world=world,
        rank=rank,
        num_experts=experts.num_experts,
        intermediate=experts.down_proj.shape[1 if getattr(experts, "is_transposed", False) else 2],
        gate=gate_layout(experts),
    )
    if layout.splits > 1 and getattr(experts, "has_bias", False):
        raise NotImplementedError(
            f"moe.expert_parallel.size={world} > {layout.num_experts} experts splits experts along their "
            f"intermediate dimension, which {type(experts).__name__} with biases does not support; "
            "use size <= experts"
        )
    return layout


def shard_experts(experts: torch.nn.Module, layout: ExpertLayout) -> None:
    """Replace the module's expert parameters by this rank's shards (keeping requires_grad)."""
    with torch.no_grad():
        for name in expert_param_names(experts):
            full = getattr(experts, name)
            shard = _shard(layout, experts, name, full.detach()).contiguous().clone()
            setattr(experts, name, torch.nn.Parameter(shard, requires_grad=full.requires_grad))
    experts._mathrl_layout = layout
    experts._mathrl_load_hook = experts._register_load_state_dict_pre_hook(_load_hook, with_module=True)


def gather_full(experts: torch.nn.Module, name: str, shard: torch.Tensor, group) -> torch.Tensor:
    """Gather a tensor shaped like this rank's shard of parameter `name` (the parameter itself, its
    gradient or an optimizer moment) to the full stored shape. A collective over the EP group; no autograd."""
    layout = experts._mathrl_layout
    with torch.no_grad():
        up = up_name(experts)
        if name in (up, "down_proj"):
            shard = input_major(experts, shard)
        stacked = all_gather_shards(shard.detach().contiguous(), group)  # (W, E_local, ...)
        if name == up:
            return stored(experts, _assemble_up(layout, stacked, layout.splits))
        if name == "down_proj":
            return stored(experts, _assemble_down(layout, stacked, layout.splits))
        return stacked.reshape((layout.num_experts,) + tuple(shard.shape[1:]))  # biases: whole experts only


def full_tensors(experts: torch.nn.Module, group) -> dict[str, torch.Tensor]:
    """Return the full expert parameters in transformers' layout (a collective over the EP group)."""
    return {
        name: gather_full(experts, name, getattr(experts, name), group)
        for name in expert_param_names(experts)
    }


def unshard_experts(experts: torch.nn.Module, group) -> None:
    """Gather the full expert parameters back into the module (a collective over the EP group)."""
    full = full_tensors(experts, group)
    for name, tensor in full.items():
        param = getattr(experts, name)
        setattr(experts, name, torch.nn.Parameter(tensor.contiguous(), requires_grad=param.requires_grad))
    experts._mathrl_load_hook.remove()
    del experts._mathrl_load_hook
    del experts._mathrl_layout


def _assemble_up(layout: ExpertLayout, stacked: torch.Tensor, n: int) -> torch.Tensor:
    """(ranks, E_local, H, c) -> (ranks * E_local / n, H, n * c): join each expert's n slices."""
    ranks, local, hidden, columns = stacked.shape
    return layout.assemble_up(stacked.reshape(ranks * local // n, n, hidden, columns))


def _assemble_down(layout: ExpertLayout, stacked: torch.Tensor, n: int) -> torch.Tensor:
    """(ranks, E_local, c, H) -> (ranks * E_local / n, n * c, H)."""
    ranks, local, rows, hidden = stacked.shape
    return layout.assemble_down(stacked.reshape(ranks * local // n, n, rows, hidden))


def local_weights(experts: torch.nn.Module, groups) -> ExpertWeights:
    """This rank's expert shards as `ExpertWeights`, with gradients averaged like DDP averages dense ones.

    The all-to-all backward already sums each shard's gradient over the tokens of all W ranks; the
    backward of the returned views divides it by W and averages it over the ranks holding the same
    shard in other EP groups, so expert and dense gradients both end up as the mean over all ranks.
    """
    weights = ExpertWeights.from_module(experts)
    scale = 1.0 / groups.size

    def average(tensor):
        if tensor is None or not tensor.requires_grad:
            return tensor
        return average_gradient(tensor, scale / groups.dp_size, groups.dp_group)

    return ExpertWeights(
        up=average(weights.up),
        down=average(weights.down),
        up_bias=average(weights.up_bias),
        down_bias=average(weights.down_bias),
        activation=weights.activation,
    )


def gathered_weights(layout: ExpertLayout, weights: ExpertWeights, group, n: int) -> ExpertWeights:
    """All-gather local shards over `group` (n consecutive slices per expert, or all experts) with autograd.

    Shapes: up (E_local, H, c) -> (ranks * E_local / n, H, n*c); down likewise on its I rows.
    """
    up = all_gather_shards(weights.up.contiguous(), group)  # (ranks, E_local, H, c)
    down = all_gather_shards(weights.down.contiguous(), group)  # (ranks, E_local, c', H)
    up_bias = down_bias = None
    if weights.up_bias is not None:  # whole experts only (see make_layout)
        up_bias = all_gather_shards(weights.up_bias.contiguous(), group).flatten(0, 1)  # (E, 2I)
    if weights.down_bias is not None:
        down_bias = all_gather_shards(weights.down_bias.contiguous(), group).flatten(0, 1)  # (E, H)
    return ExpertWeights(
        up=_assemble_up(layout, up, n),
        down=_assemble_down(layout, down, n),
        up_bias=up_bias,
        down_bias=down_bias,
        activation=weights.activation,
    )
