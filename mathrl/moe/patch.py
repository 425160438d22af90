"""Switch a loaded transformers MoE model to mathrl's runtime and back.

`enable` keeps every parameter, name and shape. It

1. registers `LayerState.run_experts` as the ``"mathrl"`` implementation in transformers'
   `ExpertsInterface` and selects it with `set_experts_implementation`, so the experts modules,
   hub-checkpoint conversion and ``save_pretrained`` stay transformers' own;
2. swaps each router's class for a subclass whose forward is `LayerState.route` (fp32 logits,
   replay, record, telemetry). `isinstance` checks still hold, so router-logit capture through
   ``output_router_logits`` keeps working;
3. hooks the base model's forward to give the runtime the attention mask (see `runtime`).
"""

from __future__ import annotations

import inspect
import logging
import re
from typing import Callable

import torch
from transformers import PreTrainedModel
from transformers.integrations.moe import ExpertsInterface

from mathrl.moe.config import MoEConfig
from mathrl.moe.router import Gating, SigmoidGroupTopK, SoftmaxTopK, TopKSoftmax
from mathrl.moe.runtime import LayerState, MoERuntime
from mathrl.moe.telemetry import summarise
from mathrl.registry import Registry

__all__ = [
    "enable",
    "disable",
    "is_enabled",
    "runtime_of",
    "collect_metrics",
    "pop_aux_loss",
    "ROUTER_FAMILIES",
    "EXPERTS_IMPLEMENTATION",
]

logger = logging.getLogger(__name__)

EXPERTS_IMPLEMENTATION = "mathrl"

ROUTER_FAMILIES: Registry[Callable[[torch.nn.Module], Gating]] = Registry("MoE router class")
"""Router class name -> function building the gating rule from a router module."""


def _softmax_topk(router):
    return SoftmaxTopK(top_k=router.top_k, norm_topk_prob=router.norm_topk_prob)


for _name in ("Qwen3MoeTopKRouter", "Qwen2MoeTopKRouter", "OlmoeTopKRouter"):
    ROUTER_FAMILIES.add(_name, _softmax_topk)
ROUTER_FAMILIES.add("MixtralTopKRouter", lambda router: SoftmaxTopK(top_k=router.top_k, norm_topk_prob=True))
ROUTER_FAMILIES.add("GptOssTopKRouter", lambda router: TopKSoftmax(top_k=router.top_k))
ROUTER_FAMILIES.add(
    "DeepseekV3TopkRouter",
    lambda router: SigmoidGroupTopK(
        top_k=router.top_k,
        n_group=router.num_group,
        topk_group=router.topk_group,
        norm_topk_prob=router.norm_topk_prob,
        routed_scaling_factor=router.routed_scaling_factor,
        correction_bias=router.e_score_correction_bias,
    ),
)


def _experts_forward(self, hidden_states, top_k_index, top_k_weights):
    state = getattr(self, "_mathrl_layer", None)
    if state is None:
        raise RuntimeError(
            f"{type(self).__name__} is set to experts_implementation='mathrl' but was not "
            "enabled by mathrl.moe.enable; call enable(model) on the model that owns it"
        )
    return state.run_experts(self, hidden_states, top_k_index, top_k_weights)


def _router_forward(self, hidden_states):
    return self._mathrl_layer.route(self, hidden_states)


_ROUTED_CLASSES: dict[type, type] = {}


def _routed_class(cls: type) -> type:
    """Return a subclass of the router class with mathrl's forward and the same name, cached per class."""
    if cls not in _ROUTED_CLASSES:
        _ROUTED_CLASSES[cls] = type(
            cls.__name__,
            (cls,),
            {"forward": _router_forward, "__module__": cls.__module__, "_mathrl_base_class": cls},
        )
    return _ROUTED_CLASSES[cls]


def _pretrained(model) -> PreTrainedModel:
    if isinstance(model, PreTrainedModel):
        return model
    if hasattr(model, "get_base_model"):  # peft.PeftModel
        return _pretrained(model.get_base_model())
    for module in model.modules():
        if isinstance(module, PreTrainedModel):
            return module
    raise ValueError(f"{type(model).__name__} contains no transformers PreTrainedModel")


