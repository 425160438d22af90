"""GRPO step throughput: mathrl's trainer with its MoE runtime against TRL's GRPOTrainer on the stock model.

Both trainers start from the same preset weights, recipe settings and seed; their steps alternate
in one process so machine load affects both alike. Throughput counts prompt and completion tokens
per second of a whole step: generation, scoring, the loss forward and backward, and the
optimizer step.

    python benchmarks/grpo_step.py                    # tiny preset, 8 prompts x 8 completions
    python benchmarks/grpo_step.py --threads 1 --steps 6 --warmup 1
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import torch  # noqa: E402
from datasets import Dataset  # noqa: E402
from trl import GRPOTrainer  # noqa: E402

import mathrl.moe  # noqa: E402
from mathrl.config import load_recipe  # noqa: E402
from mathrl.data import load_problems  # noqa: E402
from mathrl.models import load_model, load_tokenizer  # noqa: E402
from mathrl.rl.grpo import MathGRPOTrainer, _training_rows, grpo_args  # noqa: E402
from mathrl.rl.rewards import build_reward_funcs  # noqa: E402


class _Stepper:
    """Drive one trainer a step at a time, outside ``Trainer.train``."""

    def __init__(self, trainer, steps: int):
        self.trainer = trainer
        trainer.create_optimizer_and_scheduler(num_training_steps=steps)
        trainer.current_gradient_accumulation_steps = 1
        trainer.model.train()
        self.batches = iter(trainer.get_train_dataloader())
        self.times: list[float] = []
        self.tokens: list[int] = []

    def step(self) -> None:
        trainer = self.trainer
        batch = next(self.batches)
        started = time.perf_counter()
        tokens_before = trainer.state.num_input_tokens_seen
        loss = trainer.training_step(trainer.model, batch, num_items_in_batch=None)
        trainer.optimizer.step()
        trainer.lr_scheduler.step()
        trainer.optimizer.zero_grad(set_to_none=True)
        trainer._step += 1
        self.times.append(time.perf_counter() - started)
        self.tokens.append(trainer.state.num_input_tokens_seen - tokens_before)
        assert torch.isfinite(loss)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="tiny-qwen3-moe", help="model preset")
    parser.add_argument("--steps", type=int, default=8, help="timed steps per trainer")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps per trainer first")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--max-completion-length", type=int, default=32, help="new tokens per completion")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    recipe = load_recipe(None, [f"model.name_or_path={args.preset}", "grpo.num_generations=8",
                                "training.prompts_per_step=8", "logging.progress=false", "generation.temperature=1.0",
                                f"generation.max_completion_length={args.max_completion_length}",
                                "rewards=[{name: format}]"])
    tokenizer = load_tokenizer(args.preset)
    records = load_problems("arithmetic", split="train", n=512, levels=[1], ops="+")
    dataset = Dataset.from_list(_training_rows(records, "plain"))
    base = load_model(args.preset, seed=0)
    ours_model = mathrl.moe.enable(copy.deepcopy(base), recipe.moe)
    total = args.steps + args.warmup
    out = Path("runs/bench_grpo_step")

    def trainer_for(cls, model, name, runtime):
        funcs, weights = build_reward_funcs(recipe.rewards)
        config = grpo_args(recipe, out / name, weights, runtime_enabled=runtime)
        config.max_steps = total
        extra = {"moe_enabled": True} if cls is MathGRPOTrainer else {}
        return cls(model=model, reward_funcs=funcs, args=config, train_dataset=dataset, processing_class=tokenizer,
                   **extra)

    steppers = {"trl": _Stepper(trainer_for(GRPOTrainer, base, "trl", False), total),
                "mathrl": _Stepper(trainer_for(MathGRPOTrainer, ours_model, "mathrl", True), total)}
    for _ in range(total):
        for stepper in steppers.values():
            stepper.step()

    rows = {}
    for name, stepper in steppers.items():
        times, tokens = stepper.times[args.warmup:], stepper.tokens[args.warmup:]
        rows[name] = {"median_s": statistics.median(times), "tokens_per_s": sum(tokens) / sum(times)}
    ratio = rows["mathrl"]["tokens_per_s"] / rows["trl"]["tokens_per_s"]
    print(f"preset {args.preset}, 8 prompts x 8 completions, {args.max_completion_length} new tokens, "  # noqa: T201
          f"{torch.get_num_threads()} thread(s), {args.steps} timed steps after {args.warmup} warm-up")
    print("| trainer | median step (s) | tokens/s |")  # noqa: T201
    print("|---|---|---|")  # noqa: T201
    for name, row in rows.items():
        print(f"| {name} | {row['median_s']:.2f} | {row['tokens_per_s']:.0f} |")  # noqa: T201
    print(f"mathrl/trl tokens per second: {ratio:.2f}x")  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main())
