"""The recipe's ``model.lora`` section as a peft ``LoraConfig``."""

from __future__ import annotations

from peft import LoraConfig as PeftLoraConfig

from mathrl.config import LoraConfig

__all__ = ["build_peft_config"]


def build_peft_config(cfg: LoraConfig) -> PeftLoraConfig | None:
    """Return a peft config for causal-LM adapters, or None when LoRA is off.

    ``target_parameters`` adapts fused 3-D expert weights (e.g. ``mlp.experts.gate_up_proj``),
    which ``target_modules`` cannot reach because the experts are not ``nn.Linear`` modules.
    """
    if not cfg.enable:
        return None
    if not cfg.target_modules and not cfg.target_parameters:
        raise ValueError("model.lora.enable is true but target_modules and target_parameters are both empty")
    return PeftLoraConfig(
        task_type="CAUSAL_LM",
        r=cfg.r,
        lora_alpha=cfg.alpha,
        lora_dropout=cfg.dropout,
        target_modules=list(cfg.target_modules) or None,
        target_parameters=list(cfg.target_parameters) or None,
    )