def runtime_of(model) -> MoERuntime:
    """Return the runtime of a model switched on with `enable`."""
    runtime = getattr(_pretrained(model), "_mathrl_moe", None)
    if runtime is None:
        raise ValueError(
            "mathrl's MoE runtime is not enabled on this model; call mathrl.moe.enable(model) first"
        )
    return runtime


def is_enabled(model) -> bool:
    return getattr(_pretrained(model), "_mathrl_moe", None) is not None


def _layer_number(name: str, ordinal: int) -> int:
    match = re.search(r"layers\.(\d+)\.", name)
    return int(match.group(1)) if match else ordinal


def _moe_blocks(model: PreTrainedModel):
    """Yield (layer number, experts module, router module) for each MoE block."""
    modules = dict(model.named_modules())
    found = []
    for name, module in modules.items():
        if not (
            hasattr(module, "has_gate") and hasattr(module, "down_proj") and hasattr(module, "num_experts")
        ):
            continue  # not an experts module decorated with transformers' use_experts_implementation
        parent = modules[name.rsplit(".", 1)[0]] if "." in name else model
        routers = [
            child
            for child_name, child in parent.named_children()
            if child_name in ("gate", "router") and isinstance(child, torch.nn.Module)
        ]
        if len(routers) != 1:
            raise NotImplementedError(
                f"MoE block {name.rsplit('.', 1)[0]!r} has no single router named 'gate' or "
                f"'router'; mathrl.moe supports routers {', '.join(ROUTER_FAMILIES.names())}"
            )
        router = routers[0]
        base = getattr(type(router), "_mathrl_base_class", type(router))
        if base.__name__ not in ROUTER_FAMILIES:
            raise NotImplementedError(
                f"router class {base.__name__} of {name!r} is not supported; supported: "
                f"{', '.join(ROUTER_FAMILIES.names())} (add one to ROUTER_FAMILIES)"
            )
        found.append((_layer_number(name, len(found)), module, router, ROUTER_FAMILIES.get(base.__name__)))
    return found


def _as_config(config) -> MoEConfig:
    if config is None:
        return MoEConfig()
    if isinstance(config, dict):
        return MoEConfig(**config)
    if not isinstance(config, MoEConfig):
        raise TypeError(f"config must be a MoEConfig, a dict or None, got {type(config).__name__}")
    return config


def enable(model, config: MoEConfig | dict | None = None):
    """Run the expert layers of a transformers MoE model through mathrl's runtime; returns `model`.

    Calling it again replaces the options. With ``config.enable`` False it leaves the model as is.
    With ``config.expert_parallel.size`` > 1 inside an initialised torch.distributed world, it shards
    the experts over groups of that many ranks (every rank must call it; see `mathrl.moe.parallel`).
    """
    config = _as_config(config)
    if not config.enable:
        return model
    hf_model = _pretrained(model)
    if is_enabled(hf_model):
        disable(hf_model)
    blocks = _moe_blocks(hf_model)
    if not blocks:
        raise ValueError(f"{type(hf_model).__name__} has no MoE expert layers that mathrl.moe can run")

    groups = None
    if config.expert_parallel.size > 1:
        from mathrl.moe.parallel.groups import setup_groups
        from mathrl.moe.parallel.state import validate

        groups = setup_groups(config.expert_parallel.size, config.expert_parallel.hierarchical)
        if groups is not None:
            validate(blocks, config, groups)

    ExpertsInterface.register(EXPERTS_IMPLEMENTATION, _experts_forward)
    runtime = MoERuntime(config)
    runtime.previous_implementation = hf_model.get_experts_implementation()
    hf_model.set_experts_implementation(EXPERTS_IMPLEMENTATION)
    runtime.patched = []
    for layer, experts, router, make_gating in blocks:
        if experts.config._experts_implementation != EXPERTS_IMPLEMENTATION:
            hf_model.set_experts_implementation(runtime.previous_implementation)
            raise RuntimeError(
                f"set_experts_implementation did not reach layer {layer} "
                f"({type(experts).__name__} has {experts.config._experts_implementation!r})"
            )
        state = LayerState(runtime, layer, experts.num_experts, make_gating)
        experts._mathrl_layer = state
        router._mathrl_layer = state
        router.__class__ = _routed_class(type(router))
        frozen = {}
        if config.freeze_router:
            for name, param in router.named_parameters():
                frozen[name] = param.requires_grad
                param.requires_grad_(False)
        runtime.patched.append((experts, router, frozen))
        runtime.layers[layer] = state

    if groups is not None:  # shard the experts over the expert-parallel group (see mathrl.moe.parallel)
        from mathrl.moe.parallel.state import attach

        attach(hf_model, runtime, blocks, config, groups)

    # The hooks find the runtime through the module they run on, so that a deep copy of the model
    # uses its own copy of the runtime.
    base = hf_model.base_model
    base._mathrl_moe = runtime
    hf_model._mathrl_moe = runtime
    runtime.hooks = [
        base.register_forward_pre_hook(_pre_forward_hook(base), with_kwargs=True),
        base.register_forward_hook(_post_forward_hook, always_call=True),
    ]
    logger.info(
        "mathrl.moe enabled on %d MoE layers of %s (capacity %s)",
        len(blocks),
        type(hf_model).__name__,
        config.capacity_mode.value,
    )
    return model


