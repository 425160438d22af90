"""GRPO with mathrl's MoE runtime: routing replay modes, telemetry, aux loss and a frozen router."""

import json

import pytest
import torch

from mathrl.config import load_recipe
from mathrl.models import load_model
from mathrl.train import run

SMOKE = "recipes/tiny-moe/grpo/smoke.yaml"
REWARDS = "tests/rl/rewards_for_tests.py"


def _run(tmp_path, *overrides):
    recipe = load_recipe(SMOKE, ["logging.progress=false", "sft.enable=false", "eval.datasets=[]",
                                 "training.save_steps=0", f"rewards=[{{name: '{REWARDS}:prefer_short'}}]",
                                 "training.learning_rate=0.01", *overrides], output_dir=str(tmp_path))
    run(recipe)
    return [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()
            if json.loads(line)["stage"] == "grpo" and "loss/total" in json.loads(line)]


@pytest.mark.parametrize("mode", ["rollout", "old_policy"])
def test_replay_mode_runs_and_reports_route_changes(tmp_path, mode):
    steps = _run(tmp_path, f"moe.replay={mode}", "training.max_steps=2")
    assert len(steps) == 2
    for record in steps:
        assert 0.0 <= record["moe/route_change_frac"] <= 1.0, record
        assert "moe/layer0/load_cv" in record
    # Before the first update, the old policy's routing is the routing the update forward would pick.
    if mode == "old_policy":
        assert steps[0]["moe/route_change_frac"] == 0.0


def test_telemetry_without_replay(tmp_path):
    steps = _run(tmp_path, "training.max_steps=1")
    assert "moe/dropped_frac" in steps[0] and steps[0]["moe/dropped_frac"] == 0.0
    assert "moe/route_change_frac" not in steps[0]


def test_aux_loss_is_added_and_logged(tmp_path):
    steps = _run(tmp_path, "moe.aux_loss_coef=0.01", "training.max_steps=1")
    assert steps[0]["loss/moe_aux"] > 0


def test_frozen_router_keeps_router_weights(tmp_path):
    _run(tmp_path, "moe.freeze_router=true", "training.max_steps=2", "training.save_steps=0")
    start = load_model("micro-qwen3-moe")
    final = load_model(str(tmp_path / "final"))
    for (name, a), (_, b) in zip(start.named_parameters(), final.named_parameters()):
        if name.endswith("mlp.gate.weight"):
            assert torch.equal(a, b), f"{name} changed with moe.freeze_router"
        if "experts.down_proj" in name:
            assert not torch.equal(a, b), f"{name} did not train"


def test_replay_needs_the_runtime(tmp_path):
    with pytest.raises(ValueError, match="moe.replay='rollout' needs the MoE runtime"):
        _run(tmp_path, "moe.replay=rollout", "moe.enable=false")
