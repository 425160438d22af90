"""Time one Qwen3-MoE expert layer: transformers eager, transformers grouped_mm and mathrl.moe.

    PYTHONPATH=. python benchmarks/moe_layer.py                    # CPU, fp32, all shapes
    PYTHONPATH=. python benchmarks/moe_layer.py --device cuda --dtype bfloat16

The three variants share weights and inputs and run interleaved in one process (variant order
rotates every repeat), forward+backward and no-grad forward. Each line reports the median time,
the ratio of transformers' default (grouped_mm) to mathrl, and the achieved GFLOP/s of the
useful expert matmuls (real tokens only) next to a dense matmul ceiling measured in the same run.
The padded "rl" batch goes through the runtime's padding-aware path: its mask is handed to the
runtime exactly as the model's forward hook does.
"""

from __future__ import annotations

import argparse
import copy
import os
import platform
import statistics
import time

import torch
from transformers import Qwen3MoeConfig, Qwen3MoeForCausalLM

import mathrl.moe as moe
from mathrl.moe.patch import runtime_of

# name -> (tokens T as (B, T), H, I, E, K, padded)
SHAPES = {
    "T4096-E8": ((1, 4096), 256, 512, 8, 2, False),
    "T4096-E64": ((1, 4096), 256, 128, 64, 8, False),
    "T64-E8": ((1, 64), 256, 512, 8, 2, False),
    "T64-E64": ((1, 64), 256, 128, 64, 8, False),
    # The tiny-qwen3-moe preset's expert layer (hidden 256, 8 experts top-2, expert width 192) on
    # an RL batch of 16 sequences x 256 tokens: left-padded prompts then right-padded completions.
    "rl-tiny-padded": ((16, 256), 256, 192, 8, 2, True),
    "rl-tiny-unpadded": ((16, 256), 256, 192, 8, 2, False),
}


def rl_mask(batch: int, length: int, generator: torch.Generator) -> torch.Tensor:
    """Left-padded prompts in the first half and right-padded completions in the second: ~50% padding."""
    half = length // 2
    mask = torch.zeros(batch, length, dtype=torch.long)
    prompt = torch.randint(1, half + 1, (batch,), generator=generator)
    completion = torch.randint(1, half + 1, (batch,), generator=generator)
    for row in range(batch):
        mask[row, half - prompt[row] : half + completion[row]] = 1
    return mask


