#!/usr/bin/env bash
# Expert-parallel sweep on one machine with several CUDA GPUs: one rank per GPU over NCCL, fixed
# (r, d) choices against the adaptive chooser, forward+backward of one Qwen3-MoE expert layer.
#
#   bash benchmarks/expert_parallel_gpu.sh          # from the repository root
#
# Needs torch with CUDA and NCCL, transformers 5.25 and at least 2 GPUs. Runs two sweeps in fp32:
# 64 experts over every GPU (r in {0, 1}), and with 8 GPUs or more 4 experts split along I over 8
# ranks (r in {0, 1, 2}). Prints Markdown table rows for benchmarks/RESULTS.md.
# NOTE: never run yet; the NCCL path (async all-to-all on NCCL's stream) has only been read, not tested.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="${PYTHONPATH:+$PYTHONPATH:}$(pwd)"

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
GPUS=$(python -c "import torch; print(torch.cuda.device_count())")
if [ "$GPUS" -lt 2 ]; then
    echo "expert parallelism needs at least 2 GPUs, found $GPUS" >&2
    exit 1
fi
python benchmarks/expert_parallel.py --device cuda --threads 4 --tokens 1024 4096 16384 \
    --hidden 1024 --inter 768 --experts 64 --top-k 8 --repeats 20
if [ "$GPUS" -ge 8 ]; then
    python benchmarks/expert_parallel.py --device cuda --threads 4 --world 8 --tokens 1024 4096 16384 \
        --hidden 1024 --inter 2048 --experts 4 --top-k 2 --repeats 20
fi
