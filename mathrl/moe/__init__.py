"""mathrl's MoE expert runtime: index-based dispatch and combine, capacity modes, routing replay.

    import mathrl.moe
    model = mathrl.moe.enable(model, MoEConfig(capacity_mode="dropless"))
    with mathrl.moe.record_routing(model) as recorder:
        model.generate(...)
    metrics = mathrl.moe.collect_metrics(model)   # {"moe/layer0/load_cv": ..., ...}

Importing this package, or `mathrl.moe.config`, does not import torch: the names below load
their modules on first access.
"""

from __future__ import annotations

import importlib

from mathrl.moe.config import CapacityMode, MoEConfig, ReplayMode

__all__ = [
    "CapacityMode",
    "MoEConfig",
    "ReplayMode",
    "enable",
    "disable",
    "is_enabled",
    "runtime_of",
    "collect_metrics",
    "pop_aux_loss",
    "record_routing",
    "replay_routing",
    "route_change_frac",
    "Routing",
    "RoutingRecorder",
]

_LAZY = {
    "enable": "mathrl.moe.patch",
    "disable": "mathrl.moe.patch",
    "is_enabled": "mathrl.moe.patch",
    "runtime_of": "mathrl.moe.patch",
    "collect_metrics": "mathrl.moe.patch",
    "pop_aux_loss": "mathrl.moe.patch",
    "record_routing": "mathrl.moe.replay",
    "replay_routing": "mathrl.moe.replay",
    "route_change_frac": "mathrl.moe.replay",
    "Routing": "mathrl.moe.replay",
    "RoutingRecorder": "mathrl.moe.replay",
}


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'mathrl.moe' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
