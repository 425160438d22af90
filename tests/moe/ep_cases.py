"""Expert-parallel checks run inside each process of a gloo world (started by test_expert_parallel.py).

    RANK=0 WORLD_SIZE=2 MASTER_ADDR=127.0.0.1 MASTER_PORT=29500 python tests/moe/ep_cases.py OUT_DIR CASE...

Each case runs on every rank; a rank writes ``OUT_DIR/rank<r>.json`` with "ok" or the traceback per
case. After a failed case the ranks stop, because their collectives may be out of step.
"""

from __future__ import annotations

import datetime
import json
import os
import sys
import time
import traceback
from pathlib import Path

import torch
import torch.distributed as dist

TOLERANCE = 2e-5
CAPACITIES = [
    {"capacity_mode": "dropless"},
    {"capacity_mode": "fixed", "capacity_factor": 0.6},
    {"capacity_mode": "adaptive"},
]


def _build(num_experts: int = 8, seed: int = 0):
    from conftest import build_model

    return build_model("qwen3_moe", seed=seed, num_experts=num_experts)


def _batch(seed: int):
    from conftest import padded_batch

    return padded_batch(batch=3, length=10, seed=seed)


def _loss(model, ids, mask):
    logits = model(ids, attention_mask=mask).logits
    real = mask.bool()
    return logits, (logits[real] * torch.linspace(-1, 1, logits.shape[-1])).sum()


def _average(tensor: torch.Tensor, group=None) -> torch.Tensor:
    tensor = tensor.clone()
    dist.all_reduce(tensor, group=group)
    return tensor / dist.get_world_size(group)


def _full_grads(model) -> dict[str, torch.Tensor]:
    """Gradients in the plain layout: expert shards gathered, dense gradients averaged like DDP does."""
    from mathrl.moe.parallel.sharding import expert_param_names, gather_full
    from mathrl.moe.parallel.state import sharded_experts

    runtime = model._mathrl_moe
    grads = {name: _average(p.grad) for name, p in model.named_parameters() if p.grad is not None}
    for prefix, experts in sharded_experts(model):
        for name in expert_param_names(experts):
            grads[f"{prefix}.{name}"] = gather_full(
                experts, name, getattr(experts, name).grad, runtime.parallel.groups.ep_group
            )
    return grads


def _assert_close(actual: torch.Tensor, expected: torch.Tensor, what: str, tolerance: float = TOLERANCE):
    assert actual.shape == expected.shape, f"{what}: shape {tuple(actual.shape)} != {tuple(expected.shape)}"
    difference = (actual - expected).abs().max().item() if actual.numel() else 0.0
    assert torch.allclose(actual, expected, atol=tolerance, rtol=tolerance), (
        f"{what}: max difference {difference:.3g}"
    )


def _pairs(num_experts: int, world: int) -> list[tuple[int, int]]:
    from mathrl.moe.parallel.chooser import candidates
    from mathrl.moe.parallel.layout import ExpertLayout

    layout = ExpertLayout(world=world, rank=0, num_experts=num_experts, intermediate=32, gate="halves")
    return candidates(layout.degrees())


def _check_equivalence(num_experts: int, size: int, hierarchical: bool = False, capacities=CAPACITIES):
    """Outputs and gradients of every (r, d) and capacity mode equal the single-process runtime's."""
    import mathrl.moe as moe

    rank = dist.get_rank()
    ids, mask = _batch(seed=10 + rank)
    real = mask.bool()
    for capacity in capacities:
        reference = moe.enable(_build(num_experts), dict(capacity, expert_impl="loop"))
        expected_logits, loss = _loss(reference, ids, mask)
        loss.backward()
        expected = {name: _average(p.grad) for name, p in reference.named_parameters() if p.grad is not None}
        for r, d in _pairs(num_experts, size):
            parallel = {"size": size, "r": r, "degree": d, "hierarchical": hierarchical}
            model = moe.enable(
                _build(num_experts), dict(capacity, expert_impl="loop", expert_parallel=parallel)
            )
            logits, loss = _loss(model, ids, mask)
            label = f"{capacity['capacity_mode']} r={r} d={d}"
            _assert_close(logits[real], expected_logits[real].detach(), f"{label} logits")
            loss.backward()
            grads = _full_grads(model)
            assert sorted(grads) == sorted(expected), f"{label}: gradient names differ"
            for name, grad in expected.items():
                _assert_close(grads[name], grad, f"{label} grad {name}")


