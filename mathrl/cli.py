"""The ``mathrl`` command: train, eval, data."""

from __future__ import annotations

import argparse
import logging
import sys

__all__ = ["main"]


def _cmd_train(args: argparse.Namespace) -> int:
    from mathrl.train import main as train_main

    argv = [args.recipe, *sum((["--set", s] for s in args.overrides), [])]
    if args.output:
        argv += ["--output", args.output]
    if args.resume:
        argv.append("--resume")
    return train_main(argv)


def _cmd_eval(args: argparse.Namespace) -> int:
    from mathrl.eval.cli import run_eval

    run_eval(args)
    return 0


def build_parser() -> argparse.ArgumentParser:
    from mathrl.data.cli import add_data_commands
    from mathrl.eval.cli import add_eval_arguments
    from mathrl.train import build_parser as build_train_parser

    parser = argparse.ArgumentParser(prog="mathrl", description="RL fine-tuning of math language models.")
    commands = parser.add_subparsers(dest="command", required=True)

    train = commands.add_parser("train", help="train from a recipe (SFT warm start, GRPO, evaluation)")
    build_train_parser(train)
    train.set_defaults(func=_cmd_train)

    evaluate = commands.add_parser("eval", help="evaluate a model on held-out problems")
    add_eval_arguments(evaluate)
    evaluate.set_defaults(func=_cmd_eval)

    data = commands.add_parser("data", help="inspect, filter, rate and generate datasets")
    add_data_commands(data)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S")
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError, RuntimeError, ConnectionError) as error:
        print(f"mathrl {args.command}: error: {error}", file=sys.stderr)  # noqa: T201
        return 2


if __name__ == "__main__":
    sys.exit(main())
