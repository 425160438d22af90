"""The PPO critic: a scalar value head on a transformer backbone, separate from the policy or shared with it.

Also the model-side options the PPO trainer applies: router freezing for MoE models and LoRA
adapters through peft.
"""

from __future__ import annotations

import logging
import re

import torch
from torch import nn

from mathrl.config import LoraConfig

__all__ = ["fresh_copy", "ValueHead", "CriticModel", "PolicyWithValueHead", "freeze_router", "add_lora", "position_ids_from_mask"]

logger = logging.getLogger(__name__)

# Router weights of MoE blocks: Qwen3-MoE, Qwen2-MoE, DeepSeek (`mlp.gate`), Mixtral (`block_sparse_moe.gate`),
# and families that name the module `router`. Dense MLPs call theirs `gate_proj`, which does not match.
_ROUTER_PARAM = re.compile(r"(^|\.)(gate|router)\.[A-Za-z_]+$")


def fresh_copy(model: nn.Module) -> nn.Module:
    """Return a copy of a transformers model built from its config and loaded with its weights.

    ``copy.deepcopy`` is not safe here: a trainer can leave a wrapped ``forward`` in the instance
    dict (TRL's SFTTrainer does, as of TRL 1.16), and the copy's wrapper still calls the original
    model, so a "frozen reference" would follow the policy.
    """
    import copy

    import mathrl.moe

    parameter = next(model.parameters())
    config = copy.deepcopy(model.config)
    runtime = mathrl.moe.is_enabled(model)
    if runtime:
        # The config names mathrl's experts implementation, which only `enable` may switch on.
        config._experts_implementation = mathrl.moe.runtime_of(model).previous_implementation
    clone = type(model)(config).to(device=parameter.device, dtype=parameter.dtype)
    clone.load_state_dict(model.state_dict())
    if runtime:
        mathrl.moe.enable(clone, mathrl.moe.runtime_of(model).config)
    return clone


def position_ids_from_mask(attention_mask: torch.Tensor) -> torch.Tensor:
    """Positions counted over real tokens only, as ``generate`` assigns them for left-padded prompts."""
    return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)


class ValueHead(nn.Module):
    """A linear map from the last hidden state to one value per token, computed in float32."""

    def __init__(self, hidden_size: int):
        super().__init__()
        self.linear = nn.Linear(hidden_size, 1)
        # A small initial output keeps the first value targets from being swamped by head noise.
        nn.init.normal_(self.linear.weight, std=1 / (hidden_size + 1))
        nn.init.zeros_(self.linear.bias)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.linear(hidden.float()).squeeze(-1)  # (R, S)


def _hidden_size(model) -> int:
    config = model.config
    text_config = config.get_text_config() if hasattr(config, "get_text_config") else config
    return text_config.hidden_size


class CriticModel(nn.Module):
    """A value head on its own copy of the policy's decoder (no language-model head)."""

    def __init__(self, policy_model):
        super().__init__()
        self.backbone = fresh_copy(policy_model.get_decoder())
        self.value_head = ValueHead(_hidden_size(policy_model))
        self.config = policy_model.config

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """Return the value at every position of ``input_ids``; (R, S) -> (R, S)."""
        output = self.backbone(input_ids=input_ids, attention_mask=attention_mask,
                               position_ids=position_ids_from_mask(attention_mask), use_cache=False)
        return self.value_head(output.last_hidden_state)


class PolicyWithValueHead(nn.Module):
    """The policy language model with a value head on its last hidden state (the ``shared`` critic).

    One forward gives logits and values, and both losses reach the shared backbone.
    """

    def __init__(self, policy_model):
        super().__init__()
        self.policy = policy_model
        self.value_head = ValueHead(_hidden_size(policy_model))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, **kwargs):
        output = self.policy(input_ids=input_ids, attention_mask=attention_mask,
                             position_ids=position_ids_from_mask(attention_mask), output_hidden_states=True,
                             use_cache=False, **kwargs)
        return output, self.value_head(output.hidden_states[-1])


def freeze_router(model: nn.Module) -> list[str]:
    """Set ``requires_grad=False`` on the router (gate) weights of every MoE block; return their names.

    Raises ValueError when the model has no parameter that looks like a router, so a recipe asking
    for a frozen router on a dense model fails instead of silently training everything.
    """
    names = [name for name, param in model.named_parameters() if _ROUTER_PARAM.search(name)]
    if not names:
        raise ValueError("moe.freeze_router is true but the model has no router parameters (names ending in "
                         "'gate.<param>' or 'router.<param>'); set moe.freeze_router: false for dense models")
    for name, param in model.named_parameters():
        if name in names:
            param.requires_grad_(False)
    logger.info("froze %d router parameters (e.g. %s)", len(names), names[0])
    return names


def add_lora(model, lora: LoraConfig, causal_lm: bool = True):
    """Wrap ``model`` in a peft LoRA adapter as the recipe's ``model.lora`` section describes.

    ``causal_lm`` False is for a bare decoder (the separate critic's backbone), which has no LM head.
    """
    from peft import LoraConfig as PeftLoraConfig
    from peft import get_peft_model

    config = PeftLoraConfig(r=lora.r, lora_alpha=lora.alpha, lora_dropout=lora.dropout,
                            target_modules=list(lora.target_modules) or None,
                            target_parameters=list(lora.target_parameters) or None,
                            task_type="CAUSAL_LM" if causal_lm else None)
    return get_peft_model(model, config)
