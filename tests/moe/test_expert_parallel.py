"""Expert parallelism over real gloo processes on 127.0.0.1, against the single-process runtime.

Each world size starts its processes once (tests/moe/ep_cases.py runs the cases in every process)
and every test below reads one case's result from all ranks.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from mathrl.moe.parallel.chooser import candidates
from mathrl.moe.parallel.layout import ExpertLayout

REPO = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).with_name("ep_cases.py")
TIMEOUT_S = 240

TWO_RANKS = [
    "split_mismatch_raises",
    "equivalence_whole_experts",
    "chooser_auto_same_function",
    "train_steps_ddp",
]
FOUR_RANKS = [
    "hierarchical_equals_flat",
    "split_mismatch_raises",
    "equivalence_split_experts",
    "equivalence_hierarchical",
    "train_steps_ddp",
    "save_load_other_world_size",
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def launch(world: int, cases: list[str], out_dir: Path) -> list[dict]:
    """Run `cases` in `world` gloo processes; return each rank's results (case -> 'ok' or a traceback)."""
    port = _free_port()
    processes = []
    for rank in range(world):
        env = dict(
            os.environ,
            RANK=str(rank),
            LOCAL_RANK=str(rank),
            WORLD_SIZE=str(world),
            LOCAL_WORLD_SIZE=str(world),
            MASTER_ADDR="127.0.0.1",
            MASTER_PORT=str(port),
            OMP_NUM_THREADS="1",
            PYTHONPATH=str(REPO),
            HF_HUB_OFFLINE="1",
        )
        log = open(out_dir / f"log{rank}.txt", "w")
        processes.append(
            (
                subprocess.Popen(
                    [sys.executable, str(WORKER), str(out_dir), *cases],
                    env=env,
                    cwd=REPO,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                ),
                log,
            )
        )
    try:
        for process, _ in processes:
            process.wait(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        pass
    finally:
        for process, log in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
            log.close()
    results = []
    for rank in range(world):
        path = out_dir / f"rank{rank}.json"
        logs = (out_dir / f"log{rank}.txt").read_text()[-3000:]
        results.append(json.loads(path.read_text()) if path.exists() else {"_log": logs})
        results[-1]["_log"] = logs
    return results


def _assert_case(results: list[dict], case: str) -> None:
    for rank, result in enumerate(results):
        outcome = result.get(case)
        assert outcome is not None, (
            f"rank {rank} did not run {case!r} (an earlier case failed or timed out):\n{result['_log']}"
        )
        assert outcome == "ok", f"rank {rank}, {case}:\n{outcome}"


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory):
    return launch(2, TWO_RANKS, tmp_path_factory.mktemp("ep2"))


@pytest.fixture(scope="module")
def four_ranks(tmp_path_factory):
    return launch(4, FOUR_RANKS, tmp_path_factory.mktemp("ep4"))


@pytest.mark.distributed
@pytest.mark.parametrize("case", TWO_RANKS)
def test_two_ranks(two_ranks, case):
    _assert_case(two_ranks, case)


@pytest.mark.distributed
@pytest.mark.parametrize("case", FOUR_RANKS)
def test_four_ranks(four_ranks, case):
    _assert_case(four_ranks, case)


def test_layout_degrees_and_shards():
    whole = ExpertLayout(world=2, rank=1, num_experts=8, intermediate=32, gate="halves")
    assert whole.degrees() == [0, 1]
    assert (whole.first_expert, whole.local_experts) == (4, 4)
    split = ExpertLayout(world=8, rank=5, num_experts=2, intermediate=32, gate="halves")
    assert split.degrees() == [0, 1, 2, 4]
    assert (split.first_expert, split.slice_index, split.slice_size) == (1, 1, 8)
    assert split.up_columns(1).tolist() == list(range(8, 16)) + list(range(40, 48))
    assert candidates(split.degrees()) == [(0, 1)] + [(r, d) for r in (1, 2, 4) for d in (1, 2, 4)]
    assert candidates(split.degrees(), r=2, d="auto") == [(2, 1), (2, 2), (2, 4)]


def test_layout_assembles_what_it_shards():
    import torch

    full = torch.randn(2, 6, 2 * 32)  # (E, H, 2I)
    down = torch.randn(2, 32, 6)  # (E, I, H)
    for gate in ("halves", "interleaved", "none"):
        width = 32 if gate == "none" else 2 * 32
        layouts = [ExpertLayout(world=8, rank=w, num_experts=2, intermediate=32, gate=gate) for w in range(8)]
        up_shards = torch.stack([layout.shard_up(full[..., :width]) for layout in layouts])  # (W, 1, H, c)
        down_shards = torch.stack([layout.shard_down(down) for layout in layouts])  # (W, 1, I/s, H)
        up = layouts[0].assemble_up(up_shards.reshape(2, 4, 6, -1))
        assert torch.equal(up, full[..., :width]), gate
        assert torch.equal(layouts[0].assemble_down(down_shards.reshape(2, 4, 8, 6)), down)


