"""Learning benchmark: held-out accuracy before and after RL on the arithmetic curriculum.

Runs the GRPO quickstart (SFT warm start, then GRPO) and the PPO quickstart from the same warm
start, and reports each trainer's gain on held-out arithmetic problems over its own starting
checkpoint, plus what continued SFT reaches from that checkpoint in the same wall time.

    python benchmarks/learning.py                       # full size, 16 minutes on 2 idle cores
    python benchmarks/learning.py --grpo-steps 40 --skip-ppo --skip-sft-baseline   # a quick look

The last line is machine-readable: ``grpo_gain=<points> grpo_minutes=<minutes> ppo_gain=<points>``.
"""

from __future__ import annotations

import argparse
import json
import logging
import shutil
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from mathrl.config import load_recipe  # noqa: E402
from mathrl.train import run  # noqa: E402

logger = logging.getLogger("benchmarks.learning")

GRPO_RECIPE = REPO / "recipes/tiny-moe/grpo/quickstart.yaml"
PPO_RECIPE = REPO / "recipes/tiny-moe/ppo/quickstart.yaml"


def _accuracy(summary: dict, stage: str) -> float:
    return 100 * summary[stage]["arithmetic"]["accuracy"]


def _grpo(out: Path, steps: int | None, extra: list[str]) -> tuple[dict, float]:
    overrides = ["logging.progress=false", *extra]
    if steps is not None:
        overrides.append(f"training.max_steps={steps}")
    recipe = load_recipe(GRPO_RECIPE, overrides, output_dir=str(out / "grpo"))
    started = time.perf_counter()
    summary = run(recipe)
    return summary, (time.perf_counter() - started) / 60


def _ppo(out: Path, warm_start: Path, steps: int | None, extra: list[str]) -> dict:
    # PPO starts from the GRPO run's warm-start checkpoint, so both gains are measured from one start.
    overrides = ["logging.progress=false", f"model.name_or_path={warm_start}", "sft.enable=false", *extra]
    if steps is not None:
        overrides.append(f"training.max_steps={steps}")
    return run(load_recipe(PPO_RECIPE, overrides, output_dir=str(out / "ppo")))


def _sft_baseline(out: Path, warm_start: Path, seconds: float, extra: list[str]) -> dict:
    """Continue supervised training from the warm start for about ``seconds`` and evaluate."""
    from mathrl.data import load_problem_set
    from mathrl.eval.runner import evaluate
    from mathrl.models import load_model, load_tokenizer
    from mathrl.rl.sft import run_sft
    from mathrl.rl.callbacks import MetricsCallback, TimeLimitCallback

    recipe = load_recipe(GRPO_RECIPE, ["logging.progress=false", "sft.stop_at_accuracy=null", "sft.max_steps=100000",
                                       *extra], output_dir=str(out / "sft_baseline"))
    Path(recipe.output_dir).mkdir(parents=True, exist_ok=True)
    tokenizer = load_tokenizer(str(warm_start))
    model = load_model(str(warm_start))
    spec = recipe.data.train
    train = load_problem_set(spec.name, split=spec.split, seed=recipe.seed, **spec.options).records
    run_sft(recipe, model, tokenizer, train, None, Path(recipe.output_dir),
            MetricsCallback(recipe.output_dir, "sft", tensorboard=False), extra_callbacks=[TimeLimitCallback(seconds)])
    eval_spec = recipe.eval.datasets[0]
    records = load_problem_set(eval_spec.name, split=eval_spec.split, limit=eval_spec.limit, seed=recipe.seed,
                               **eval_spec.options).records
    metrics, _ = evaluate(model, tokenizer, records, template=recipe.data.prompt_template,
                          max_new_tokens=recipe.eval.max_new_tokens, progress=False)
    return metrics


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default="runs/bench_learning", help="folder for the runs (replaced)")
    parser.add_argument("--grpo-steps", type=int, help="GRPO steps (default: the recipe's)")
    parser.add_argument("--ppo-steps", type=int, help="PPO steps (default: the recipe's)")
    parser.add_argument("--skip-ppo", action="store_true", help="run GRPO only")
    parser.add_argument("--skip-sft-baseline", action="store_true", help="skip the continued-SFT comparison")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        help="recipe override applied to both runs, e.g. num_threads=1")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    out = Path(args.output)
    shutil.rmtree(out, ignore_errors=True)
    grpo, grpo_minutes = _grpo(out, args.grpo_steps, args.overrides)
    grpo_before, grpo_after = _accuracy(grpo, "before_rl"), _accuracy(grpo, "after_rl")
    result = {"grpo": {"before": grpo_before, "after": grpo_after, "gain": grpo_after - grpo_before,
                       "minutes": grpo_minutes, "rl_seconds": grpo["grpo"]["seconds"]}}
    warm_start = out / "grpo" / "sft_model"

    if not args.skip_ppo:
        ppo = _ppo(out, warm_start, args.ppo_steps, args.overrides)
        ppo_before, ppo_after = _accuracy(ppo, "before_rl"), _accuracy(ppo, "after_rl")
        result["ppo"] = {"before": ppo_before, "after": ppo_after, "gain": ppo_after - ppo_before}
    if not args.skip_sft_baseline:
        metrics = _sft_baseline(out, warm_start, grpo["grpo"]["seconds"], args.overrides)
        result["continued_sft"] = {"after": 100 * metrics["accuracy"], "seconds": grpo["grpo"]["seconds"]}

    (out / "result.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))  # noqa: T201 - benchmark output
    ppo_gain = f"{result['ppo']['gain']:.1f}" if "ppo" in result else "nan"
    print(f"grpo_gain={result['grpo']['gain']:.1f} grpo_minutes={grpo_minutes:.1f} ppo_gain={ppo_gain}")  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main())
