"""Expert parallelism: expert weights sharded over ranks in one layout, read with an adaptive (r, d).

    # in every process of an `accelerate launch` or torchrun world
    model = mathrl.moe.enable(model, MoEConfig(expert_parallel={"size": 2}))
    ...train...
    mathrl.moe.parallel.save_pretrained(model, "out", tokenizer)   # every rank; rank 0 writes

A world of P processes forms P / W expert-parallel groups of W = ``size`` ranks. Each group holds
one copy of every expert, sharded as `layout` describes; each forward reads the shards with a
parallel degree r (0 all-gather, 1 all-to-all, > 1 experts split along I) and a pipelining
degree d, fixed in the recipe or chosen per layer and token count by `chooser`. Without an
initialised torch.distributed world, ``size`` > 1 logs a warning and runs every expert locally.

How it combines with data parallelism:

- DDP (``recipes/accelerate/ddp.yaml``): supported and tested. `enable` lists the expert shards
  in the model's ``_ddp_params_and_buffers_to_ignore``, so DDP neither broadcasts rank 0's shards
  at start nor all-reduces their gradients. The expert backward divides each shard's gradient,
  summed over the W ranks' tokens by the all-to-all, by W and averages it over the P / W ranks
  holding the same shard, which matches the mean DDP takes over all P ranks for dense weights.
  Call `enable` before the model is wrapped (before ``accelerator.prepare``).
- FSDP and DeepSpeed ZeRO: not supported; `enable` raises under an accelerate launch that uses
  them. Both would treat the shards as ordinary parameters: FSDP would flatten and all-gather them
  over the whole world, and ZeRO would average their gradients over all P ranks. Combining them
  needs the shards left out of FSDP (``ignored_states``) or put in DeepSpeed's expert parameter
  groups, with the reduction over the expert data-parallel group kept from here.

Checkpoints: ``state_dict()`` holds this rank's shards. `save_pretrained`, `full_state_dict` and
`unshard` gather the plain transformers layout (collectives: every rank calls them);
``load_state_dict`` with full-size tensors cuts them to the local shard, so a checkpoint saved at
one world size loads at another. `ExpertParallelCheckpoint` rewrites Trainer checkpoints with the
gathered experts and keeps each rank's expert optimizer state for resuming.

Modules: `groups` (process groups), `all_to_all` (differentiable collectives), `layout` and
`sharding` (which rank stores what), `forward` (the r and d paths), `chooser` (adaptive choice),
`engine` (per-model state) and `state` (DDP, generate, save and load).
"""

from __future__ import annotations

import importlib

__all__ = [
    "ExpertLayout",
    "ParallelChooser",
    "SplitMismatchError",
    "all_to_all",
    "hierarchical_all_to_all",
    "setup_groups",
    "full_state_dict",
    "save_pretrained",
    "unshard",
    "ExpertParallelCheckpoint",
]

_LAZY = {
    "ExpertLayout": "mathrl.moe.parallel.layout",
    "ParallelChooser": "mathrl.moe.parallel.chooser",
    "SplitMismatchError": "mathrl.moe.parallel.all_to_all",
    "all_to_all": "mathrl.moe.parallel.all_to_all",
    "hierarchical_all_to_all": "mathrl.moe.parallel.all_to_all",
    "setup_groups": "mathrl.moe.parallel.groups",
    "full_state_dict": "mathrl.moe.parallel.state",
    "save_pretrained": "mathrl.moe.parallel.state",
    "unshard": "mathrl.moe.parallel.state",
    "ExpertParallelCheckpoint": "mathrl.moe.parallel.state",
}


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'mathrl.moe.parallel' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
