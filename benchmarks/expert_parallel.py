"""Sweep token counts and fixed (r, d) choices of expert parallelism against the adaptive chooser.

    PYTHONPATH=. python benchmarks/expert_parallel.py                     # 2 CPU ranks over gloo
    PYTHONPATH=. python benchmarks/expert_parallel.py --threads 1 --tokens 128 512 2048
    PYTHONPATH=. python benchmarks/expert_parallel.py --device cuda       # one rank per GPU, NCCL

Every rank runs one Qwen3-MoE expert layer (E experts sharded over the W ranks) and its own
tokens. For each token count, one model per fixed (r, d) and one with r and degree 'auto' share
weights and inputs; they run interleaved (order rotating every repeat) for forward+backward, and
a step's time is the slowest rank's. The adaptive model first runs until its chooser has decided.
Each row prints the median step time (ms) of every variant, the best fixed one, the adaptive
choice, the ratio adaptive / best (the goal is <= 1.10), choice / best (the median of the fixed
variant that the chooser picked over the best, which leaves out the noise between two models
doing the same computation) and adaptive / best over the minimum step times instead of medians.
"""

# ruff: noqa: T201 - a benchmark script prints its table
from __future__ import annotations

import argparse
import datetime
import os
import platform
import socket
import statistics
import time

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from transformers import Qwen3MoeConfig, Qwen3MoeForCausalLM

import mathrl.moe as moe
from mathrl.moe.parallel.chooser import candidates
from mathrl.moe.parallel.layout import ExpertLayout


def build(hidden: int, inter: int, experts: int, top_k: int, device, seed: int = 0):
    config = Qwen3MoeConfig(
        vocab_size=32,
        hidden_size=hidden,
        intermediate_size=inter,
        moe_intermediate_size=inter,
        num_hidden_layers=1,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=hidden // 4,
        num_experts=experts,
        num_experts_per_tok=top_k,
        norm_topk_prob=True,
    )
    torch.manual_seed(seed)
    return Qwen3MoeForCausalLM(config).to(device)


def _sync_time(device) -> float:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter()


def _step(block, x, device) -> float:
    """One forward+backward of the MoE block; returns the slowest rank's seconds."""
    dist.barrier()
    start = _sync_time(device)
    out = block(x)
    out.float().pow(2).mean().backward()
    elapsed = torch.tensor([_sync_time(device) - start], device=device)
    dist.all_reduce(elapsed, op=dist.ReduceOp.MAX)
    return float(elapsed)


