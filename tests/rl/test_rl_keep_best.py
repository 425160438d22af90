"""keep_best counts the starting model: a run whose dev accuracy only falls ends with the weights it started from.

The trainers, checkpoints and model loading are real. Only the dev-accuracy measurement is
replaced by a scripted sequence, because the micro preset solves no dev problem either way.
"""

import json

import pytest
import torch

from mathrl.config import load_recipe
from mathrl.models import load_model
from mathrl.rl.callbacks import DevAccuracyCallback
from mathrl.train import run

REWARD = "rewards=[{name: 'tests/rl/rewards_for_tests.py:prefer_short'}]"
COMMON = [REWARD, "logging.progress=false", "sft.stop_at_accuracy=null", "eval.datasets=[]",
          "training.eval_steps=1", "training.keep_best=true", "training.save_steps=0"]


@pytest.fixture
def scripted_dev(monkeypatch):
    """Dev accuracy 0.9 for the first measurement (the starting model), then the given values."""
    def install(later: list[float]) -> None:
        values = iter([0.9, *later])

        def measure(self, model):
            return next(values, later[-1])

        monkeypatch.setattr(DevAccuracyCallback, "measure", measure)

    return install


def _same_weights(a_dir, b_dir) -> bool:
    a, b = load_model(str(a_dir)).state_dict(), load_model(str(b_dir)).state_dict()
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _dev_records(run_dir):
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [(r["step"], r["dev/accuracy"]) for r in map(json.loads, lines) if "dev/accuracy" in r and r["stage"] != "sft"]


@pytest.mark.parametrize("recipe_path", ["recipes/tiny-moe/grpo/smoke.yaml", "recipes/tiny-moe/ppo/smoke.yaml"])
def test_start_kept_when_rl_worse(tmp_path, scripted_dev, recipe_path):
    scripted_dev([0.1])
    summary = run(load_recipe(recipe_path, COMMON, output_dir=str(tmp_path)))
    stage = "ppo" if "ppo" in recipe_path else "grpo"
    assert summary[stage]["final_is_best_step"] == 0
    assert summary[stage]["dev_curve"][0] == (0, 0.9)
    assert _dev_records(tmp_path)[0] == (0, 0.9), "the starting model's dev accuracy is logged as step 0"
    assert not (tmp_path / "best").exists(), "no RL step beat the start, so nothing was saved as best"
    assert _same_weights(tmp_path / "final", tmp_path / "sft_model")


def test_best_rl_checkpoint_kept(tmp_path, scripted_dev):
    scripted_dev([0.95, 0.5])  # step 1 beats the start, step 2 and the final check fall back
    summary = run(load_recipe("recipes/tiny-moe/grpo/smoke.yaml", COMMON, output_dir=str(tmp_path)))
    assert summary["grpo"]["final_is_best_step"] == 1
    assert _same_weights(tmp_path / "final", tmp_path / "best")
    assert not _same_weights(tmp_path / "final", tmp_path / "sft_model")


def test_final_model_kept_when_best(tmp_path, scripted_dev):
    scripted_dev([0.92, 0.93, 0.93])
    summary = run(load_recipe("recipes/tiny-moe/grpo/smoke.yaml", COMMON, output_dir=str(tmp_path)))
    assert "final_is_best_step" not in summary["grpo"]
    assert not _same_weights(tmp_path / "final", tmp_path / "sft_model")
