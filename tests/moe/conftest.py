"""Tiny models of every supported MoE family, built from their transformers config classes."""

from __future__ import annotations

import pytest
import torch
import transformers

VOCAB = 96
COMMON = dict(
    vocab_size=VOCAB,
    hidden_size=64,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
    max_position_embeddings=128,
    pad_token_id=0,
    bos_token_id=1,
    eos_token_id=2,
)

# family -> (config class, causal-LM class, config keywords)
FAMILIES = {
    "qwen3_moe": (
        "Qwen3MoeConfig",
        "Qwen3MoeForCausalLM",
        dict(
            head_dim=16,
            intermediate_size=128,
            moe_intermediate_size=32,
            num_experts=8,
            num_experts_per_tok=2,
            norm_topk_prob=True,
        ),
    ),
    "qwen2_moe": (
        "Qwen2MoeConfig",
        "Qwen2MoeForCausalLM",
        dict(
            intermediate_size=128,
            moe_intermediate_size=32,
            shared_expert_intermediate_size=48,
            num_experts=8,
            num_experts_per_tok=2,
            norm_topk_prob=False,
        ),
    ),
    "mixtral": (
        "MixtralConfig",
        "MixtralForCausalLM",
        dict(head_dim=16, intermediate_size=32, num_local_experts=4, num_experts_per_tok=2),
    ),
    "olmoe": (
        "OlmoeConfig",
        "OlmoeForCausalLM",
        dict(intermediate_size=32, num_experts=8, num_experts_per_tok=2, norm_topk_prob=False),
    ),
    "deepseek_v3": (
        "DeepseekV3Config",
        "DeepseekV3ForCausalLM",
        dict(
            num_hidden_layers=3,
            num_key_value_heads=4,
            intermediate_size=96,
            moe_intermediate_size=32,
            n_routed_experts=8,
            num_experts_per_tok=3,
            n_group=4,
            topk_group=2,
            n_shared_experts=1,
            first_k_dense_replace=1,
            routed_scaling_factor=2.5,
            norm_topk_prob=True,
            kv_lora_rank=16,
            q_lora_rank=24,
            qk_rope_head_dim=8,
            qk_nope_head_dim=8,
            v_head_dim=16,
        ),
    ),
    "gpt_oss": (
        "GptOssConfig",
        "GptOssForCausalLM",
        dict(
            head_dim=16,
            intermediate_size=32,
            num_local_experts=8,
            num_experts_per_tok=2,
            sliding_window=8,
            layer_types=["sliding_attention", "full_attention"],
        ),
    ),
}


def build_model(
    family: str, seed: int = 0, std: float = 0.1, experts_implementation: str = "eager", **overrides
) -> torch.nn.Module:
    """An fp32 tiny model with all weights, biases and buffers of the MoE blocks drawn at random.

    The router weights get a wide spread (std 1) so that top-k choices are far from ties.
    """
    config_name, model_name, keywords = FAMILIES[family]
    config = getattr(transformers, config_name)(
        **{**COMMON, **keywords, **overrides}, experts_implementation=experts_implementation
    )
    torch.manual_seed(seed)
    model = getattr(transformers, model_name)(config).float()
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "norm" in name:
                continue
            scale = 1.0 if (name.endswith("gate.weight") or name.endswith("router.weight")) else std
            param.copy_(torch.randn(param.shape, generator=generator) * scale)
        for name, buffer in model.named_buffers():
            if name.endswith("e_score_correction_bias"):
                buffer.copy_(torch.randn(buffer.shape, generator=generator) * 0.5)
    return model.eval()


def padded_batch(batch: int = 3, length: int = 12, seed: int = 0):
    """Token ids and a mask with left padding in row 0 and right padding in row 1."""
    generator = torch.Generator().manual_seed(seed)
    ids = torch.randint(3, VOCAB, (batch, length), generator=generator)
    mask = torch.ones_like(ids)
    mask[0, : length // 3] = 0
    mask[1, length - length // 4 :] = 0
    ids[mask == 0] = 0
    return ids, mask


@pytest.fixture(params=sorted(FAMILIES))
def family(request) -> str:
    return request.param


@pytest.fixture
def make_model():
    """The `build_model` function, for tests that need several models."""
    return build_model


@pytest.fixture
def make_batch():
    """The `padded_batch` function."""
    return padded_batch
