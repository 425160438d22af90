"""Short real PPO runs on the micro preset: through the entry point, resumed, and with the trainer built directly."""

import json

import pytest
import rewards
import torch
from safetensors.torch import load_file

from mathrl.config import RewardSpec, load_recipe
from mathrl.data import load_problem_set
from mathrl.models import load_model, load_tokenizer
from mathrl.rl.callbacks import MetricsCallback
from mathrl.rl.ppo import build_ppo_trainer
from mathrl.train import run

SMOKE = "recipes/tiny-moe/ppo/smoke.yaml"
TEST_REWARDS = "tests/rl/rewards_for_tests.py"
# The `accuracy` reward and evaluation need the verifier; these runs use a test reward and skip evaluation.
NO_EVAL = ["logging.progress=false", "sft.stop_at_accuracy=null", "eval.datasets=[]"]


def recipe_with(reward: str, *overrides: str, output_dir: str):
    return load_recipe(SMOKE, [f"rewards=[{{name: '{TEST_REWARDS}:{reward}'}}]", *NO_EVAL, *overrides],
                       output_dir=output_dir)


def ppo_records(run_dir):
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [r for r in map(json.loads, lines) if r["stage"] == "ppo"]


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("ppo_run")
    recipe = recipe_with("prefer_short", "training.save_total_limit=2", output_dir=str(out))
    recipe.rewards.append(RewardSpec(f"{TEST_REWARDS}:NeedsCompletionIds"))
    run(recipe)
    return out


def test_ppo_changes_policy_parameters(run_dir):
    before = load_model(str(run_dir / "sft_model"))
    after = load_model(str(run_dir / "final"))
    changed = [name for (name, a), (_, b) in zip(before.named_parameters(), after.named_parameters())
               if not torch.equal(a, b)]
    assert changed, "PPO left every policy parameter unchanged"
    assert any("experts" in name for name in changed), "no expert weight was updated"


def test_ppo_changes_critic_parameters(run_dir):
    first = load_file(str(run_dir / "checkpoints" / "checkpoint-1" / "critic.safetensors"))
    second = load_file(str(run_dir / "checkpoints" / "checkpoint-2" / "critic.safetensors"))
    assert "value_head.linear.weight" in second
    assert not torch.equal(first["value_head.linear.weight"], second["value_head.linear.weight"])
    start = load_model(str(run_dir / "sft_model")).state_dict()
    backbone = {k.removeprefix("backbone."): v for k, v in first.items() if k.startswith("backbone.")}
    changed = [k for k, v in backbone.items() if not torch.equal(v, start[f"model.{k}"])]
    assert changed, "the critic's backbone did not move from the warm-start weights"


def test_ppo_metrics_logged(run_dir):
    records = ppo_records(run_dir)
    assert [r["step"] for r in records] == [1, 2]
    for key in ("reward/prefer_short/mean", "reward/prefer_short/frac_none", "reward/frac_none", "loss/policy",
                "loss/value", "loss/kl", "clip/frac_low", "clip/frac_high", "adv/mean", "adv/std",
                "adv/frac_zero_std", "perf/tokens_per_s", "value/explained_variance", "policy/approx_kl",
                "policy/entropy", "optim/grad_norm", "optim/critic_grad_norm"):
        assert key in records[0], f"{key} missing from {sorted(records[0])}"
    assert records[0]["reward/frac_none"] == 0.0
    assert records[0]["reward/NeedsCompletionIds/frac_none"] == 0.0, "the rewards got no completion_ids"
    assert records[0]["reward/NeedsCompletionIds/reason/has_ids"] == 1.0, "the reward's reason counts were not logged"
    assert records[1]["loss/kl"] > 0, "the policy moved, so its KL to the reference should be positive"
    assert list((run_dir / "tensorboard").glob("events.out.tfevents.*"))


def test_ppo_checkpoint_contents(run_dir):
    checkpoint = run_dir / "checkpoints" / "checkpoint-2"
    for name in ("config.json", "model.safetensors", "critic.safetensors", "policy_optimizer.pt",
                 "critic_optimizer.pt", "policy_scheduler.pt", "rng_state_0.pth", "trainer_state.json"):
        assert (checkpoint / name).is_file(), name
    state = json.loads((checkpoint / "trainer_state.json").read_text())
    assert state["global_step"] == 2
    assert state["data_position"]["cursor"] == 4  # 2 steps x 2 prompts
    assert not any((run_dir / "checkpoints" / ".staging").glob("*"))


def test_ppo_resume_continues_step_count(run_dir):
    summary = run(recipe_with("prefer_short", "training.save_total_limit=2", "training.max_steps=3",
                              output_dir=str(run_dir)), resume=True)
    assert summary["ppo"]["steps"] == 3
    assert "sft" not in summary, "resume must reuse the saved warm-start model"
    assert [r["step"] for r in ppo_records(run_dir)] == [1, 2, 3]
    state = json.loads((run_dir / "checkpoints" / "checkpoint-3" / "trainer_state.json").read_text())
    assert state["data_position"]["cursor"] == 6


def build_trainer(tmp_path, reward: str, *overrides: str, dev_records=None):
    recipe = recipe_with(reward, "sft.enable=false", "training.save_steps=0", *overrides, output_dir=str(tmp_path))
    tokenizer = load_tokenizer(recipe.model.name_or_path)
    model = load_model(recipe.model.name_or_path, tokenizer=tokenizer)
    records = load_problem_set("arithmetic", split="train", n=64, levels=[1]).records
    trainer, _ = build_ppo_trainer(recipe, model, tokenizer, records, tmp_path,
                                   MetricsCallback(tmp_path, "ppo", tensorboard=False), dev_records)
    return trainer