def worker(rank: int, world: int, port: int, args) -> None:
    os.environ.update(
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
        RANK=str(rank),
        WORLD_SIZE=str(world),
        LOCAL_WORLD_SIZE=str(world),
    )
    torch.set_num_threads(args.threads)
    backend = "nccl" if args.device == "cuda" else "gloo"
    if args.device == "cuda":
        torch.cuda.set_device(rank)
    device = torch.device(args.device, rank) if args.device == "cuda" else torch.device("cpu")
    dist.init_process_group(backend, timeout=datetime.timedelta(seconds=300))

    layout = ExpertLayout(
        world=world, rank=0, num_experts=args.experts, intermediate=args.inter, gate="halves"
    )
    pairs = candidates(layout.degrees(), pipeline=args.degrees)
    variants = {f"r={r} d={d}": {"r": r, "degree": d} for r, d in pairs}
    variants["auto"] = {"r": "auto", "degree": "auto"}
    models = {}
    kernels = None
    for name, parallel in variants.items():
        model = build(args.hidden, args.inter, args.experts, args.top_k, device)
        model = moe.enable(model, {"expert_parallel": {"size": world, **parallel}})
        # One expert-kernel chooser for all variants, so that they differ only in (r, d).
        kernels = kernels or model._mathrl_moe.chooser
        model._mathrl_moe.chooser = kernels
        models[name] = model.model.layers[0].mlp
    runtime = next(iter(m for n, m in models.items() if n == "auto")).experts._mathrl_layer.runtime

    if rank == 0:
        print(
            f"# {world} ranks, {backend}, {args.device}, {args.threads} thread(s) each; H={args.hidden} "
            f"I={args.inter} E={args.experts} K={args.top_k}; {platform.processor() or platform.machine()}, "
            f"{os.cpu_count()} CPUs; torch {torch.__version__}"
        )
        columns = [
            "tokens/rank",
            *variants,
            "best fixed",
            "adaptive choice",
            "adaptive/best",
            "choice/best",
            "adaptive/best (min)",
        ]
        print(f"| {' | '.join(columns)} |")
        print("|" + "---|" * len(columns))
    generator = torch.Generator().manual_seed(rank)
    for tokens in args.tokens:
        x = torch.randn(1, tokens, args.hidden, generator=generator).to(device).requires_grad_(True)
        # Let the adaptive chooser decide (every candidate, `trials` times) before timing.
        chooser_steps = len(pairs) * 4 + 1
        for _ in range(chooser_steps):
            _step(models["auto"], x, device)
        for model in models.values():  # warm up, including the kernel choice of each variant
            _step(model, x, device)
        times = {name: [] for name in models}
        names = list(models)
        for repeat in range(args.repeats):
            for name in names[repeat % len(names) :] + names[: repeat % len(names)]:
                times[name].append(_step(models[name], x, device))
        medians = {name: statistics.median(values) * 1e3 for name, values in times.items()}
        minima = {name: min(values) * 1e3 for name, values in times.items()}
        fixed = {name: value for name, value in medians.items() if name != "auto"}
        best = min(fixed, key=fixed.get)
        decisions = [
            entry for entry in runtime.parallel.choosers[tuple(layout.degrees())].history if entry["key"][2]
        ]  # with grad
        choice = "r={} d={}".format(*decisions[-1]["choice"]) if decisions else "-"
        if rank == 0:
            cells = [
                str(tokens),
                *(f"{medians[n]:.2f}" for n in variants),
                f"{best} {fixed[best]:.2f}",
                choice,
                f"{medians['auto'] / fixed[best]:.3f}",
                f"{fixed[choice] / fixed[best]:.3f}" if choice in fixed else "-",
                f"{minima['auto'] / min(v for n, v in minima.items() if n != 'auto'):.3f}",
            ]
            print("| " + " | ".join(cells) + " |", flush=True)
    if rank == 0:
        print("\nchooser measurements (forward+backward of the expert layer, min of 4, slowest rank):")
        for entry in runtime.parallel.choosers[tuple(layout.degrees())].history:
            slots, grad = entry["key"][1], entry["key"][2]
            times = ", ".join(f"r={r} d={d} {ms:.1f}" for (r, d), ms in entry["ms"].items())
            print(
                f"  up to {slots} slots{' with grad' if grad else ''}: {times} -> r={entry['choice'][0]} "
                f"d={entry['choice'][1]}"
            )
    dist.destroy_process_group()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument(
        "--world", type=int, default=None, help="ranks (default: 2 on CPU, every GPU on CUDA)"
    )
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads per rank")
    parser.add_argument(
        "--tokens", type=int, nargs="*", default=[64, 256, 1024, 4096], help="tokens per rank"
    )
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--inter", type=int, default=512, help="expert intermediate size I")
    parser.add_argument("--experts", type=int, default=8)
    parser.add_argument("--top-k", type=int, default=2)
    parser.add_argument("--degrees", type=int, nargs="*", default=[1, 2, 4], help="pipelining degrees to try")
    parser.add_argument("--repeats", type=int, default=9, help="timed steps per variant (median reported)")
    args = parser.parse_args()
    world = args.world or (torch.cuda.device_count() if args.device == "cuda" else 2)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    mp.spawn(worker, args=(world, port, args), nprocs=world, join=True)


if __name__ == "__main__":
    main()