def build(hidden, inter, experts, top_k, device, dtype, seed=0):
    config = Qwen3MoeConfig(
        vocab_size=32,
        hidden_size=hidden,
        intermediate_size=inter,
        moe_intermediate_size=inter,
        num_hidden_layers=1,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=32,
        num_experts=experts,
        num_experts_per_tok=top_k,
        norm_topk_prob=True,
    )
    torch.manual_seed(seed)
    model = Qwen3MoeForCausalLM(config).to(device=device, dtype=dtype)
    with torch.no_grad():
        for name, param in model.named_parameters():
            param.normal_(0, 1.0 if name.endswith("gate.weight") else 0.05)
    return model


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    parser.add_argument("--repeats", type=int, default=7, help="timed repeats per variant (median reported)")
    parser.add_argument("--shapes", nargs="*", default=list(SHAPES), choices=list(SHAPES))
    parser.add_argument("--no-eager", action="store_true", help="leave out transformers' eager experts")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)"
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device, dtype = torch.device(args.device), getattr(torch, args.dtype)

    print(
        f"# torch {torch.__version__}, {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"{torch.get_num_threads()} threads, device {device}, {args.dtype}, "
        f"load average {os.getloadavg()[0]:.1f} at start"
    )
    print(
        "| shape | mode | eager ms | grouped_mm ms | mathrl ms | grouped_mm/mathrl | mathrl GFLOP/s "
        "| matmul ceiling GFLOP/s |"
    )
    print("|---|---|---|---|---|---|---|---|")
    generator = torch.Generator().manual_seed(0)
    for name in args.shapes:
        (batch, length), hidden, inter, experts, top_k, padded = SHAPES[name]
        reference = build(hidden, inter, experts, top_k, device, dtype)
        enabled = moe.enable(copy.deepcopy(reference))
        runtime = runtime_of(enabled)
        hf_block, mr_block = reference.model.layers[0].mlp, enabled.model.layers[0].mlp

        x = torch.randn(batch, length, hidden, generator=generator).to(device=device, dtype=dtype)
        mask = (
            rl_mask(batch, length, generator) if padded else torch.ones(batch, length, dtype=torch.long)
        ).to(device)
        grad = torch.randn(batch, length, hidden, generator=generator).to(device=device, dtype=dtype)
        real_tokens = int(mask.sum())

        def run_hf(implementation, backward):
            reference.config._experts_implementation = implementation

            def fn():
                with torch.set_grad_enabled(backward):
                    inp = x.detach().requires_grad_(backward)
                    out = hf_block(inp)
                    if backward:
                        out.backward(grad)

            return fn

        def run_mathrl(backward):
            def fn():
                with torch.set_grad_enabled(backward):
                    inp = x.detach().requires_grad_(backward)
                    # What the model's forward pre-hook does: hand the runtime the token layout and mask.
                    runtime.begin_forward(None, inp, mask)
                    try:
                        out = mr_block(inp)
                    finally:
                        runtime.end_forward()
                    if backward:
                        out.backward(grad)

            return fn

        matmul_flops = 2 * 3 * hidden * inter  # per routed slot: gate_up (2I x H) and down (H x I)
        dense_a = torch.randn(real_tokens * top_k, hidden, device=device, dtype=dtype)
        dense_b = torch.randn(hidden, 3 * inter, device=device, dtype=dtype)

        for mode, backward in (("fwd+bwd", True), ("fwd", False)):
            variants = {"grouped_mm": run_hf("grouped_mm", backward), "mathrl": run_mathrl(backward)}
            if not args.no_eager and not (experts >= 64 and batch * length >= 4096 and backward):
                variants["eager"] = run_hf("eager", backward)  # skipped where it takes seconds per call
            variants["ceiling"] = lambda: torch.mm(dense_a, dense_b)
            times = {key: [] for key in variants}
            for fn in variants.values():  # warm-up, including mathrl's one-time kernel measurement
                fn()
                fn()
            for repeat in range(args.repeats):
                keys = list(variants)
                keys = keys[repeat % len(keys) :] + keys[: repeat % len(keys)]
                for key in keys:
                    sync(device)
                    start = time.perf_counter()
                    variants[key]()
                    sync(device)
                    times[key].append(time.perf_counter() - start)
            median = {key: statistics.median(values) for key, values in times.items()}
            factor = 3 if backward else 1
            useful = real_tokens * top_k * matmul_flops * factor
            gflops = useful / median["mathrl"] / 1e9
            ceiling = real_tokens * top_k * matmul_flops / median["ceiling"] / 1e9
            eager = f"{median['eager'] * 1e3:.1f}" if "eager" in median else "-"
            grouped, ours = median["grouped_mm"], median["mathrl"]
            print(
                f"| {name} ({real_tokens} real tokens) | {mode} | {eager} | {grouped * 1e3:.1f} | "
                f"{ours * 1e3:.1f} | {grouped / ours:.2f}x | {gflops:.0f} | {ceiling:.0f} |",
                flush=True,
            )
        choices = ", ".join(
            f"{key[-2]} slots{' with backward' if key[-1] else ''}: {kernel}"
            for key, kernel in runtime.chooser.choices.items()
        )
        print(f"<!-- {name}: mathrl kernels {choices} -->", flush=True)

    # Other processes on the same cores stall each parallel kernel, so report the load next to the numbers.
    print(f"# load average {os.getloadavg()[0]:.1f} at end")


if __name__ == "__main__":
    main()
