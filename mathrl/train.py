"""Train a math model from a recipe: optional SFT warm start, then GRPO or PPO, then evaluation.

One process (CPU or one GPU)::

    mathrl train recipes/tiny-moe/grpo/quickstart.yaml
    python -m mathrl.train recipes/tiny-moe/grpo/quickstart.yaml --set training.max_steps=20

Several processes or GPUs (see recipes/README.md for CPU-only machines)::

    accelerate launch --config_file recipes/accelerate/ddp.yaml -m mathrl.train recipes/tiny-moe/grpo/gsm8k.yaml

The run folder (``output_dir``, or ``--output``) receives the resolved recipe, ``metrics.jsonl``,
TensorBoard events, checkpoints, the final model and the evaluation reports.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path

import yaml

from mathrl.config import Recipe, RecipeError, load_recipe, recipe_to_dict
from mathrl.threads import configure_threads

__all__ = ["main", "run", "build_parser"]

logger = logging.getLogger("mathrl.train")


def build_parser(parser: argparse.ArgumentParser | None = None) -> argparse.ArgumentParser:
    parser = parser or argparse.ArgumentParser(prog="mathrl train", description="Train a model from a recipe.")
    parser.add_argument("recipe", help="recipe YAML file")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override a recipe field, e.g. --set training.max_steps=20 (repeatable)")
    parser.add_argument("--output", help="run folder; overrides the recipe's output_dir")
    parser.add_argument("--resume", action="store_true",
                        help="continue from the newest checkpoint in the run folder instead of starting over")
    return parser


def _setup_logging(is_main: bool) -> None:
    logging.basicConfig(
        level=logging.INFO if is_main else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        force=True,
    )
    import transformers

    transformers.logging.set_verbosity_warning() if is_main else transformers.logging.set_verbosity_error()


def _load_set(spec, seed: int, label: str):
    from mathrl.data import load_problem_set

    problem_set = load_problem_set(spec.name, split=spec.split, limit=spec.limit, seed=seed, shuffle=spec.shuffle,
                                   **spec.options)
    if problem_set.skipped:
        logger.warning("%s set %s: skipped %d rows (%s)", label, spec.name, problem_set.num_skipped,
                       ", ".join(f"{reason}: {count}" for reason, count in problem_set.skipped.items()))
    logger.info("%s set %s (split %s): %d problems", label, spec.name, problem_set.split, len(problem_set))
    return problem_set.records


def _curate_train_set(records: list[dict], recipe: Recipe, run_dir: Path, is_main: bool) -> list[dict]:
    """Apply the recipe's data filters and difficulty band; the main process writes <run>/data/ reports."""
    from mathrl.data.prepare import prepare_training_records

    out_dir = run_dir / "data" if is_main else None
    return prepare_training_records(records, recipe.data, recipe.seed, out_dir, source=recipe.data.train.name)


def _drop_long_prompts(records: list[dict], tokenizer, template: str, max_tokens: int | None) -> list[dict]:
    if max_tokens is None:
        return records
    from mathrl.data.prompts import format_prompt

    kept = [r for r in records
            if len(tokenizer.apply_chat_template(format_prompt(r, template), add_generation_prompt=True,
                                                 tokenize=True, return_dict=False)) <= max_tokens]
    if len(kept) < len(records):
        logger.warning("skipped %d training problems whose prompt is longer than generation.max_prompt_length=%d",
                       len(records) - len(kept), max_tokens)
    if not kept:
        raise RecipeError(f"every training prompt is longer than generation.max_prompt_length={max_tokens}; raise it")
    return kept


