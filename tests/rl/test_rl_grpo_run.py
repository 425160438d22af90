"""A short real GRPO run through the trainer entry point: parameters move, metrics and files appear."""

import json

import pytest
import torch

from mathrl.config import load_recipe
from mathrl.models import load_model
from mathrl.train import run

SMOKE = "recipes/tiny-moe/grpo/smoke.yaml"


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("grpo_run")
    rewards = ("rewards=[{name: 'tests/rl/rewards_for_tests.py:prefer_short'},"
               " {name: 'tests/rl/rewards_for_tests.py:NeedsCompletionIds'}]")
    recipe = load_recipe(SMOKE, [rewards,
                                 "logging.progress=false"], output_dir=str(out))
    run(recipe)
    return out


def test_grpo_changes_parameters(run_dir):
    before = load_model(str(run_dir / "sft_model"))
    after = load_model(str(run_dir / "final"))
    changed = [name for (name, a), (_, b) in zip(before.named_parameters(), after.named_parameters())
               if not torch.equal(a, b)]
    assert changed, "GRPO left every parameter unchanged"
    assert any("experts" in name for name in changed), "no expert weight was updated"


def test_metrics_jsonl_has_mathrl_names(run_dir):
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    grpo = [r for r in records if r["stage"] == "grpo" and "reward/prefer_short/mean" in r]
    assert len(grpo) == 2
    for key in ("loss/total", "adv/frac_zero_std", "reward/prefer_short/frac_none", "optim/grad_norm"):
        assert key in grpo[0], f"{key} missing from {sorted(grpo[0])}"
    assert grpo[0]["reward/prefer_short/frac_none"] == 0.0
    assert grpo[0]["reward/NeedsCompletionIds/frac_none"] == 0.0, "the rewards got no completion_ids"
    assert grpo[0]["reward/NeedsCompletionIds/reason/has_ids"] == 1.0, "the reward's reason counts were not logged"
    assert any(r["stage"] == "sft" for r in records)


def test_tensorboard_events_written(run_dir):
    assert list((run_dir / "tensorboard").glob("events.out.tfevents.*"))


def test_checkpoints_complete_and_atomic(run_dir):
    checkpoints = sorted((run_dir / "checkpoints").glob("checkpoint-*"))
    assert [c.name for c in checkpoints] == ["checkpoint-2"]  # save_total_limit 1
    for name in ("config.json", "model.safetensors", "optimizer.pt", "scheduler.pt", "trainer_state.json"):
        assert (checkpoints[0] / name).is_file(), name
    staging = run_dir / "checkpoints" / ".staging"
    assert not staging.exists() or not any(staging.iterdir())


def test_run_folder_contents(run_dir):
    assert (run_dir / "recipe.yaml").is_file()
    assert (run_dir / "final" / "config.json").is_file()
    assert (run_dir / "final" / "tokenizer.json").is_file()
    metrics = json.loads((run_dir / "eval" / "arithmetic" / "metrics.json").read_text())
    for key in ("accuracy", "pass@1", "maj@1", "n", "frac_no_answer"):
        assert key in metrics
    assert metrics["n"] == 8
    assert (run_dir / "eval" / "before_rl" / "arithmetic" / "report.md").is_file()
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["grpo"]["steps"] == 2
    assert "arithmetic" in summary["after_rl"]


def test_resume_continues_from_checkpoint(run_dir):
    rewards = ("rewards=[{name: 'tests/rl/rewards_for_tests.py:prefer_short'},"
               " {name: 'tests/rl/rewards_for_tests.py:NeedsCompletionIds'}]")
    recipe = load_recipe(SMOKE, [rewards,
                                 "logging.progress=false", "training.max_steps=3"], output_dir=str(run_dir))
    summary = run(recipe, resume=True)
    assert summary["grpo"]["steps"] == 3
    assert "sft" not in summary, "resume must reuse the saved warm-start model"
