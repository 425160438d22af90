"""``mathrl eval``: evaluate a checkpoint, a model folder, a hub id or a preset on held-out problems."""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

__all__ = ["add_eval_arguments", "run_eval"]

logger = logging.getLogger(__name__)


def add_eval_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    parser.add_argument("--model", required=True,
                        help="run folder's final/ or checkpoint folder, a LoRA adapter folder, any transformers "
                             "model folder, a hub id, or a preset name such as tiny-qwen3-moe")
    parser.add_argument("--dataset", action="append", required=True,
                        help="dataset name (math500, gsm8k, aime24, counterexample_claims, ...) or a .jsonl/.json/.parquet "
                             "file with 'problem' and 'answer' fields (claim files: also 'judgement'); "
                             "repeat for several")
    parser.add_argument("--split", help="split to evaluate (default: the dataset's test split where it has one)")
    parser.add_argument("--limit", type=int, help="evaluate only the first N problems")
    parser.add_argument("--samples", type=int, default=1, help="completions per problem (k of pass@k and maj@k)")
    parser.add_argument("--temperature", type=float, help="sampling temperature; default 0 (greedy) for one "
                                                          "sample, 0.7 for several")
    parser.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling threshold")
    parser.add_argument("--max-new-tokens", type=int, default=512, help="maximum tokens per completion")
    parser.add_argument("--batch-size", type=int, default=64, help="completions generated per batch")
    parser.add_argument("--template", default="boxed", help="prompt template name (boxed, boxed_system, plain)")
    parser.add_argument("--dtype", default="float32", help="float32, bfloat16, float16 or auto")
    parser.add_argument("--seed", type=int, default=0, help="seed for sampling and for building a preset")
    parser.add_argument("--output", help="report folder (default: runs/eval/<model name>)")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    parser.add_argument("--no-moe-runtime", action="store_true",
                        help="run MoE expert layers with transformers' implementation instead of mathrl's runtime")
    return parser


def _default_split(name: str, split: str | None) -> str | None:
    from mathrl.data import DATASETS

    if split is not None or name not in DATASETS:
        return split
    spec = DATASETS.get(name)
    return "test" if "test" in spec.splits else spec.default_split


def run_eval(args: argparse.Namespace) -> dict:
    """Evaluate ``args.model`` on each ``args.dataset``; return {dataset: metrics}."""
    import torch
    from transformers import set_seed

    from mathrl.data import load_problem_set
    from mathrl.eval.runner import evaluate, write_reports
    from mathrl.models import load_model, load_tokenizer
    from mathrl.threads import configure_threads

    temperature = args.temperature if args.temperature is not None else (0.0 if args.samples == 1 else 0.7)
    if temperature == 0 and args.samples > 1:
        raise ValueError(f"--samples {args.samples} needs --temperature > 0 (0 decodes greedily)")
    configure_threads(None, local_processes=1)
    set_seed(args.seed)
    problem_sets = {}
    for name in args.dataset:
        problem_set = load_problem_set(name, split=_default_split(name, args.split), limit=args.limit, seed=args.seed)
        if problem_set.skipped:
            logger.warning("%s: skipped %d rows (%s)", name, problem_set.num_skipped, dict(problem_set.skipped))
        problem_sets[Path(name).stem if Path(name).suffix else name] = problem_set.records

    tokenizer = load_tokenizer(args.model)
    model = load_model(args.model, dtype=args.dtype, seed=args.seed, tokenizer=tokenizer)
    if torch.cuda.is_available():
        model = model.to("cuda")
    if not args.no_moe_runtime:
        from mathrl.models.moe import enable_moe_runtime
        from mathrl.moe.config import MoEConfig

        model = enable_moe_runtime(model, MoEConfig())
    model_name = Path(args.model.rstrip("/")).name or args.model
    output = Path(args.output) if args.output else Path("runs") / "eval" / model_name

    results = {}
    for name, records in problem_sets.items():
        started = time.perf_counter()
        metrics, problems = evaluate(model, tokenizer, records, template=args.template, samples=args.samples,
                                     temperature=temperature, top_p=args.top_p, max_new_tokens=args.max_new_tokens,
                                     batch_size=args.batch_size, progress=not args.no_progress,
                                     description=f"eval {name}")
        header = {"model": args.model, "samples": args.samples, "temperature": temperature,
                  "max_new_tokens": args.max_new_tokens, "seconds": round(time.perf_counter() - started, 1)}
        folder = write_reports(output / name, name, metrics, problems, k=args.samples, header=header)
        logger.info("%s: accuracy %.1f%%, pass@%d %.1f%%, maj@%d %.1f%% on %d problems; report in %s", name,
                    100 * metrics["accuracy"], args.samples, 100 * metrics[f"pass@{args.samples}"], args.samples,
                    100 * metrics[f"maj@{args.samples}"], metrics["n"], folder / "report.md")
        if metrics.get("kind") == "claims":
            success = metrics["counterexample_success"]
            logger.info("%s: judgement accuracy %.1f%%, macro-F1 %.1f, explicit examples %.1f%%, counterexample "
                        "success %s on checkable false claims", name, 100 * metrics["judgement_accuracy"],
                        100 * metrics["macro_f1"], 100 * metrics["frac_explicit_example"],
                        "-" if success is None else f"{100 * success:.1f}%")
        results[name] = metrics
    return results
