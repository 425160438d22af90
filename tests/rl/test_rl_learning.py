"""A shortened quickstart learns: GRPO raises held-out arithmetic accuracy over its warm start.

Marked slow (several minutes on 2 CPU cores): run with ``pytest -m slow``.
"""

import pytest

from mathrl.config import load_recipe
from mathrl.train import run

QUICKSTART = "recipes/tiny-moe/grpo/quickstart.yaml"


@pytest.mark.slow
def test_grpo_gains_over_warm_start(tmp_path):
    recipe = load_recipe(QUICKSTART, ["logging.progress=false", "training.max_steps=100", "training.eval_steps=25",
                                      "training.save_steps=0", "eval.datasets=[{name: arithmetic, split: test, "
                                      "limit: 200, options: {n: 800, levels: [1], ops: '+'}}]"],
                         output_dir=str(tmp_path))
    summary = run(recipe)
    before = summary["before_rl"]["arithmetic"]["accuracy"]
    after = summary["after_rl"]["arithmetic"]["accuracy"]
    assert before >= 0.2, f"the warm start reached only {before:.1%}"
    assert after - before >= 0.05, f"GRPO moved held-out accuracy from {before:.1%} to {after:.1%}"
