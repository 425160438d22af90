"""Expert parallelism: expert weights sharded over ranks in one layout, read with an adaptive (r, d).

    # in every process of an `accelerate launch` or torchrun world
    model = mathrl.moe.enable(model, MoEConfig(expert_parallel={"size": 2}))
    ...train...
    mathrl.moe.parallel.save_pretrained(model, "out", tokenizer)   # every rank; rank 0 writes

Modules: `groups` (process groups, world size 1 fallback), `all_to_all` (differentiable
collectives), `layout` and `sharding` (which rank stores what), `forward` (the r and d paths),
`chooser` (adaptive choice), `engine` (per-model state) and `state` (DDP, generate, save, load).
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