def _evaluate_sets(recipe: Recipe, model, tokenizer, eval_sets: dict, out_dir: Path, tag: str) -> dict:
    from mathrl.eval.runner import evaluate, write_reports

    results = {}
    for name, records in eval_sets.items():
        started = time.perf_counter()
        metrics, problems = evaluate(model, tokenizer, records, template=recipe.data.prompt_template,
                                     samples=recipe.eval.samples, temperature=recipe.eval.temperature,
                                     max_new_tokens=recipe.eval.max_new_tokens, batch_size=recipe.eval.batch_size,
                                     progress=recipe.logging.progress, description=f"eval {name} ({tag})")
        header = {"model": tag, "samples": recipe.eval.samples, "temperature": recipe.eval.temperature,
                  "seconds": round(time.perf_counter() - started, 1)}
        write_reports(out_dir / name, name, metrics, problems, k=recipe.eval.samples, header=header)
        logger.info("eval %s (%s): accuracy %.1f%% on %d problems", name, tag, 100 * metrics["accuracy"], metrics["n"])
        results[name] = metrics
    return results


def _ensure_loadable_reference(model, tokenizer, run_dir: Path, state) -> None:
    """Make the starting policy loadable by path: TRL builds GRPO's reference model with from_pretrained
    on ``config._name_or_path``, which a preset name or an in-memory model does not satisfy."""
    from mathrl.models import PRESETS
    from mathrl.rl.checkpoint import save_model_atomic

    source = model.config._name_or_path
    if source and source not in PRESETS and (Path(source).is_dir() or not Path(source).exists()):
        return  # a model folder or a hub id
    reference = run_dir / "reference_model"
    if state.is_main_process:
        save_model_atomic(model, tokenizer, reference)
    state.wait_for_everyone()
    model.config._name_or_path = model.name_or_path = str(reference.resolve())


def _write_summary(run_dir: Path, before: dict, after: dict, extra: dict) -> None:
    lines = ["# Run summary", "", "| eval set | n | before RL | after RL | change |", "|---|---|---|---|---|"]
    for name, metrics in after.items():
        prior = before.get(name)
        prior_text = f"{100 * prior['accuracy']:.1f}%" if prior else "-"
        change = f"{100 * (metrics['accuracy'] - prior['accuracy']):+.1f}" if prior else "-"
        lines.append(f"| {name} | {metrics['n']} | {prior_text} | {100 * metrics['accuracy']:.1f}% | {change} |")
    (run_dir / "summary.md").write_text("\n".join(lines) + "\n")
    summary = {"before_rl": {k: v["accuracy"] for k, v in before.items()},
               "after_rl": {k: v["accuracy"] for k, v in after.items()}, **extra}
    claim_keys = ("judgement_accuracy", "macro_f1", "frac_explicit_example", "counterexample_success")
    claims = {name: {stage: {key: metrics[name][key] for key in claim_keys}
                     for stage, metrics in (("before_rl", before), ("after_rl", after)) if name in metrics}
              for name, values in after.items() if values.get("kind") == "claims"}
    if claims:
        summary["claims"] = claims
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    for line in lines[2:]:
        logger.info("%s", line)


