#!/usr/bin/env bash
# MoE expert-layer benchmark in bf16 on one CUDA GPU: transformers eager and grouped_mm against
# mathrl.moe, forward+backward and no-grad forward, plus a bf16 output check before timing.
#
#   bash benchmarks/moe_layer_gpu.sh            # from the repository root, takes about 2-4 minutes
#
# Needs torch with CUDA, transformers 5.25 and a GPU with compute capability >= 8.0 (grouped_mm in
# bf16). Prints Markdown table rows for benchmarks/RESULTS.md.
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="${PYTHONPATH:+$PYTHONPATH:}$(pwd)"

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
python - <<'PY'
# bf16 check: the runtime's output matches transformers' grouped_mm within bf16 rounding.
import copy, torch, sys
sys.path.insert(0, "benchmarks")
from moe_layer import build
import mathrl.moe as moe

model = build(256, 512, 8, 2, "cuda", torch.bfloat16)
enabled = moe.enable(copy.deepcopy(model))
model.config._experts_implementation = "grouped_mm"
x = torch.randn(2, 512, 256, device="cuda", dtype=torch.bfloat16)
with torch.no_grad():
    expected = model.model.layers[0].mlp(x).float()
    actual = enabled.model.layers[0].mlp(x).float()
error = ((actual - expected).norm() / expected.norm()).item()
print(f"bf16 relative error vs transformers grouped_mm: {error:.2e}")
assert error < 2e-2, error
PY
python benchmarks/moe_layer.py --device cuda --dtype bfloat16 --repeats 20
