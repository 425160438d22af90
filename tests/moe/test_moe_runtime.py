"""Runtime behaviour: dense equivalence, capacity drops, padding, telemetry, aux loss, enable/disable."""

from __future__ import annotations

import copy
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

import mathrl.moe as moe
from mathrl.moe.dispatch import combine, fixed_capacity, permute, plan_dispatch


def test_one_expert_top1_equals_dense_mlp(make_model):
    model = moe.enable(make_model("qwen3_moe", num_experts=1, num_experts_per_tok=1), {"expert_impl": "loop"})
    block = model.model.layers[0].mlp
    gate, up = block.experts.gate_up_proj[0].chunk(2, dim=0)
    down = block.experts.down_proj[0]
    x = torch.randn(2, 5, 64, requires_grad=True)
    x_ref = x.detach().clone().requires_grad_(True)

    out = block(x)
    expected = F.linear(F.silu(F.linear(x_ref, gate)) * F.linear(x_ref, up), down)
    assert torch.allclose(out, expected, atol=1e-6)

    grad = torch.randn_like(out)
    (gate_up_grad,) = torch.autograd.grad(out, [block.experts.gate_up_proj], grad, retain_graph=True)
    out.backward(grad)
    expected.backward(grad)
    assert torch.allclose(x.grad, x_ref.grad, atol=1e-6)
    dense_grads = torch.autograd.grad(
        F.linear(F.silu(F.linear(x_ref, gate)) * F.linear(x_ref, up), down), [gate, up], grad
    )
    assert torch.allclose(gate_up_grad[0], torch.cat(dense_grads), atol=1e-5)


def _loop_reference_capacity(top_k_index, capacity, num_experts):
    """Kept flags of each (token, k) slot, first choices of all tokens first (k-major order)."""
    num_tokens, top_k = top_k_index.shape
    load = [0] * num_experts
    kept = torch.zeros(num_tokens, top_k, dtype=torch.bool)
    for k in range(top_k):
        for token in range(num_tokens):
            expert = int(top_k_index[token, k])
            if load[expert] < capacity:
                load[expert] += 1
                kept[token, k] = True
    return kept


def test_fixed_capacity_drops_match_loop():
    generator = torch.Generator().manual_seed(1)
    num_tokens, top_k, num_experts = 40, 2, 4
    logits = torch.randn(num_tokens, num_experts, generator=generator)
    logits[:, 0] += 2.0  # overload expert 0
    top_k_index = torch.topk(logits, top_k, dim=-1).indices

    plan = plan_dispatch(top_k_index, num_experts, "fixed", capacity_factor=1.0)
    capacity = fixed_capacity(num_tokens * top_k, num_experts, 1.0)
    kept = _loop_reference_capacity(top_k_index, capacity, num_experts)

    assert plan.capacity == capacity == 20
    assert int(plan.dropped) == int((~kept).sum()) > 0
    assert plan.counts.tolist() == [min(int((top_k_index == e).sum()), capacity) for e in range(num_experts)]
    kept_slots = sorted(plan.slot_order.tolist())
    expected_slots = sorted(t * top_k + k for t, k in kept.nonzero().tolist())
    assert kept_slots == expected_slots

    # combine: a token gets exactly the weighted outputs of its kept slots
    hidden = torch.randn(num_tokens, 3, generator=generator)
    weights = torch.rand(num_tokens, top_k, generator=generator)
    out = combine(permute(hidden, plan) * 2.0, weights, plan)
    expected = 2.0 * hidden * (weights * kept).sum(-1, keepdim=True)
    assert torch.allclose(out, expected, atol=1e-6)


def test_dropped_frac_metric_counts_drops(make_model, make_batch):
    model = moe.enable(make_model("qwen3_moe"), {"capacity_mode": "fixed", "capacity_factor": 0.5})
    ids, mask = make_batch()
    with moe.record_routing(model) as recorder:
        model(ids, attention_mask=mask)
    metrics = moe.collect_metrics(model)

    routing = recorder.routing
    total_dropped = total_routed = 0
    for layer, indices in routing.indices.items():
        real = indices[mask.bool()].long()  # (N, K) of the dispatched tokens
        capacity = fixed_capacity(real.numel(), 8, 0.5)
        dropped = int((~_loop_reference_capacity(real, capacity, 8)).sum())
        assert metrics[f"moe/layer{layer}/dropped_frac"] == pytest.approx(dropped / real.numel())
        total_dropped += dropped
        total_routed += real.numel()
    assert metrics["moe/dropped_frac"] == pytest.approx(total_dropped / total_routed)
    assert metrics["moe/dropped_frac"] > 0


def test_adaptive_capacity_drops_nothing():
    top_k_index = torch.tensor([[0, 1], [0, 2], [0, 1], [3, 0]])
    plan = plan_dispatch(top_k_index, 4, "adaptive")
    assert plan.capacity == 4
    assert plan.dropped is None
    assert plan.slot_order.numel() == 8
    assert plan.counts.tolist() == [4, 2, 1, 1]


def _positions(mask):
    return (mask.cumsum(-1) - 1).clamp_min(0)


def test_padding_aware_equals_unpadded_rows(make_model, make_batch):
    model = moe.enable(make_model("qwen3_moe"))
    ids, mask = make_batch()
    with torch.no_grad():
        padded = model(ids, attention_mask=mask, position_ids=_positions(mask)).logits
        for row in range(ids.shape[0]):
            real = mask[row].bool()
            alone = model(ids[row, real].unsqueeze(0)).logits[0]
            assert torch.allclose(padded[row, real], alone, atol=1e-5), f"row {row} differs"