def test_layout_rejects_uneven_sizes():
    with pytest.raises(ValueError, match="cannot be spread evenly"):
        ExpertLayout(world=3, rank=0, num_experts=8, intermediate=32, gate="halves")
    with pytest.raises(ValueError, match="not a multiple"):
        ExpertLayout(world=6, rank=0, num_experts=4, intermediate=32, gate="halves")
    with pytest.raises(ValueError, match="intermediate size 30"):
        ExpertLayout(world=8, rank=0, num_experts=2, intermediate=30, gate="halves")
    with pytest.raises(ValueError, match="r=3 is not valid"):
        ExpertLayout(world=2, rank=0, num_experts=8, intermediate=32, gate="halves").check_degree(3)


def test_enable_without_process_group_runs_locally(make_model, make_batch, caplog):
    import torch

    import mathrl.moe as moe

    reference = moe.enable(make_model("qwen3_moe"), {"expert_impl": "loop"})
    model = moe.enable(make_model("qwen3_moe"), {"expert_impl": "loop", "expert_parallel": {"size": 2}})
    assert "not initialised" in caplog.text
    ids, mask = make_batch()
    with torch.no_grad():
        assert torch.equal(model(ids, attention_mask=mask).logits, reference(ids, attention_mask=mask).logits)


@pytest.mark.distributed
def test_grpo_run_with_two_expert_parallel_ranks(tmp_path):
    """`accelerate launch` of two processes trains GRPO with the micro preset's 4 experts sharded 2 + 2."""
    import torch
    import transformers

    out = tmp_path / "run"
    command = [
        "accelerate",
        "launch",
        "--config_file",
        "recipes/accelerate/ddp.yaml",
        "--main_process_port",  # a free port: other test runs on the machine may hold the default 29500
        str(_free_port()),
        "-m",
        "mathrl.train",
        "recipes/tiny-moe/grpo/smoke.yaml",
        "--output",
        str(out),
        "--set",
        "logging.progress=false",
        "--set",
        "moe.expert_parallel.size=2",
        "--set",
        "sft.enable=false",
        # A length penalty in characters differs between completions, so every step has a gradient.
        "--set",
        "rewards=[{name: soft_overlong, options: {max_length: 40, cache_length: 40, unit: chars}}]",
    ]
    env = dict(os.environ, PYTHONPATH=str(REPO), HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1")
    result = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=TIMEOUT_S)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "expert parallelism over 2 ranks" in result.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["processes"] == 2
    assert summary["grpo"]["steps"] == 2

    def experts(model):
        return {name: p for name, p in model.state_dict().items() if ".experts." in name}

    from mathrl.models import load_model, load_tokenizer

    start = experts(load_model("micro-qwen3-moe", seed=0, tokenizer=load_tokenizer("micro-qwen3-moe")))
    checkpoint = experts(
        transformers.AutoModelForCausalLM.from_pretrained(out / "checkpoints" / "checkpoint-2")
    )
    final = experts(transformers.AutoModelForCausalLM.from_pretrained(out / "final"))
    assert final["model.layers.0.mlp.experts.gate_up_proj"].shape[0] == 4  # all experts, not one rank's shard
    for name, tensor in final.items():
        assert torch.equal(checkpoint[name], tensor), f"checkpoint-2 and the final model differ in {name}"
    unchanged = [name for name in final if torch.equal(start[name], final[name])]
    assert not unchanged, f"expert tensors that did not train: {unchanged}"
    for name, tensor in final.items():  # two Adam steps of lr 1e-3 move each weight by about 2e-3 at most
        assert (tensor - start[name]).abs().max() < 0.01, f"{name} is not the trained starting model"
    layer = final["model.layers.0.mlp.experts.down_proj"]  # (E, H, I)
    assert not torch.allclose(layer[:2], layer[2:]), "the two ranks' experts became identical"


def test_config_rejects_bad_degrees():
    from mathrl.moe.config import ExpertParallelConfig

    with pytest.raises(ValueError, match="degree must be 'auto' or an integer >= 1, got 0"):
        ExpertParallelConfig(size=2, degree=0)
    with pytest.raises(ValueError, match="r must be 'auto' or an integer >= 0"):
        ExpertParallelConfig(size=2, r="fast")
    assert ExpertParallelConfig(size=2, r=0, degree=4).r == 0


def test_chooser_picks_fastest_and_reprobes():
    from mathrl.moe.parallel.chooser import ParallelChooser

    chooser = ParallelChooser([(0, 1), (1, 1), (1, 2)], group=None, trials=2, reprobe_every=3)
    key = (0, 64, True)
    seconds = {(0, 1): 3.0, (1, 1): 1.0, (1, 2): 2.0}
    tried = []
    for _ in range(6):
        pair, timing = chooser.select(key)
        assert timing
        tried.append(pair)
        chooser.record(key, pair, seconds[pair])
    assert tried == [(0, 1), (1, 1), (1, 2), (0, 1), (1, 1), (1, 2)]
    assert [chooser.select(key) for _ in range(3)] == [((1, 1), False)] * 3
    assert chooser.select(key) == ((0, 1), True)  # after reprobe_every uses it measures again
    assert chooser.history[-1]["choice"] == (1, 1)
    assert ParallelChooser([(1, 4)], group=None).select(key) == ((1, 4), False)  # a fixed choice never probes

    close = ParallelChooser([(1, 1), (1, 2)], group=None, trials=1, tolerance=0.05)
    close.record(key, close.select(key)[0], 1.04)
    close.record(key, close.select(key)[0], 1.0)
    assert close.select(key) == ((1, 1), False)  # within 5% of the fastest, the lower d wins
