"""Difficulty bands, ordering and band sampling, their recipe options, and recipe data preparation."""

import json
from collections import Counter

import pytest

from mathrl.config import DataConfig, DifficultyConfig, FilterSpec, RecipeError, load_recipe
from mathrl.data import load_problems
from mathrl.data.curriculum import apply_difficulty, order_by_difficulty, sample_by_band, select_band
from mathrl.data.prepare import prepare_training_records


def _rated(rates):
    return [
        {"id": str(i), "problem": f"p{i}", "answer": "1", "llama8b_solve_rate": rate}
        for i, rate in enumerate(rates)
    ]


def test_select_band_inclusive_bounds():
    kept, removed = select_band(_rated([0.0, 0.25, 0.5, 0.75, None]), "llama8b_solve_rate", 0.25, 0.5)
    assert [r["id"] for r in kept] == ["1", "2"]
    assert Counter(reason for _, reason, _ in removed) == {
        "outside difficulty band": 2,
        "no llama8b_solve_rate": 1,
    }


def test_order_easy_to_hard_by_solve_rate():
    records = _rated([0.1, 0.9, 0.5, None])
    assert [r["id"] for r in order_by_difficulty(records, "llama8b_solve_rate", "easy_to_hard")] == [
        "1",
        "2",
        "0",
        "3",
    ]
    assert [r["id"] for r in order_by_difficulty(records, "llama8b_solve_rate", "hard_to_easy")] == [
        "0",
        "2",
        "1",
        "3",
    ]
    assert order_by_difficulty(records, "llama8b_solve_rate", "none") == records


def test_order_low_is_easier_with_bands():
    records = [
        {"id": str(steps), "solution": "\n".join(["step"] * steps) + "\n#### 1"} for steps in (5, 1, 3, 2, 6)
    ]
    ordered = order_by_difficulty(
        records, "solution_steps", "easy_to_hard", easier="low", bands=[0, 2.5, 4.5, 9]
    )
    assert {r["id"] for r in ordered[:2]} == {"1", "2"}
    assert ordered[2]["id"] == "3"
    assert {r["id"] for r in ordered[3:]} == {"5", "6"}


def test_sample_by_band_follows_weights():
    records = _rated([0.1] * 5 + [0.9] * 5)
    drawn = sample_by_band(records, "llama8b_solve_rate", [0.0, 0.5, 1.0], [3.0, 1.0], seed=1, size=4000)
    hard = sum(r["llama8b_solve_rate"] < 0.5 for r in drawn)
    assert 0.70 < hard / len(drawn) < 0.80
    only_easy = sample_by_band(records, "llama8b_solve_rate", [0.0, 0.5, 1.0], [0.0, 1.0], seed=1)
    assert all(r["llama8b_solve_rate"] == 0.9 for r in only_easy)
    assert len(only_easy) == len(records)


def test_apply_difficulty_errors_without_column():
    with pytest.raises(ValueError, match="no training record has a value"):
        apply_difficulty([{"problem": "p", "answer": "1"}], DifficultyConfig(min=0.2))


def test_difficulty_config_validation():
    with pytest.raises(RecipeError, match="data.difficulty.order='random' is invalid"):
        load_recipe(None, ["data.difficulty.order=random"])
    with pytest.raises(RecipeError, match="one weight per interval"):
        load_recipe(None, ["data.difficulty.bands=[0, 0.5, 1]", "data.difficulty.band_weights=[1]"])
    with pytest.raises(RecipeError, match="min=0.8 is above"):
        load_recipe(None, ["data.difficulty.min=0.8", "data.difficulty.max=0.2"])
    with pytest.raises(RecipeError, match="min_observations=0"):
        load_recipe(None, ["data.adaptive_pass_rate.min_observations=0"])


def test_recipe_filters_parse():
    recipe = load_recipe(
        None, ["data.filters=[{name: near_dedup, options: {threshold: 0.7}}, {name: proof}]"]
    )
    assert recipe.data.filters == [FilterSpec("near_dedup", {"threshold": 0.7}), FilterSpec("proof")]
    with pytest.raises(RecipeError, match="unknown recipe key 'data.filters\\[0\\].option'"):
        load_recipe(None, ["data.filters=[{name: proof, option: {}}]"])


def test_prepare_training_records_writes_reports(tmp_path):
    records = load_problems("gsm8k", split="train", limit=300)
    data = DataConfig(
        filters=[FilterSpec("exact_dedup"), FilterSpec("decontaminate", {"against": ["gsm8k:test"]})],
        difficulty=DifficultyConfig(column="solution_steps", easier="low", min=2, max=3),
    )
    kept = prepare_training_records(records, data, seed=0, out_dir=tmp_path)
    steps = [
        len([ln for ln in r["solution"].splitlines() if ln.strip() and not ln.startswith("####")])
        for r in kept
    ]
    assert kept
    assert all(2 <= s <= 3 for s in steps)
    removed = [json.loads(line) for line in (tmp_path / "removed.jsonl").read_text().splitlines()]
    assert len(kept) + len(removed) == len(records)
    report = json.loads((tmp_path / "report.json").read_text())
    assert [s["name"] for s in report["steps"]] == ["exact_dedup", "decontaminate", "difficulty"]
    assert (
        report["steps"][-1]["removed"] == sum(r["removed_by"]["filter"] == "difficulty" for r in removed) > 0
    )


def test_prepare_without_options_returns_input():
    records = [{"problem": "p", "answer": "1"}]
    assert prepare_training_records(records, DataConfig()) is records
