"""Side-by-side accuracy and speed of the mathrl verifier and math-verify 0.9 on labelled cases.

    pip install "math-verify==0.9.*"      # the project's `bench` extra
    PYTHONPATH=. python benchmarks/verifier.py

Both verifiers run in this process on the same cases: ``tests/rewards/cases.jsonl`` (the shared
labelled set), ``tests/rewards/own_cases.jsonl`` and a few generated megabyte-sized adversarial
inputs. math-verify gets its default options with the gold wrapped in ``\\boxed{}``. A case counts
as correct when the verifier returns True exactly when the label is true.

Latency is per case, one call at a time (``rewards.verify``, which includes the round trip to a
worker process). Batch throughput is ``rewards.verify_many`` over all cases at once.
"""

# ruff: noqa: T201 (a benchmark script reports its results on stdout)

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rewards import verify, verify_many  # noqa: E402

CASE_FILES = [ROOT / "tests/rewards/cases.jsonl", ROOT / "tests/rewards/own_cases.jsonl"]
HUGE = [
    ("1", "a" * 1_000_000),
    ("1", "The answer is " + "1+" * 500_000 + "1"),
    ("1", "\\boxed{" * 20_000),
    ("1", "\\boxed{" + "9" * 100_000 + "}"),
]


def load_cases(paths: list[Path], huge: bool) -> list[dict]:
    cases = []
    for path in paths:
        with open(path, encoding="utf-8") as f:
            cases += [json.loads(line) for line in f if line.strip()]
    if huge:
        for k, (gold, prediction) in enumerate(HUGE):
            cases.append(
                {
                    "id": f"huge{k}",
                    "category": "adversarial",
                    "gold": gold,
                    "prediction": prediction,
                    "expected": False,
                }
            )
    return cases


def run_math_verify(cases: list[dict]) -> tuple[list[bool], list[float]]:
    from math_verify import parse
    from math_verify import verify as mv_verify

    logging.getLogger("math_verify").setLevel(logging.CRITICAL)
    verdicts, latencies = [], []
    for case in cases:
        prediction = case["prediction"]
        if not isinstance(prediction, str):
            prediction = prediction[-1]["content"]  # math-verify takes strings only
        start = time.perf_counter()
        try:
            ok = bool(mv_verify(parse("\\boxed{" + case["gold"] + "}"), parse(prediction)))
        except Exception:  # noqa: BLE001 - a crash counts as a False verdict
            ok = False
        latencies.append(time.perf_counter() - start)
        verdicts.append(ok)
    return verdicts, latencies


def run_mathrl(cases: list[dict]) -> tuple[list[bool], list[float]]:
    verify("x + 1", r"\boxed{1 + x}")  # start the worker processes outside the timing
    verdicts, latencies = [], []
    for case in cases:
        start = time.perf_counter()
        verdict = verify(case["gold"], case["prediction"])
        latencies.append(time.perf_counter() - start)
        verdicts.append(verdict.correct is True)
    return verdicts, latencies


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(0.99 * (len(ordered) - 1))))]


def hardware() -> str:
    model = platform.processor() or "unknown CPU"
    try:
        with open("/proc/cpuinfo") as f:
            model = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"{model}, {os.cpu_count()} logical CPUs, Python {platform.python_version()}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", nargs="*", type=Path, default=CASE_FILES, help="JSONL case files")
    parser.add_argument("--no-huge", action="store_true", help="skip the generated megabyte-sized inputs")
    args = parser.parse_args()
    cases = load_cases(args.cases, huge=not args.no_huge)

    mv_ok, mv_lat = run_math_verify(cases)
    ours_ok, ours_lat = run_mathrl(cases)
    start = time.perf_counter()
    verify_many((c["gold"], c["prediction"]) for c in cases)
    batch_s = time.perf_counter() - start

    per_category: dict[str, list] = defaultdict(lambda: [0, 0, 0])
    for case, mv, ours in zip(cases, mv_ok, ours_ok):
        row = per_category[case["category"]]
        row[0] += 1
        row[1] += mv == case["expected"]
        row[2] += ours == case["expected"]

    print(f"hardware: {hardware()}")
    print(
        f"cases: {len(cases)} from {', '.join(p.name for p in args.cases)}"
        + ("" if args.no_huge else " + generated")
    )
    print()
    print("| category | cases | math-verify 0.9 | mathrl |")
    print("|---|---:|---:|---:|")
    for category in sorted(per_category):
        n, mv, ours = per_category[category]
        print(f"| {category} | {n} | {mv}/{n} | {ours}/{n} |")
    mv_total = sum(m == c["expected"] for c, m in zip(cases, mv_ok))
    ours_total = sum(o == c["expected"] for c, o in zip(cases, ours_ok))
    print(f"| **all** | {len(cases)} | {mv_total / len(cases):.1%} | {ours_total / len(cases):.1%} |")

    with open(CASE_FILES[0], encoding="utf-8") as f:
        shared_ids = {json.loads(line)["id"] for line in f}
    shared = [k for k, c in enumerate(cases) if c["id"] in shared_ids]
    if shared:
        mv_shared = sum(mv_ok[k] == cases[k]["expected"] for k in shared) / len(shared)
        ours_shared = sum(ours_ok[k] == cases[k]["expected"] for k in shared) / len(shared)
        print(f"| shared set only | {len(shared)} | {mv_shared:.1%} | {ours_shared:.1%} |")

    adversarial = [k for k, c in enumerate(cases) if c["category"] == "adversarial"]
    print()
    print("| speed (one call at a time) | math-verify 0.9 | mathrl | math-verify / mathrl |")
    print("|---|---:|---:|---:|")
    regular = [k for k, c in enumerate(cases) if c["category"] != "adversarial"]
    rows = [
        ("mean latency (ms)", statistics.mean(mv_lat) * 1e3, statistics.mean(ours_lat) * 1e3),
        (
            "mean latency, non-adversarial (ms)",
            statistics.mean(mv_lat[k] for k in regular) * 1e3,
            statistics.mean(ours_lat[k] for k in regular) * 1e3,
        ),
        ("median latency (ms)", statistics.median(mv_lat) * 1e3, statistics.median(ours_lat) * 1e3),
        ("p99 latency (ms)", p99(mv_lat) * 1e3, p99(ours_lat) * 1e3),
        (
            "worst adversarial (ms)",
            max(mv_lat[k] for k in adversarial) * 1e3,
            max(ours_lat[k] for k in adversarial) * 1e3,
        ),
    ]
    for label, mv, ours in rows:
        print(f"| {label} | {mv:.2f} | {ours:.2f} | {mv / ours:.1f}x |")
    mv_rate, ours_rate = len(cases) / sum(mv_lat), len(cases) / sum(ours_lat)
    print(f"| cases per second | {mv_rate:.1f} | {ours_rate:.1f} | {ours_rate / mv_rate:.1f}x |")
    mv_reg = len(regular) / sum(mv_lat[k] for k in regular)
    ours_reg = len(regular) / sum(ours_lat[k] for k in regular)
    print(f"| cases per second, non-adversarial | {mv_reg:.1f} | {ours_reg:.1f} | {ours_reg / mv_reg:.1f}x |")
    print(f"| cases per second, `verify_many` batch | - | {len(cases) / batch_s:.1f} | - |")


if __name__ == "__main__":
    main()
