"""Every record field reaches the rewards in real GRPO and PPO runs, as the claim rewards need
``judgement``, ``variables`` and ``predicate``."""

import json

import pytest

from mathrl.config import load_recipe
from mathrl.train import run

TEST_REWARDS = "tests/rl/rewards_for_tests.py"
CLAIMS = "{name: counterexample_claims, split: train, options: {n: 16, levels: [1]}}"


@pytest.mark.parametrize("trainer", ["grpo", "ppo"])
def test_claim_columns_reach_the_rewards(tmp_path, trainer):
    recipe = load_recipe(f"recipes/tiny-moe/{trainer}/smoke.yaml", [
        f"data.train={CLAIMS}", "data.dev=null", "eval.datasets=[]", "sft.enable=false", "training.max_steps=1", "generation.max_prompt_length=128",
        "logging.progress=false",
        f"rewards=[{{name: '{TEST_REWARDS}:needs_claim_columns'}}, {{name: counterexample_judgement}}]",
    ], output_dir=str(tmp_path))
    run(recipe)
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    step = next(r for r in records if r["stage"] == trainer and "reward/needs_claim_columns/frac_none" in r)
    assert step["reward/needs_claim_columns/frac_none"] == 0.0, "the claim columns did not reach the rewards"
    assert step["reward/counterexample_judgement/frac_none"] == 0.0
