"""The ``mathrl data`` sub-commands: list, show, filter, pass-rate, generate."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

import yaml

__all__ = ["add_data_commands", "load_raw_records"]

logger = logging.getLogger(__name__)


def load_raw_records(name_or_path: str, split: str | None = None, limit: int | None = None) -> list[dict]:
    """Load records without dropping rows that lack an answer, so that a filter can account for them."""
    from mathrl.data import sources
    from mathrl.data.loaders import DATASETS, _is_local_path

    if _is_local_path(name_or_path):
        records = list(sources.read_local_file(name_or_path))
    else:
        spec = DATASETS.get(name_or_path)
        split = split or spec.default_split
        if split not in spec.splits:
            raise ValueError(
                f"invalid split {split!r} for dataset {name_or_path!r}; valid: {', '.join(spec.splits)}"
            )
        records = list(spec.read(split, 0))
    return records[:limit] if limit else records


def _cmd_list(args: argparse.Namespace) -> int:
    from mathrl.data import DATASETS

    for name in DATASETS.names():
        spec = DATASETS.get(name)
        print(f"{name:15s} splits: {', '.join(spec.splits):12s} {spec.description}")  # noqa: T201
    return 0


def _cmd_show(args: argparse.Namespace) -> int:
    from mathrl.data import load_problem_set

    problem_set = load_problem_set(args.name, split=args.split, limit=args.limit)
    for record in problem_set.records:
        print(json.dumps(record, ensure_ascii=False))  # noqa: T201
    print(f"# {len(problem_set)} rows, {problem_set.num_skipped} skipped", file=sys.stderr)  # noqa: T201
    return 0


def _parse_option(text: str) -> tuple[str, str, Any]:
    key, sep, raw = text.partition("=")
    name, dot, option = key.partition(".")
    if not sep or not dot or not name or not option:
        raise ValueError(
            f"invalid --option {text!r}; expected FILTER.KEY=VALUE, e.g. near_dedup.threshold=0.7"
        )
    return name, option, yaml.safe_load(raw)


def _filter_specs(args: argparse.Namespace) -> list[dict]:
    from mathrl.data.filters import BIG_MATH_FILTERS

    if args.recipe:
        from mathrl.config import load_recipe

        recipe = load_recipe(args.recipe)
        specs = [{"name": spec.name, "options": dict(spec.options)} for spec in recipe.data.filters]
        if not specs:
            raise ValueError(f"recipe {args.recipe} has no data.filters; add them or pass --filter NAME")
    else:
        names = args.filters or list(BIG_MATH_FILTERS)
        specs = [{"name": name, "options": {}} for name in names]
    for text in args.options:
        name, option, value = _parse_option(text)
        matching = [spec for spec in specs if spec["name"] == name]
        if not matching:
            raise ValueError(
                f"--option {text!r} names filter {name!r}, which is not in the list: "
                f"{', '.join(spec['name'] for spec in specs)}"
            )
        for spec in matching:
            spec["options"][option] = value
    return specs


def _cmd_filter(args: argparse.Namespace) -> int:
    from mathrl.data.filters import run_filters, write_outputs

    records = load_raw_records(args.input, args.split, args.limit)
    specs = _filter_specs(args)
    result = run_filters(records, specs)
    out_dir = write_outputs(result, args.output, args.input, extra={"split": args.split, "filters": specs})
    sys.stdout.write((out_dir / "report.md").read_text())
    kept_path, removed_path = out_dir / "kept.jsonl", out_dir / "removed.jsonl"
    print(f"# kept rows in {kept_path}, removed rows in {removed_path}", file=sys.stderr)  # noqa: T201
    return 0


def _cmd_pass_rate(args: argparse.Namespace) -> int:
    from mathrl.data import load_problem_set
    from mathrl.data.passrate import estimate_pass_rates
    from mathrl.models import load_model, load_tokenizer
    from rewards import load_reward

    records = load_problem_set(args.input, split=args.split, limit=args.limit).records
    reward_fn = load_reward(args.reward, yaml.safe_load(args.reward_options) if args.reward_options else None)
    tokenizer = load_tokenizer(args.model)
    model = load_model(args.model, dtype=args.dtype, seed=args.seed, tokenizer=tokenizer)
    rows = estimate_pass_rates(
        model,
        tokenizer,
        records,
        reward_fn,
        k=args.k,
        template=args.template,
        temperature=args.temperature,
        max_new_tokens=args.max_new_tokens,
        batch_size=args.batch_size,
        progress=not args.no_progress,
    )
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    with output.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    rates = [row["pass_rate"] for row in rows]
    summary = {
        "problems": len(rows),
        "k": args.k,
        "model": args.model,
        "reward": args.reward,
        "pass_rate_0": sum(rate == 0.0 for rate in rates),
        "pass_rate_1": sum(rate == 1.0 for rate in rates),
        "unscored": sum(rate is None for rate in rates),
        "mean_pass_rate": (
            sum(r for r in rates if r is not None) / max(sum(r is not None for r in rates), 1)
        ),
    }
    output.with_suffix(".summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary))  # noqa: T201
    return 0


def _cmd_generate(args: argparse.Namespace) -> int:
    from mathrl.data import load_problems
    from mathrl.data.generate import (
        GenerationSettings,
        build_backend,
        generate_problems,
        sample_skill_pairs,
        skills_from_labels,
        skills_from_model,
        write_generated,
    )

    settings = GenerationSettings(
        samples=args.k,
        min_agreement=args.min_agreement,
        temperature=args.temperature,
        max_problem_tokens=args.max_problem_tokens,
        max_solution_tokens=args.max_solution_tokens,
        matcher=args.matcher,
    )
    backend_options: dict[str, Any] = {}
    if args.endpoint:
        backend_options = {"api_key_env": args.api_key_env, "timeout_s": args.timeout}
    generator = build_backend(args.generator, args.endpoint, **backend_options)
    solver = (
        generator
        if not (args.solver or args.solver_endpoint)
        else build_backend(args.solver or args.generator, args.solver_endpoint, **backend_options)
    )

    if args.skills:
        skills = [skill.strip() for skill in args.skills.split(",") if skill.strip()]
        skills_from = "given on the command line"
    else:
        records = load_problems(args.skills_from, split=args.split, limit=args.skill_records)
        if args.skills_by_model:
            skills = skills_from_model(records, generator)
            skills_from = f"named by {args.generator} from {args.skills_from} solutions"
        else:
            skills = skills_from_labels(records)
            skills_from = f"subject/type/domain labels of {args.skills_from}"
    pairs = sample_skill_pairs(skills, args.pairs, seed=args.seed)
    logger.info("generating %d problems from %d skills", len(pairs), len(skills))
    kept, candidates = generate_problems(pairs, generator, solver, settings, id_prefix=Path(args.output).name)
    provenance = {
        "generator": args.endpoint or args.generator,
        "solver": args.solver_endpoint or args.solver or args.endpoint or args.generator,
        "skills_from": skills_from,
        "skills": skills,
        "seed": args.seed,
    }
    out_dir = write_generated(args.output, kept, candidates, settings, provenance)
    print(json.dumps({"candidates": len(candidates), "kept": len(kept), "output": str(out_dir)}))  # noqa: T201
    return 0


def _add_filter_parser(commands) -> None:
    parser = commands.add_parser(
        "filter", help="apply curation filters; write kept rows, removed rows and a report"
    )
    parser.add_argument("input", help="dataset name or .jsonl/.json/.parquet file")
    parser.add_argument("--split", help="split of a named dataset")
    parser.add_argument("--limit", type=int, help="only the first N rows")
    parser.add_argument(
        "--output", "-o", required=True, help="output folder for kept.jsonl, removed.jsonl, report"
    )
    parser.add_argument(
        "--filter",
        dest="filters",
        action="append",
        default=[],
        metavar="NAME",
        help="filter to run, in order (repeatable); default: the whole Big-Math curation",
    )
    parser.add_argument(
        "--option",
        dest="options",
        action="append",
        default=[],
        metavar="FILTER.KEY=VALUE",
        help="set a filter option, e.g. near_dedup.threshold=0.7 (value read as YAML; repeatable)",
    )
    parser.add_argument("--recipe", help="take the filter list from this recipe's data.filters")
    parser.set_defaults(func=_cmd_filter)


def _add_pass_rate_parser(commands) -> None:
    parser = commands.add_parser(
        "pass-rate", help="sample k answers per problem and write each problem's pass rate"
    )
    parser.add_argument("input", help="dataset name or file")
    parser.add_argument("--model", required=True, help="preset name, model folder or hub id")
    parser.add_argument(
        "--output", "-o", required=True, help="output .jsonl (a .summary.json is written beside it)"
    )
    parser.add_argument("--split")
    parser.add_argument("--limit", type=int)
    parser.add_argument("-k", type=int, default=8, help="samples per problem")
    parser.add_argument(
        "--reward", default="accuracy", help="reward that scores samples (name or import path)"
    )
    parser.add_argument("--reward-options", help="reward options as a YAML mapping, e.g. '{timeout: 2}'")
    parser.add_argument("--template", default="boxed", help="prompt template")
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--max-new-tokens", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=64, help="sequences per generate call")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-progress", action="store_true")
    parser.set_defaults(func=_cmd_pass_rate)


def _add_generate_parser(commands) -> None:
    parser = commands.add_parser("generate", help="generate new problems from pairs of skills (MATH^2 style)")
    parser.add_argument("--output", "-o", required=True, help="output folder")
    parser.add_argument(
        "--generator",
        help="transformers model (preset, folder, hub id), or the served model name with --endpoint",
    )
    parser.add_argument("--endpoint", help="OpenAI-compatible API root, e.g. http://127.0.0.1:8000/v1")
    parser.add_argument("--solver", help="model that solves the problems (default: the generator)")
    parser.add_argument("--solver-endpoint", help="endpoint of the solver (default: the generator's)")
    parser.add_argument("--api-key-env", help="name of the environment variable that contains the endpoint's API key")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per HTTP request")
    parser.add_argument("--skills", help="comma-separated skills (instead of --skills-from)")
    parser.add_argument("--skills-from", default="math500", help="dataset whose labels give the skills")
    parser.add_argument(
        "--skills-by-model",
        action="store_true",
        help="ask the generator to name the skills each solution uses, instead of the labels",
    )
    parser.add_argument("--skill-records", type=int, default=200, help="records read for skills")
    parser.add_argument("--split")
    parser.add_argument("--pairs", type=int, default=20, help="skill pairs, one problem each")
    parser.add_argument("-k", type=int, default=8, help="solver samples per problem")
    parser.add_argument(
        "--min-agreement",
        type=float,
        default=0.5,
        help="keep a problem when its majority answer has more than this share of the k answers",
    )
    parser.add_argument(
        "--matcher",
        default="verifier",
        choices=("verifier", "exact"),
        help="answer extraction and comparison: the training verifier, or exact \\boxed{} text",
    )
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--max-problem-tokens", type=int, default=512)
    parser.add_argument("--max-solution-tokens", type=int, default=1024)
    parser.add_argument("--seed", type=int, default=0)
    parser.set_defaults(func=_cmd_generate)


def add_data_commands(data_parser: argparse.ArgumentParser) -> None:
    """Add the ``list``, ``show``, ``filter``, ``pass-rate`` and ``generate`` sub-commands to ``data_parser``."""
    commands = data_parser.add_subparsers(dest="data_command", required=True)
    commands.add_parser("list", help="list the registered datasets").set_defaults(func=_cmd_list)
    show = commands.add_parser("show", help="print a dataset's records as JSON lines")
    show.add_argument("name", help="dataset name or file path")
    show.add_argument("--split", help="split to show")
    show.add_argument("--limit", type=int, default=5, help="rows to print")
    show.set_defaults(func=_cmd_show)
    _add_filter_parser(commands)
    _add_pass_rate_parser(commands)
    _add_generate_parser(commands)
