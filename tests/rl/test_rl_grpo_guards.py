"""GRPO trainer additions: dynamic sampling, the all-None reward stop, non-finite loss skipping."""

import json

import pytest
import torch
from trl import GRPOTrainer

from mathrl.config import load_recipe
from mathrl.models import load_model
from mathrl.rl.dynamic_sampling import concat_batches, informative_groups, select_rows
from mathrl.train import run

SMOKE = "recipes/tiny-moe/grpo/smoke.yaml"
REWARDS = "tests/rl/rewards_for_tests.py"


def _recipe(tmp_path, *overrides):
    return load_recipe(SMOKE, ["logging.progress=false", "sft.enable=false", "eval.datasets=[]",
                               "training.save_steps=0", *overrides], output_dir=str(tmp_path))


def test_concat_batches_repads_both_sides():
    a = {"prompt_ids": torch.tensor([[5, 6]]), "prompt_mask": torch.tensor([[1, 1]]),
         "completion_ids": torch.tensor([[7]]), "completion_mask": torch.tensor([[1]]),
         "advantages": torch.tensor([0.5]), "num_items_in_batch": torch.tensor(1)}
    b = {"prompt_ids": torch.tensor([[4, 5, 6]]), "prompt_mask": torch.tensor([[1, 1, 1]]),
         "completion_ids": torch.tensor([[7, 8]]), "completion_mask": torch.tensor([[1, 1]]),
         "advantages": torch.tensor([0.0]), "num_items_in_batch": torch.tensor(2)}
    merged = concat_batches([select_rows(a, torch.tensor([0])), select_rows(b, torch.tensor([0]))], pad_token_id=0)
    assert merged["prompt_ids"].tolist() == [[0, 5, 6], [4, 5, 6]]
    assert merged["prompt_mask"].tolist() == [[0, 1, 1], [1, 1, 1]]
    assert merged["completion_ids"].tolist() == [[7, 0], [7, 8]]
    assert merged["completion_mask"].tolist() == [[1, 0], [1, 1]]
    assert "num_items_in_batch" not in merged


def test_informative_groups():
    assert informative_groups(torch.tensor([0.0, 0.0, 0.0, 1e-3, 0.0, 0.0]), 2).tolist() == [False, True, False]


def test_dynamic_sampling_fills_batch_with_informative_groups(tmp_path):
    # Arithmetic levels 1 and 2: groups of level-2 problems all get reward 1 (no signal).
    recipe = _recipe(tmp_path, f"rewards=[{{name: '{REWARDS}:informative_on_odd_levels'}}]",
                     "data.train.options={n: 64, levels: [1, 2]}", "grpo.dynamic_sampling=true",
                     "grpo.dynamic_sampling_max_rounds=6", "training.prompts_per_step=4", "training.max_steps=2")
    run(recipe)
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in records if "dynamic_sampling/informative_frac" in r]
    assert len(steps) == 2
    assert all(r["dynamic_sampling/informative_frac"] == 1.0 for r in steps)
    assert any(r["dynamic_sampling/rounds"] > 0 for r in steps)


def test_all_none_rewards_stop_with_sample_row(tmp_path):
    recipe = _recipe(tmp_path, f"rewards=[{{name: '{REWARDS}:always_raises'}}]", "training.max_steps=5",
                     "training.max_bad_steps=2")
    with pytest.raises(RuntimeError, match=r"every reward returned None.*Sample row: .*'answer'"):
        run(recipe)


def test_nan_loss_skips_step_then_stops(tmp_path, monkeypatch):
    calls = {"n": 0}
    original = GRPOTrainer.compute_loss

    def nan_after_first(self, *args, **kwargs):
        loss = original(self, *args, **kwargs)
        calls["n"] += 1
        return loss * float("nan") if calls["n"] > 1 else loss

    monkeypatch.setattr(GRPOTrainer, "compute_loss", nan_after_first)
    recipe = _recipe(tmp_path, f"rewards=[{{name: '{REWARDS}:prefer_short'}}]", "training.max_steps=6",
                     "training.max_bad_steps=3", "training.save_steps=1", "training.save_total_limit=10")
    with pytest.raises(RuntimeError, match="NaN or infinite in 3 consecutive steps"):
        run(recipe)
    # Skipped steps leave the weights as the last good step wrote them.
    after_first = load_model(str(tmp_path / "checkpoints" / "checkpoint-1"))
    after_skips = load_model(str(tmp_path / "checkpoints" / "checkpoint-3"))
    assert all(torch.equal(a, b) for a, b in zip(after_first.parameters(), after_skips.parameters()))


def test_adaptive_pass_rate_tracks_groups_and_saves_state(tmp_path):
    recipe = _recipe(tmp_path, f"rewards=[{{name: '{REWARDS}:informative_on_odd_levels'}}]",
                     "data.train.options={n: 64, levels: [1, 2]}", "data.adaptive_pass_rate.enable=true",
                     "data.adaptive_pass_rate.reward=informative_on_odd_levels",
                     "data.adaptive_pass_rate.min_observations=2", "training.max_steps=2", "training.save_steps=2")
    run(recipe)
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    tracked = [r for r in records if any(k.startswith("curriculum/") for k in r)]
    assert tracked, "the pass-rate tracker reported no metrics"
    state = json.loads((tmp_path / "checkpoints" / "checkpoint-2" / "pass_rates.json").read_text())
    assert state, "the checkpoint holds no pass-rate state"


def test_adaptive_pass_rate_needs_a_listed_reward(tmp_path):
    recipe = _recipe(tmp_path, f"rewards=[{{name: '{REWARDS}:prefer_short'}}]", "data.adaptive_pass_rate.enable=true")
    with pytest.raises(ValueError, match="adaptive_pass_rate.reward='accuracy' is not among"):
        run(recipe)


@pytest.mark.parametrize("warm_start", [True, False])
def test_reference_model_stays_frozen(tmp_path, warm_start):
    # With beta > 0, TRL loads the reference model by path: the warm-started model, or the preset's
    # starting weights saved in the run folder. It must stay frozen while the policy trains.
    recipe = load_recipe(SMOKE, ["logging.progress=false", "eval.datasets=[]", "training.save_steps=0",
                                 f"rewards=[{{name: '{REWARDS}:prefer_short'}}]", "grpo.beta=0.5",
                                 f"sft.enable={str(warm_start).lower()}",
                                 "training.learning_rate=0.05", "training.max_steps=3"], output_dir=str(tmp_path))
    run(recipe)
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    kl = [r["loss/kl"] for r in records if r["stage"] == "grpo" and "loss/kl" in r]
    assert len(kl) == 3
    assert kl[-1] > 0, f"KL to the reference stayed {kl}: the reference follows the policy"
