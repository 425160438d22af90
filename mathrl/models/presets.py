"""Tiny model presets built from a config, with the tokenizer that ships in the package.

Nothing is downloaded: a preset is a transformers config plus ``from_config`` with a fixed seed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mathrl.registry import Registry

__all__ = ["ModelPreset", "PRESETS", "TOKENIZER_DIR"]

TOKENIZER_DIR = Path(__file__).parent / "tokenizer"


@dataclass(frozen=True)
class ModelPreset:
    config_class: str
    """Name of the transformers config class, e.g. ``Qwen3MoeConfig``."""
    config: dict[str, Any] = field(default_factory=dict)
    """Config overrides; vocabulary size and special token ids come from the shipped tokenizer."""
    description: str = ""


PRESETS: Registry[ModelPreset] = Registry("model preset")

_QWEN3_MOE_COMMON = dict(
    num_attention_heads=4,
    num_key_value_heads=2,
    head_dim=64,
    max_position_embeddings=4096,
    tie_word_embeddings=True,
    decoder_sparse_step=1,
    norm_topk_prob=True,
    router_aux_loss_coef=0.0,
    output_router_logits=False,
    rope_theta=10000.0,
)

PRESETS.add(
    "tiny-qwen3-moe",
    ModelPreset(
        "Qwen3MoeConfig",
        dict(
            _QWEN3_MOE_COMMON,
            hidden_size=256,
            intermediate_size=512,
            moe_intermediate_size=192,
            num_hidden_layers=4,
            num_experts=8,
            num_experts_per_tok=2,
        ),
        "Qwen3-MoE, hidden 256, 4 layers, 8 experts top-2, expert width 192: about 6 M parameters",
    ),
)
PRESETS.add(
    "micro-qwen3-moe",
    ModelPreset(
        "Qwen3MoeConfig",
        dict(
            _QWEN3_MOE_COMMON,
            hidden_size=64,
            intermediate_size=128,
            moe_intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            num_key_value_heads=1,
            head_dim=32,
            num_experts=4,
            num_experts_per_tok=2,
        ),
        "Qwen3-MoE, hidden 64, 2 layers, 4 experts top-2: for tests and smoke runs",
    ),
)