def test_padding_tokens_are_not_dispatched(make_model, make_batch):
    model = moe.enable(make_model("qwen3_moe"))
    unaware = moe.enable(copy.deepcopy(model), {"padding_aware": False})
    ids, mask = make_batch()
    with torch.no_grad():
        aware_logits = model(ids, attention_mask=mask).logits
        unaware_logits = unaware(ids, attention_mask=mask).logits
    real = mask.bool()
    assert torch.allclose(aware_logits[real], unaware_logits[real], atol=1e-6)

    aware = moe.collect_metrics(model, per_expert=True)
    counted = sum(v for k, v in aware.items() if k.startswith("moe/layer0/tokens/"))
    assert counted == int(real.sum()) * 2  # K = 2 slots per real token
    everything = moe.collect_metrics(unaware, per_expert=True)
    assert sum(v for k, v in everything.items() if k.startswith("moe/layer0/tokens/")) == ids.numel() * 2


def test_tokens_per_expert_match_routing(make_model, make_batch):
    model = moe.enable(make_model("mixtral"))
    ids, mask = make_batch()
    with moe.record_routing(model) as recorder, torch.no_grad():
        model(ids, attention_mask=mask)
    metrics = moe.collect_metrics(model, per_expert=True)
    for layer, indices in recorder.routing.indices.items():
        chosen = indices[mask.bool()].long().reshape(-1)
        load = torch.bincount(chosen, minlength=4).double()
        assert [metrics[f"moe/layer{layer}/tokens/e{e}"] for e in range(4)] == load.tolist()
        assert metrics[f"moe/layer{layer}/load_cv"] == pytest.approx(
            float(load.std(unbiased=False) / load.mean())
        )
        assert metrics[f"moe/layer{layer}/max_mean_load"] == pytest.approx(float(load.max() / load.mean()))
        assert 0 < metrics[f"moe/layer{layer}/router_entropy"] <= torch.log(torch.tensor(4.0)).item()
    assert moe.collect_metrics(model) == {}  # collecting resets the accumulators


def test_aux_loss_recorded_and_differentiable(make_model, make_batch):
    model = moe.enable(make_model("qwen3_moe"), {"aux_loss_coef": 0.01, "z_loss_coef": 0.001})
    ids, mask = make_batch()
    model.train()
    model(ids, attention_mask=mask)
    loss = moe.pop_aux_loss(model)
    assert loss is not None and loss.item() > 0
    loss.backward()
    assert model.model.layers[0].mlp.gate.weight.grad.abs().sum() > 0
    assert moe.pop_aux_loss(model) is None  # popped

    plain = moe.enable(make_model("qwen3_moe"))
    plain(ids, attention_mask=mask)
    assert moe.pop_aux_loss(plain) is None


def test_router_logits_still_captured(make_model, make_batch):
    model = moe.enable(make_model("qwen3_moe"))
    ids, mask = make_batch()
    output = model(ids, attention_mask=mask, output_router_logits=True)
    assert len(output.router_logits) == 2
    assert output.router_logits[0].shape == (ids.numel(), 8)
    assert output.aux_loss is not None


def test_freeze_router_and_disable_restore(family, make_model, make_batch):
    reference = make_model(family)
    model = moe.enable(copy.deepcopy(reference), {"freeze_router": True})
    routers = [
        m
        for name, m in model.named_modules()
        if name.endswith((".gate", ".router")) and hasattr(m, "_mathrl_layer")
    ]
    assert routers and all(not p.requires_grad for r in routers for p in r.parameters())

    moe.disable(model)
    assert not moe.is_enabled(model)
    assert all(p.requires_grad for r in routers for p in r.parameters())
    assert all(not hasattr(type(r), "_mathrl_base_class") for r in routers)  # original router classes
    assert all(not hasattr(r, "_mathrl_layer") for r in routers)
    assert model.config._experts_implementation == "eager"
    ids, mask = make_batch()
    with torch.no_grad():
        assert torch.equal(model(ids, attention_mask=mask).logits, reference(ids, attention_mask=mask).logits)


def test_gradient_checkpointing_keeps_padding_layout(make_model, make_batch):
    reference = moe.enable(make_model("qwen3_moe"), {"capacity_mode": "fixed", "capacity_factor": 0.6})
    model = copy.deepcopy(reference)
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    reference.train()
    model.train()
    ids, mask = make_batch()
    with moe.record_routing(reference) as recorder, torch.no_grad():
        reference(ids, attention_mask=mask)
    with torch.no_grad():  # change the router so that replayed and fresh routing differ
        for m in (reference, model):
            for layer in m.model.layers:
                layer.mlp.gate.weight.add_(
                    torch.randn(layer.mlp.gate.weight.shape, generator=torch.Generator().manual_seed(5))
                )
    for m in (reference, model):
        with moe.replay_routing(m, recorder.routing):
            loss = m(ids, attention_mask=mask).logits[mask.bool()].pow(2).mean()
        loss.backward()  # outside the replay block: the recomputation must still replay
    for (name, p_ref), p in zip(reference.named_parameters(), model.parameters()):
        assert torch.allclose(p.grad, p_ref.grad, atol=1e-6), name


def test_import_config_without_torch():
    code = (
        "import sys, mathrl.moe.config, mathrl.moe; "
        "assert 'torch' not in sys.modules, 'torch imported'; "
        "mathrl.moe.Routing; assert 'torch' in sys.modules, 'lazy attribute not loaded'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=".")


def test_invalid_options_raise():
    with pytest.raises(ValueError, match="expert_impl"):
        moe.MoEConfig(expert_impl="cuda")
    with pytest.raises(ValueError, match="capacity_factor"):
        moe.MoEConfig(capacity_factor=0)
