"""Routing record and replay, generation and checkpoints with the runtime enabled."""

from __future__ import annotations

import copy
import json

import pytest
import torch

import mathrl.moe as moe


def test_replay_reproduces_outputs_exactly(family, make_model, make_batch):
    model = moe.enable(make_model(family))
    ids, mask = make_batch()
    with torch.no_grad():
        with moe.record_routing(model) as recorder:
            recorded = model(ids, attention_mask=mask).logits
        with moe.replay_routing(model, recorder.routing):
            replayed = model(ids, attention_mask=mask).logits
    assert torch.equal(recorded, replayed)
    metrics = moe.collect_metrics(model)
    assert metrics["moe/route_change_frac"] == 0.0


def test_replay_forces_recorded_routing_after_update(make_model, make_batch):
    model = moe.enable(make_model("qwen3_moe"))
    ids, mask = make_batch()
    with moe.record_routing(model) as before, torch.no_grad():
        model(ids, attention_mask=mask)
    routing = before.routing

    with torch.no_grad():  # a large router update changes many fresh choices
        for layer in model.model.layers:
            layer.mlp.gate.weight.add_(torch.randn_like(layer.mlp.gate.weight))
    moe.collect_metrics(model)

    with moe.record_routing(model) as during, moe.replay_routing(model, routing):
        logits = model(ids, attention_mask=mask).logits
    real = mask.bool()
    for layer, indices in routing.indices.items():
        used = during.routing.indices[layer]
        assert torch.equal(used[real], indices[real]), f"layer {layer} did not use the recorded experts"
    metrics = moe.collect_metrics(model)
    assert metrics["moe/route_change_frac"] > 0.2

    logits[real].pow(2).mean().backward()
    router = model.model.layers[1].mlp.gate
    assert router.weight.grad is not None and router.weight.grad.abs().sum() > 0

    with moe.record_routing(model) as fresh, torch.no_grad():
        model(ids, attention_mask=mask)
    # Only layer 0 gets the same input in both forwards. Deeper layers depend on the replayed choices.
    first = moe.Routing({0: routing.indices[0]})
    fresh_first = moe.Routing({0: fresh.routing.indices[0]})
    assert moe.route_change_frac(first, fresh_first) == pytest.approx(metrics["moe/layer0/route_change_frac"])


def test_replay_rejects_misaligned_routing(make_model, make_batch):
    model = moe.enable(make_model("qwen3_moe"))
    ids, mask = make_batch()
    with moe.record_routing(model) as recorder, torch.no_grad():
        model(ids, attention_mask=mask)
    with pytest.raises(ValueError, match="token layout"):
        with moe.replay_routing(model, recorder.routing.slice(0, 5)), torch.no_grad():
            model(ids, attention_mask=mask)
    with moe.replay_routing(model, recorder.routing[1:]), torch.no_grad():
        model(ids[1:], attention_mask=mask[1:])  # selected rows line up


def _left_padded_prompts(generator):
    ids = torch.randint(3, 96, (3, 7), generator=generator)
    mask = torch.ones_like(ids)
    mask[0, :3] = 0
    mask[2, :1] = 0
    ids[mask == 0] = 0
    return ids, mask


def test_generate_equals_transformers(family, make_model):
    reference = make_model(family)
    model = moe.enable(copy.deepcopy(reference))
    ids, mask = _left_padded_prompts(torch.Generator().manual_seed(3))
    settings = dict(attention_mask=mask, max_new_tokens=6, do_sample=False, pad_token_id=0, eos_token_id=None)
    expected = reference.generate(ids, **settings)
    actual = model.generate(ids, **settings)
    assert torch.equal(actual, expected)


def test_generate_routing_aligns_with_full_forward(make_model):
    model = moe.enable(make_model("qwen3_moe"))
    prompt, prompt_mask = _left_padded_prompts(torch.Generator().manual_seed(4))
    with moe.record_routing(model) as recorder, torch.no_grad():
        sequences = model.generate(
            prompt,
            attention_mask=prompt_mask,
            max_new_tokens=5,
            do_sample=False,
            pad_token_id=0,
            eos_token_id=None,
        )
    assert len(recorder.calls) == 5  # prefill and four decode steps; the last token is never fed back
    routing = recorder.routing.pad_to(sequences.shape[1])
    full_mask = torch.cat([prompt_mask, torch.ones_like(sequences[:, prompt.shape[1] :])], dim=1)

    with moe.record_routing(model) as fresh, torch.no_grad():
        model(sequences, attention_mask=full_mask)
    for layer, indices in routing.indices.items():
        recorded_positions = (indices >= 0).all(-1)
        assert torch.equal(recorded_positions[:, :-1], full_mask.bool()[:, :-1])
        assert not recorded_positions[:, -1].any()
    assert moe.route_change_frac(routing, fresh.routing) == 0.0

    with moe.replay_routing(model, routing), torch.no_grad():
        replayed = model(sequences, attention_mask=full_mask).logits
        plain = model(sequences, attention_mask=full_mask).logits
    assert torch.equal(replayed, plain)


def test_save_pretrained_loads_in_transformers(tmp_path, make_model, make_batch):
    reference = make_model("deepseek_v3")
    model = moe.enable(copy.deepcopy(reference))
    model.save_pretrained(tmp_path)
    assert "mathrl" not in json.dumps(json.loads((tmp_path / "config.json").read_text()))

    loaded = type(reference).from_pretrained(tmp_path)
    assert loaded.config._experts_implementation != "mathrl"
    assert set(loaded.state_dict()) == set(reference.state_dict())
    for name, tensor in reference.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], tensor), name
    ids, mask = make_batch()
    loaded.set_experts_implementation("eager")
    with torch.no_grad():
        expected = reference(ids, attention_mask=mask).logits
        assert torch.allclose(loaded(ids, attention_mask=mask).logits, expected, atol=1e-5)
        real = mask.bool()
        assert torch.allclose(model(ids, attention_mask=mask).logits[real], expected[real], atol=1e-5)


def test_tiny_qwen3_moe_trains(make_model, make_batch):
    model = moe.enable(make_model("qwen3_moe", std=0.02))
    model.train()
    ids, mask = make_batch(batch=4, length=16)
    labels = ids.masked_fill(mask == 0, -100)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(8):
        loss = model(ids, attention_mask=mask, labels=labels).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] * 0.9, losses
    changed = [name for name, p in model.named_parameters() if not torch.equal(p, before[name])]
    assert any("experts.gate_up_proj" in name for name in changed)
    assert any("mlp.gate.weight" in name for name in changed)
    assert moe.collect_metrics(model)["moe/layer0/load_cv"] >= 0
