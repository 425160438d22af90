"""mathrl's GRPO loss on a fixed batch equals TRL's for each loss type and importance-sampling level.

The mathrl side runs the model through mathrl's MoE runtime; the TRL side is the stock
GRPOTrainer on the stock transformers model with the same weights.
"""

import copy

import pytest
import torch
from datasets import Dataset
from trl import GRPOConfig, GRPOTrainer

import mathrl.moe
from mathrl.config import load_recipe
from mathrl.models import load_model, load_tokenizer
from mathrl.rl.grpo import MathGRPOTrainer, grpo_args

CASES = [("grpo", "token"), ("dr_grpo", "token"), ("dapo", "token"), ("bnpo", "token"), ("cispo", "token"),
         ("grpo", "sequence"), ("dapo", "sequence")]


def _reward(completions, **columns):
    return [0.0] * len(completions)


def _batch(model, G=4, B=2, Tp=6, Tc=5, seed=0):
    generator = torch.Generator().manual_seed(seed)
    prompt_ids = torch.randint(10, 500, (B * G, Tp), generator=generator)
    prompt_mask = torch.ones_like(prompt_ids)
    prompt_mask[0, :2] = 0  # left padding
    completion_ids = torch.randint(10, 500, (B * G, Tc), generator=generator)
    completion_mask = torch.ones_like(completion_ids)
    completion_mask[1, 3:] = 0  # an early-stopped completion
    with torch.no_grad():
        logits = model(torch.cat([prompt_ids, completion_ids], 1),
                       attention_mask=torch.cat([prompt_mask, completion_mask], 1)).logits[:, Tp - 1 : -1]
        logps = torch.log_softmax(logits.float(), -1).gather(-1, completion_ids[..., None])[..., 0]
    # Old log-probs away from the current ones so the clipping branches are exercised.
    old = logps + 0.3 * torch.randn(logps.shape, generator=generator)
    return {
        "prompt_ids": prompt_ids, "prompt_mask": prompt_mask, "completion_ids": completion_ids,
        "completion_mask": completion_mask, "advantages": torch.randn(B * G, generator=generator),
        "old_per_token_logps": old, "num_items_in_batch": completion_mask.sum(),
    }


@pytest.fixture(scope="module")
def models():
    base = load_model("micro-qwen3-moe", seed=3)
    ours = mathrl.moe.enable(copy.deepcopy(base))
    return base, ours


@pytest.mark.parametrize("loss_type,level", CASES)
def test_loss_matches_trl(tmp_path, models, loss_type, level):
    base, ours = models
    tokenizer = load_tokenizer("micro-qwen3-moe")
    dataset = Dataset.from_list([{"prompt": [{"role": "user", "content": "1+1?"}], "answer": "2"}] * 4)
    recipe = load_recipe(None, [f"grpo.loss_type={loss_type}", f"grpo.importance_sampling_level={level}",
                                "grpo.num_generations=4", "training.prompts_per_step=2", "grpo.epsilon_high=0.28",
                                "rewards=[{name: 'tests/rl/rewards_for_tests.py:prefer_short'}]"])
    ours_args = grpo_args(recipe, tmp_path / "ours", [1.0], runtime_enabled=True)
    trl_args = grpo_args(recipe, tmp_path / "trl", [1.0])  # a plain trl.GRPOConfig
    theirs_trainer = GRPOTrainer(model=base, reward_funcs=_reward, args=trl_args, train_dataset=dataset,
                                 processing_class=tokenizer)
    ours_trainer = MathGRPOTrainer(model=ours, reward_funcs=_reward, args=ours_args, train_dataset=dataset,
                                   processing_class=tokenizer, moe_enabled=True)
    assert isinstance(trl_args, GRPOConfig) and type(theirs_trainer) is GRPOTrainer
    for trainer in (theirs_trainer, ours_trainer):
        trainer.current_gradient_accumulation_steps = 1  # set by the training loop otherwise
    batch = _batch(base)
    theirs = theirs_trainer.compute_loss(theirs_trainer.model, dict(batch))
    mine = ours_trainer.compute_loss(ours_trainer.model, dict(batch))
    assert torch.isfinite(mine)
    torch.testing.assert_close(mine, theirs, rtol=1e-5, atol=1e-6)

    theirs.backward()
    mine.backward()
    for (name, a), (_, b) in zip(base.named_parameters(), ours.named_parameters()):
        if a.grad is not None:
            torch.testing.assert_close(b.grad, a.grad, rtol=1e-4, atol=1e-6, msg=name)
    base.zero_grad(set_to_none=True)
    ours.zero_grad(set_to_none=True)
