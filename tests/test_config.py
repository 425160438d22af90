"""Recipe loading: every shipped recipe loads, unknown keys and bad values are named, overrides apply."""

from pathlib import Path

import pytest

from mathrl.config import Recipe, RecipeError, load_recipe, recipe_to_dict
from mathrl.moe.config import CapacityMode

RECIPES = sorted(p for p in (Path(__file__).resolve().parents[1] / "recipes").rglob("*.yaml") if "accelerate" not in p.parts)


def test_recipes_found():
    assert len(RECIPES) >= 3


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: str(p.relative_to(p.parents[2])))
def test_recipe_loads(path):
    recipe = load_recipe(path)
    assert isinstance(recipe, Recipe)
    assert recipe.rewards, "a recipe must name at least one reward"


def test_unknown_top_level_key_names_valid_keys(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("trainig: {max_steps: 3}\n")
    with pytest.raises(RecipeError) as error:
        load_recipe(path)
    message = str(error.value)
    assert "'trainig'" in message
    assert "training" in message and "grpo" in message


def test_unknown_nested_key_names_section(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("training: {max_step: 3}\n")
    with pytest.raises(RecipeError, match=r"'training.max_step'.*max_steps"):
        load_recipe(path)


def test_unknown_key_in_list_item():
    with pytest.raises(RecipeError, match=r"'rewards\[0\].wieght'"):
        load_recipe(None, ["rewards=[{name: accuracy, wieght: 2}]"])


def test_bad_value_type_is_named():
    with pytest.raises(RecipeError, match="training.max_steps: expected int, got 'many'"):
        load_recipe(None, ["training.max_steps=many"])


def test_bad_enum_lists_valid_values():
    with pytest.raises(RecipeError, match="dropless, fixed, adaptive"):
        load_recipe(None, ["moe.capacity_mode=sometimes"])


def test_overrides_and_output():
    recipe = load_recipe(None, ["training.max_steps=7", "moe.capacity_mode=fixed", "data.train.name=gsm8k",
                                "training.learning_rate=1e-4"], output_dir="/tmp/x")
    assert recipe.training.max_steps == 7
    assert recipe.moe.capacity_mode is CapacityMode.FIXED
    assert recipe.data.train.name == "gsm8k"
    assert recipe.training.learning_rate == pytest.approx(1e-4)
    assert recipe.output_dir == "/tmp/x"


def test_malformed_override():
    with pytest.raises(RecipeError, match="expected key.sub=value"):
        load_recipe(None, ["training.max_steps"])


def test_cross_field_check():
    with pytest.raises(RecipeError, match="num_generations must be >= 2"):
        load_recipe(None, ["grpo.num_generations=1"])


def test_round_trip_through_dict(tmp_path):
    import yaml

    recipe = load_recipe(RECIPES[0])
    path = tmp_path / "again.yaml"
    path.write_text(yaml.safe_dump(recipe_to_dict(recipe)))
    assert recipe_to_dict(load_recipe(path)) == recipe_to_dict(recipe)


def test_missing_recipe_file():
    with pytest.raises(RecipeError, match="recipe file not found"):
        load_recipe("/nonexistent/recipe.yaml")