def case_equivalence_whole_experts():
    _check_equivalence(num_experts=8, size=dist.get_world_size())


def case_equivalence_split_experts():
    # W = 4 > E = 2: each expert is split over 2 ranks along I, so r = 2 is valid too.
    assert _pairs(2, dist.get_world_size())[-1][0] == 2
    _check_equivalence(num_experts=2, size=dist.get_world_size())


def case_equivalence_hierarchical():
    # The launcher puts all ranks on one node; treat them as 2 nodes of 2 ranks.
    os.environ["LOCAL_WORLD_SIZE"] = "2"
    try:
        _check_equivalence(
            num_experts=8, size=dist.get_world_size(), hierarchical=True, capacities=CAPACITIES[:1]
        )
    finally:
        os.environ["LOCAL_WORLD_SIZE"] = str(dist.get_world_size())


def case_chooser_auto_same_function():
    """With r and degree 'auto' the chooser probes every pair in turn; each forward still matches."""
    import mathrl.moe as moe

    rank = dist.get_rank()
    reference = moe.enable(_build(), {"expert_impl": "loop"})
    model = moe.enable(_build(), {"expert_parallel": {"size": dist.get_world_size()}})
    runtime = model._mathrl_moe
    pairs = _pairs(8, dist.get_world_size())
    with torch.no_grad():
        for step in range(len(pairs) * 4 + 2):
            ids, mask = _batch(seed=100 + rank)  # the same bucket every step
            expected = reference(ids, attention_mask=mask).logits
            actual = model(ids, attention_mask=mask).logits
            _assert_close(actual[mask.bool()], expected[mask.bool()], f"auto forward {step}")
    chooser = next(iter(runtime.parallel.choosers.values()))
    decided = [entry for entry in chooser.history]
    assert len(decided) == 2, f"expected one decision per layer, got {decided}"
    choices = torch.tensor([list(entry["choice"]) for entry in decided])
    gathered = [torch.zeros_like(choices) for _ in range(dist.get_world_size())]
    dist.all_gather(gathered, choices)
    assert all(torch.equal(g, choices) for g in gathered), "ranks chose different (r, d)"


def case_train_steps_ddp():
    """Three DDP steps: parameters equal those of a DDP-trained full model; experts stay distinct."""
    import mathrl.moe as moe
    from mathrl.moe.parallel import full_state_dict

    world, rank = dist.get_world_size(), dist.get_rank()
    size = 2
    reference = moe.enable(_build(), {"expert_impl": "loop"}).train()
    model = moe.enable(_build(), {"expert_parallel": {"size": size}}).train()
    ddp_reference = torch.nn.parallel.DistributedDataParallel(reference)
    ddp_model = torch.nn.parallel.DistributedDataParallel(model)
    optimizers = [torch.optim.SGD(m.parameters(), lr=0.05) for m in (reference, model)]
    for step in range(3):
        ids, mask = _batch(seed=1000 * step + rank)
        for wrapped, optimizer in zip((ddp_reference, ddp_model), optimizers):
            optimizer.zero_grad()
            _, loss = _loss(wrapped, ids, mask)
            (loss / mask.sum()).backward()
            optimizer.step()
    trained = full_state_dict(model)
    for name, param in reference.state_dict().items():
        _assert_close(trained[name], param, f"after 3 steps {name}", tolerance=1e-4)
    experts = trained["model.layers.0.mlp.experts.gate_up_proj"]  # (E, 2I, H)
    half = experts.shape[0] // 2
    assert not torch.allclose(experts[:half], experts[half:]), (
        "the two halves of the experts became identical"
    )
    start = _build().state_dict()["model.layers.0.mlp.experts.gate_up_proj"]
    assert not torch.allclose(experts, start), "the experts did not train"
    if world > size:  # copies of a shard in different EP groups must stay equal
        shard = model.model.layers[0].mlp.experts.gate_up_proj.detach()
        copies = model._mathrl_moe.parallel.groups.dp_group
        _assert_close(_average(shard, copies), shard, "expert shard copies across EP groups", tolerance=0)


