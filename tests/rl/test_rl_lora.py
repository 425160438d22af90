"""GRPO with LoRA adapters on attention and on the fused expert weights."""

import json

import torch

from mathrl.config import load_recipe
from mathrl.models import load_model
from mathrl.train import run

SMOKE = "recipes/tiny-moe/grpo/smoke.yaml"


def test_lora_grpo_trains_adapter_only(tmp_path):
    recipe = load_recipe(SMOKE, ["logging.progress=false", "sft.enable=false", "eval.datasets=[]",
                                 "rewards=[{name: 'tests/rl/rewards_for_tests.py:prefer_short'}]",
                                 "model.lora.enable=true", "model.lora.r=4",
                                 "model.lora.target_parameters=[mlp.experts.gate_up_proj, mlp.experts.down_proj]",
                                 "training.learning_rate=0.05"], output_dir=str(tmp_path))
    run(recipe)
    adapter = json.loads((tmp_path / "final_adapter" / "adapter_config.json").read_text())
    assert set(adapter["target_parameters"]) == {"mlp.experts.gate_up_proj", "mlp.experts.down_proj"}

    base = load_model("micro-qwen3-moe")
    merged = load_model(str(tmp_path / "final"))
    changed = {name for (name, a), (_, b) in zip(base.named_parameters(), merged.named_parameters())
               if not torch.equal(a, b)}
    assert any("experts.gate_up_proj" in name for name in changed), changed
    assert any("q_proj" in name for name in changed), changed
    assert not any("embed_tokens" in name or "norm" in name for name in changed), changed

    # The adapter folder loads on top of its base model too.
    from_adapter = load_model(str(tmp_path / "final_adapter"))
    assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(merged.parameters(), from_adapter.parameters()))