def _pre_forward_hook(base: torch.nn.Module):
    signature = inspect.signature(base.forward)

    def hook(module, args, kwargs):
        try:
            bound = signature.bind_partial(*args, **kwargs).arguments
        except TypeError:
            bound = kwargs
        runtime = module._mathrl_moe
        # Activation checkpointing recomputes layers in backward, after this forward has ended.
        runtime.keep_layout = bool(
            torch.is_grad_enabled()
            and module.training
            and any(getattr(m, "gradient_checkpointing", False) for m in module.modules())
        )
        runtime.begin_forward(bound.get("input_ids"), bound.get("inputs_embeds"), bound.get("attention_mask"))

    return hook


def _post_forward_hook(module, args, output):
    module._mathrl_moe.end_forward()


def disable(model):
    """Switch a model back to its transformers experts implementation and routers; returns `model`.

    With sharded experts this gathers them first, so every rank of the expert-parallel group must call it.
    """
    hf_model = _pretrained(model)
    runtime = runtime_of(hf_model)
    if runtime.parallel is not None:  # a collective: gathers the expert shards back
        from mathrl.moe.parallel.state import detach

        detach(hf_model, runtime)
    for hook in runtime.hooks:
        hook.remove()
    for experts, router, frozen in runtime.patched:
        router.__class__ = router._mathrl_base_class
        del router._mathrl_layer
        del experts._mathrl_layer
        for name, requires_grad in frozen.items():
            router.get_parameter(name).requires_grad_(requires_grad)
    hf_model.set_experts_implementation(runtime.previous_implementation)
    del hf_model.base_model._mathrl_moe
    if hasattr(hf_model, "_mathrl_moe"):
        del hf_model._mathrl_moe
    return model


def collect_metrics(model, per_expert: bool = False) -> dict[str, float]:
    """Return the `moe/...` metrics accumulated since the last call and reset them (one host sync).

    See `mathrl.moe.telemetry.summarise` for the keys.
    """
    runtime = runtime_of(model)
    return summarise({layer: state.stats for layer, state in runtime.layers.items()}, per_expert=per_expert)


def pop_aux_loss(model) -> torch.Tensor | None:
    """Return the weighted load-balancing plus z-loss of the forwards since the last call, and clear it.

    None when both coefficients are 0 or no forward ran with grad enabled.
    """
    runtime = runtime_of(model)
    losses = [loss for state in runtime.layers.values() for loss in state.aux_losses]
    for state in runtime.layers.values():
        state.aux_losses.clear()
    return torch.stack(losses).sum() if losses else None