def test_nan_loss_step_is_skipped(tmp_path, caplog):
    trainer = build_trainer(tmp_path, "InfiniteFirstCall", "training.max_steps=2")
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    trainer.train()
    records = ppo_records(tmp_path)
    assert [r["skipped"] for r in records] == [1.0, 0.0]
    assert "non-finite loss at step 1" in caplog.text
    assert any(not torch.equal(before[k], v) for k, v in trainer.model.state_dict().items())


def test_nan_loss_three_times_stops(tmp_path):
    trainer = build_trainer(tmp_path, "always_infinite", "training.max_steps=5")
    with pytest.raises(RuntimeError, match="NaN or infinite for 3 steps in a row"):
        trainer.train()
    assert trainer.state.global_step == 2, "the third bad step raises before it is counted"


def test_all_none_rewards_stop_with_sample_row(tmp_path):
    trainer = build_trainer(tmp_path, "always_raises", "training.max_steps=5")
    with pytest.raises(RuntimeError, match=r"every reward was None for 3 steps.*answer=.*always_raises': None"):
        trainer.train()
    assert trainer.state.global_step == 2
    assert [r["reward/frac_none"] for r in ppo_records(tmp_path)] == [1.0, 1.0]


def test_lora_keeps_base_weights(tmp_path):
    trainer = build_trainer(tmp_path, "prefer_short", "model.lora.enable=true", "model.lora.r=4",
                            "training.learning_rate=0.01", "ppo.kl_coef=0.1")
    assert trainer.reference is None, "under LoRA the reference is the adapter-disabled policy"
    base = {k: v.clone() for k, v in trainer.model.state_dict().items() if "lora_" not in k}
    adapters = {k: v.clone() for k, v in trainer.model.state_dict().items() if "lora_B" in k}
    critic_base = {k: v.clone() for k, v in trainer.critic.state_dict().items() if "lora_" not in k and "value_head" not in k}
    trainer.train()
    after = trainer.model.state_dict()
    assert all(torch.equal(v, after[k]) for k, v in base.items()), "a base weight changed under LoRA"
    assert any(not torch.equal(v, after[k]) for k, v in adapters.items()), "no LoRA weight changed"
    critic_after = trainer.critic.state_dict()
    assert all(torch.equal(v, critic_after[k]) for k, v in critic_base.items()), "a critic base weight changed"
    assert ppo_records(tmp_path)[-1]["loss/kl"] > 0


def test_shared_critic_kl_loss_frozen_router_aux_loss(tmp_path):
    trainer = build_trainer(tmp_path, "prefer_short", "ppo.critic=shared", "ppo.kl_mode=loss",
                            "moe.freeze_router=true", "moe.aux_loss_coef=0.01", "training.max_steps=1")
    assert trainer.critic is None
    routers = {k: v.clone() for k, v in trainer.model.named_parameters() if k.endswith("mlp.gate.weight")}
    head = trainer.accelerator.unwrap_model(trainer.module).value_head.linear.weight.clone()
    assert len(routers) == 2
    trainer.train()
    params = dict(trainer.model.named_parameters())
    assert all(torch.equal(v, params[k]) for k, v in routers.items()), "a frozen router weight changed"
    assert not torch.equal(head, trainer.accelerator.unwrap_model(trainer.module).value_head.linear.weight)
    record = ppo_records(tmp_path)[-1]
    assert record["loss/moe_aux"] > 0
    assert "loss/kl" in record


def test_metric_sources_merged(tmp_path):
    trainer = build_trainer(tmp_path, "prefer_short", "training.max_steps=1")
    trainer.metric_sources.append(lambda: {"moe/dropped_frac": 0.25})
    trainer.train()
    assert ppo_records(tmp_path)[-1]["moe/dropped_frac"] == 0.25


@pytest.mark.skipif(not hasattr(rewards, "verify_many"), reason="dev accuracy needs the verifier (rewards.verify_many)")
def test_dev_check_keeps_best_model(tmp_path):
    dev_records = load_problem_set("arithmetic", split="test", n=40, levels=[1]).records[:4]
    trainer = build_trainer(tmp_path, "prefer_short", "training.max_steps=2", "training.eval_steps=1",
                            "model.lora.enable=true", dev_records=dev_records)
    trainer.train()
    assert [step for step, _ in trainer.dev.history] == [1, 2]
    assert (tmp_path / "best" / "config.json").is_file(), "the best model is saved with merged weights"
    assert [r["step"] for r in ppo_records(tmp_path) if "dev/accuracy" in r] == [1, 2]


@pytest.mark.distributed
def test_ppo_accelerate_launch_two_processes(tmp_path, run_command):
    out = tmp_path / "ddp"
    result = run_command(["accelerate", "launch", "--config_file", "recipes/accelerate/ddp.yaml", "-m", "mathrl.train",
                          SMOKE, "--output", str(out), "--set", f"rewards=[{{name: '{TEST_REWARDS}:prefer_short'}}]",
                          *[arg for override in NO_EVAL for arg in ("--set", override)]], timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "2 process(es)" in result.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["processes"] == 2
    assert summary["ppo"]["steps"] == 2
    records = ppo_records(out)
    assert [r["step"] for r in records] == [1, 2]
    assert (out / "checkpoints" / "checkpoint-2" / "rng_state_1.pth").is_file()