def case_split_mismatch_raises():
    from mathrl.moe.parallel.all_to_all import SplitMismatchError, all_to_all

    world, rank = dist.get_world_size(), dist.get_rank()
    x = torch.arange(2.0 * world).unsqueeze(1)  # (2W, 1)
    out = all_to_all(x, [2] * world, [2] * world)
    assert out.shape == (2 * world, 1)
    # Rank 0 sends 1 and 3 rows where the receivers expect 2 and 2: both ranks see the mismatch.
    wrong_input = [2] * world
    if rank == 0:
        wrong_input[0], wrong_input[1] = 1, 3
    # Rank 1 alone expects 3 rows from rank 0, so only rank 1 detects it; every rank must still raise.
    wrong_output = [3, 1] + [2] * (world - 2) if rank == 1 else [2] * world
    for output_splits, input_splits in (([2] * world, wrong_input), (wrong_output, [2] * world)):
        try:
            all_to_all(x, output_splits, input_splits)
        except SplitMismatchError as error:
            assert "split sizes disagree" in str(error)
        else:
            raise AssertionError(f"rank {rank}: mismatched splits did not raise")
    rows = 2 * world + 1  # not divisible by the world size
    try:
        all_to_all(torch.zeros(rows if rank == 0 else 2 * world, 1))
    except SplitMismatchError as error:
        assert "split sizes disagree" in str(error)
    else:
        raise AssertionError("a size not divisible by the world size did not raise")


def case_hierarchical_equals_flat():
    """4 ranks as 2 nodes x 2: the two-level exchange returns the flat one's rows and gradients."""
    from mathrl.moe.parallel.all_to_all import all_to_all, hierarchical_all_to_all
    from mathrl.moe.parallel.groups import setup_groups

    world, rank = dist.get_world_size(), dist.get_rank()
    groups = setup_groups(world, hierarchical=True, local_size=2)
    assert groups.num_nodes == 2
    counts = torch.randint(0, 4, (world, world), generator=torch.Generator().manual_seed(7)).tolist()
    rows = sum(counts[rank])
    x = (rank * 100 + torch.arange(rows, dtype=torch.float32)).unsqueeze(1).repeat(1, 3).requires_grad_(True)
    received = [counts[source][rank] for source in range(world)]
    flat = all_to_all(x, received, counts[rank], groups.ep_group)
    two_level = hierarchical_all_to_all(x, counts, rank, 2, groups.intra_group, groups.inter_group)
    _assert_close(two_level, flat, "hierarchical rows", tolerance=0)
    weight = torch.randn(flat.shape, generator=torch.Generator().manual_seed(rank))
    (flat_grad,) = torch.autograd.grad((flat * weight).sum(), x)
    (two_level_grad,) = torch.autograd.grad((two_level * weight).sum(), x)
    _assert_close(two_level_grad, flat_grad, "hierarchical gradient", tolerance=0)