def run(recipe: Recipe, resume: bool = False) -> dict:
    """Run the whole recipe; return the summary (dev curve, before/after accuracies, timings)."""
    from accelerate import PartialState
    from transformers import set_seed

    from mathrl.models import load_model, load_tokenizer
    from mathrl.models.moe import enable_moe_runtime, is_moe_runtime_enabled
    from mathrl.rl.callbacks import MetricsCallback
    from mathrl.rl.checkpoint import last_checkpoint, save_model_atomic

    import torch

    # Without a GPU, accelerate only forms a process group when asked for CPU explicitly; it then
    # uses gloo. This is what makes `accelerate launch --multi_gpu` and torchrun work on CPU machines.
    state = PartialState(cpu=not torch.cuda.is_available())
    _setup_logging(state.is_main_process)
    threads = configure_threads(recipe.num_threads, int(os.environ.get("LOCAL_WORLD_SIZE", state.num_processes)))
    set_seed(recipe.seed)
    run_dir = Path(recipe.output_dir)
    started = time.perf_counter()
    if state.is_main_process:
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "recipe.yaml").write_text(yaml.safe_dump(recipe_to_dict(recipe), sort_keys=False))
        if not resume and (run_dir / "metrics.jsonl").exists():
            (run_dir / "metrics.jsonl").unlink()
    state.wait_for_everyone()
    logger.info("run folder %s, %d process(es), device %s, %d CPU thread(s) each", run_dir, state.num_processes,
                state.device, threads)

    # Data first: a bad dataset name should fail before any model work.
    train_records = _load_set(recipe.data.train, recipe.seed, "train")
    train_records = _curate_train_set(train_records, recipe, run_dir, state.is_main_process)
    dev_records = _load_set(recipe.data.dev, recipe.seed, "dev") if recipe.data.dev else None
    eval_sets = {spec.name.rsplit("/", 1)[-1].removesuffix(".jsonl"): _load_set(spec, recipe.seed, "eval")
                 for spec in recipe.eval.datasets}

    tokenizer = load_tokenizer(recipe.model.name_or_path)
    sft_dir = run_dir / "sft_model"
    resume_sft = resume and (sft_dir / "config.json").is_file()
    model = load_model(str(sft_dir) if resume_sft else recipe.model.name_or_path, dtype=recipe.model.dtype,
                       seed=recipe.seed, tokenizer=tokenizer)
    model = enable_moe_runtime(model, recipe.moe)
    logger.info("model %s: %.2f M parameters, MoE runtime %s", recipe.model.name_or_path,
                sum(p.numel() for p in model.parameters()) / 1e6, "on" if is_moe_runtime_enabled(model) else "off")
    train_records = _drop_long_prompts(train_records, tokenizer, recipe.data.prompt_template,
                                       recipe.generation.max_prompt_length)

    summary: dict = {"processes": state.num_processes}
    if recipe.sft.enable and not resume_sft:
        from mathrl.rl.sft import run_sft

        sft_started = time.perf_counter()
        summary["sft"] = run_sft(recipe, model, tokenizer, train_records, dev_records, run_dir,
                                 MetricsCallback(run_dir, "sft", recipe.logging.tensorboard))
        summary["sft"]["seconds"] = round(time.perf_counter() - sft_started, 1)
        if state.is_main_process:
            save_model_atomic(model, tokenizer, sft_dir)
        state.wait_for_everyone()
        # TRL's SFTTrainer leaves a wrapped `forward` on the model object; a deep copy of it (such as
        # GRPO's reference model when beta > 0) would still run the live policy. Reload a clean copy.
        model = enable_moe_runtime(load_model(str(sft_dir), dtype=recipe.model.dtype, tokenizer=tokenizer),
                                   recipe.moe)

    before = {}
    if eval_sets and recipe.eval.before_rl and state.is_main_process:
        before = _evaluate_sets(recipe, model, tokenizer, eval_sets, run_dir / "eval" / "before_rl", "before RL")
    state.wait_for_everyone()

    if recipe.algorithm == "ppo":
        from mathrl.rl.ppo import build_ppo_trainer as build_trainer
    else:
        from mathrl.rl.grpo import build_grpo_trainer as build_trainer

    if recipe.model.lora.enable and (sft_dir / "config.json").is_file():
        # Adapters are trained on top of the warm-started weights; record them as the adapter's base.
        model.config._name_or_path = model.name_or_path = str(sft_dir.resolve())

    if recipe.algorithm == "grpo" and recipe.grpo.beta > 0 and not recipe.model.lora.enable:
        _ensure_loadable_reference(model, tokenizer, run_dir, state)

    expert_parallel = recipe.moe.enable and recipe.moe.expert_parallel.size > 1
    if expert_parallel:
        # Shard the experts only for the RL stage: SFT and the main-process evaluations run the full model.
        import mathrl.moe
        from mathrl.moe.parallel import ExpertParallelCheckpoint

        if recipe.model.lora.enable:
            raise RecipeError("moe.expert_parallel.size > 1 does not support model.lora yet; disable one of them")
        if recipe.training.eval_steps > 0 and recipe.training.keep_best:
            # keep_best saves from the main process alone, which cannot see the other ranks' experts.
            raise RecipeError("moe.expert_parallel.size > 1 does not support training.keep_best with eval_steps > 0 "
                              "yet; set training.keep_best: false")
        model = mathrl.moe.enable(model, recipe.moe)

    stage = recipe.algorithm
    rl_started = time.perf_counter()
    rl_metrics = MetricsCallback(run_dir, stage, recipe.logging.tensorboard)
    trainer, dev = build_trainer(recipe, model, tokenizer, train_records, run_dir, rl_metrics, dev_records)
    if expert_parallel:
        trainer.add_callback(ExpertParallelCheckpoint())  # checkpoints get the gathered experts
    checkpoint = last_checkpoint(run_dir / "checkpoints") if resume else None
    start_source = str(sft_dir) if (sft_dir / "config.json").is_file() else recipe.model.name_or_path
    if dev is not None and recipe.training.keep_best and not recipe.model.lora.enable and checkpoint is None:
        _measure_start(dev, trainer.model, rl_metrics, state.is_main_process)
    if resume:
        logger.info("resuming %s from %s", stage.upper(), checkpoint or "the start (no checkpoint found)")
        if checkpoint and hasattr(trainer, "load_extra_state"):
            trainer.load_extra_state(checkpoint)
    trainer.train(resume_from_checkpoint=checkpoint)
    summary[stage] = {"steps": trainer.state.global_step, "seconds": round(time.perf_counter() - rl_started, 1)}

    final_model = trainer.model
    if expert_parallel:  # every process: gather the experts so that one process can save and evaluate
        from mathrl.moe.parallel import unshard

        final_model = unshard(final_model)
    if hasattr(final_model, "merge_and_unload"):
        if state.is_main_process:
            save_model_atomic(final_model, tokenizer, run_dir / "final_adapter")
        final_model = final_model.merge_and_unload()
    if dev is not None:
        summary[stage]["dev_curve"] = dev.history
        best_source = str(run_dir / "best") if dev.best and dev.best[0] > 0 else start_source
        if recipe.training.keep_best and dev.best is not None and (dev.best[0] == 0 or Path(best_source).is_dir()):
            final_dev = dev.measure(final_model)
            if dev.best[1] > final_dev:
                logger.info("final dev accuracy %.1f%% is below the best %.1f%% (step %d%s); using that model",
                            100 * final_dev, 100 * dev.best[1], dev.best[0],
                            ", the starting model" if dev.best[0] == 0 else "")
                final_model = enable_moe_runtime(load_model(best_source, dtype=recipe.model.dtype, seed=recipe.seed,
                                                            tokenizer=tokenizer), recipe.moe)
                summary[stage]["final_is_best_step"] = dev.best[0]

    after = {}
    if state.is_main_process:
        save_model_atomic(final_model, tokenizer, run_dir / "final")
        if eval_sets:
            after = _evaluate_sets(recipe, final_model, tokenizer, eval_sets, run_dir / "eval", "after RL")
        summary["seconds"] = round(time.perf_counter() - started, 1)
        _write_summary(run_dir, before, after, summary)
        logger.info("done in %.0f s; final model in %s", summary["seconds"], run_dir / "final")
    state.wait_for_everyone()
    summary["before_rl"], summary["after_rl"] = before, after
    return summary


def _measure_start(dev, model, metrics: MetricsCallback, is_main_process: bool) -> None:
    """Score the starting model on the dev set as step 0, so that keep_best does not end below the start."""
    accuracy = dev.measure(model)
    dev.history.append((0, accuracy))
    dev.best = (0, accuracy)
    logger.info("step 0: dev accuracy %.1f%% (the starting model)", 100 * accuracy)
    if is_main_process:
        metrics.write(0, {"dev/accuracy": accuracy})


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        recipe = load_recipe(args.recipe, args.overrides, args.output)
    except RecipeError as error:
        print(f"mathrl train: error: {error}", file=sys.stderr)  # noqa: T201 - command-line output
        return 2
    run(recipe, resume=args.resume)
    return 0


if __name__ == "__main__":
    sys.exit(main())
