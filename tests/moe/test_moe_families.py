"""Each family with the runtime enabled matches transformers' eager experts in outputs and gradients."""

from __future__ import annotations

import copy

import pytest
import torch

import mathrl.moe as moe

TOLERANCE = 1e-5


def _forward_backward(model, ids, mask):
    logits = model(ids, attention_mask=mask).logits
    real = mask.bool()
    loss = (logits[real] * torch.linspace(-1, 1, logits.shape[-1])).sum()
    loss.backward()
    return logits.detach()


def _assert_equivalent(family, make_model, make_batch, config):
    reference = make_model(family)
    model = moe.enable(copy.deepcopy(reference), config)
    ids, mask = make_batch()

    expected = _forward_backward(reference, ids, mask)
    actual = _forward_backward(model, ids, mask)

    real = mask.bool()
    assert torch.allclose(actual[real], expected[real], atol=TOLERANCE, rtol=TOLERANCE), (
        f"{family}: max logit difference {(actual[real] - expected[real]).abs().max():.3g}"
    )
    names = [name for name, _ in reference.named_parameters()]
    assert names == [name for name, _ in model.named_parameters()]
    for (name, ref_param), param in zip(reference.named_parameters(), model.parameters()):
        if ref_param.grad is None:
            assert param.grad is None or not param.grad.any(), f"{family}: {name} got a gradient"
            continue
        assert param.grad is not None, f"{family}: {name} has no gradient"
        scale = ref_param.grad.abs().max().clamp_min(1.0)
        difference = (param.grad - ref_param.grad).abs().max() / scale
        assert difference < TOLERANCE, f"{family}: gradient of {name} differs by {difference:.3g}"


def test_family_matches_eager(family, make_model, make_batch):
    _assert_equivalent(family, make_model, make_batch, moe.MoEConfig())


@pytest.mark.parametrize("kernel", ["grouped_mm", "batched", "loop"])
@pytest.mark.parametrize("family", ["qwen3_moe", "gpt_oss"])
def test_kernel_matches_eager(family, kernel, make_model, make_batch):
    _assert_equivalent(family, make_model, make_batch, moe.MoEConfig(expert_impl=kernel))


@pytest.mark.parametrize("capacity_mode", ["adaptive", "fixed"])
def test_capacity_without_drops_matches_eager(capacity_mode, make_model, make_batch):
    # A capacity factor of E makes the fixed capacity N*K, so nothing is dropped.
    config = moe.MoEConfig(capacity_mode=capacity_mode, capacity_factor=8.0)
    _assert_equivalent("qwen3_moe", make_model, make_batch, config)


def test_family_block_structure(family, make_model):
    model = moe.enable(make_model(family))
    runtime_layers = sorted(moe.patch.runtime_of(model).layers)
    expected = [1, 2] if family == "deepseek_v3" else [0, 1]  # DeepSeek-V3 keeps layer 0 dense
    assert runtime_layers == expected
    assert model.config._experts_implementation == "mathrl"