def case_save_load_other_world_size(out_dir: Path):
    """Save with EP over all ranks, load into EP groups of 2 ranks; both equal the plain checkpoint."""
    import transformers

    import mathrl.moe as moe
    from mathrl.moe.parallel import full_state_dict, save_pretrained

    world = dist.get_world_size()
    model = moe.enable(_build(seed=3), {"expert_parallel": {"size": world}})
    folder = out_dir / "saved"
    save_pretrained(model, folder)
    dist.barrier()
    plain = transformers.Qwen3MoeForCausalLM.from_pretrained(folder).state_dict()
    original = _build(seed=3).state_dict()
    for name, tensor in original.items():
        _assert_close(plain[name], tensor, f"saved {name}", tolerance=0)

    # Load in a different world size: from_pretrained then enable shards (scatter) ...
    loaded = transformers.Qwen3MoeForCausalLM.from_pretrained(folder)
    loaded = moe.enable(loaded, {"expert_parallel": {"size": 2}})
    shard = loaded.model.layers[1].mlp.experts.down_proj
    assert shard.shape[0] == 8 // 2, f"shard of {tuple(shard.shape)} is not 4 experts"
    for name, tensor in full_state_dict(loaded).items():
        _assert_close(tensor, original[name], f"reloaded {name}", tolerance=0)

    # ... and load_state_dict of full tensors into an already sharded model cuts them to shards.
    other = moe.enable(_build(seed=4), {"expert_parallel": {"size": 2}})
    other.load_state_dict(plain)
    for name, tensor in full_state_dict(other).items():
        _assert_close(tensor, original[name], f"load_state_dict {name}", tolerance=0)


def case_checkpoint_callback(out_dir: Path):
    """The Trainer callback writes full experts and restores each rank's own expert optimizer state."""
    from types import SimpleNamespace

    import transformers

    import mathrl.moe as moe
    from mathrl.moe.parallel import ExpertParallelCheckpoint, full_state_dict

    rank = dist.get_rank()
    model = moe.enable(_build(), {"expert_impl": "loop", "expert_parallel": {"size": dist.get_world_size()}})
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    ids, mask = _batch(seed=rank)
    _loss(model, ids, mask)[1].backward()
    optimizer.step()

    folder = out_dir / "trainer" / "checkpoint-1"
    if rank == 0:
        folder.mkdir(parents=True)
        model.save_pretrained(folder)  # what the Trainer writes: rank 0's shards only
    dist.barrier()
    args = SimpleNamespace(output_dir=str(out_dir / "trainer"))
    state = SimpleNamespace(global_step=1, is_world_process_zero=rank == 0)
    callback = ExpertParallelCheckpoint()
    callback.on_save(args, state, None, model=model, optimizer=optimizer)
    dist.barrier()

    saved = transformers.Qwen3MoeForCausalLM.from_pretrained(folder).state_dict()
    for name, tensor in full_state_dict(model).items():
        if ".experts." in name:  # without DDP the dense weights differ between ranks
            _assert_close(saved[name], tensor, f"checkpoint {name}", tolerance=0)

    experts = model.model.layers[0].mlp.experts
    expected = optimizer.state[experts.down_proj]["exp_avg"].clone()
    optimizer.state[experts.down_proj]["exp_avg"].zero_()  # as if rank 0's state had been loaded
    callback.on_train_begin(args, state, None, model=model, optimizer=optimizer)
    _assert_close(optimizer.state[experts.down_proj]["exp_avg"], expected, "restored exp_avg", tolerance=0)


def main() -> int:
    out_dir = Path(sys.argv[1])
    cases = sys.argv[2:]
    torch.set_num_threads(1)
    torch.manual_seed(0)
    dist.init_process_group("gloo", timeout=datetime.timedelta(seconds=60))
    rank = dist.get_rank()
    results = {}
    for name in cases:
        started = time.perf_counter()
        try:
            function = globals()[f"case_{name}"]
            function(out_dir) if "out_dir" in function.__code__.co_varnames else function()
            results[name] = "ok"
        except Exception:  # noqa: BLE001 - reported to the test through the results file
            results[name] = traceback.format_exc()
        print(f"case {name}: {time.perf_counter() - started:.1f} s", flush=True)  # noqa: T201 - worker log
        (out_dir / f"rank{rank}.json").write_text(json.dumps(results, indent=1))
        if results[name] != "ok":
            break
    dist.destroy_process_group()
    return 0 if all(v == "ok" for v in results.values()) else 1


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).parent))
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    sys.exit(main())
