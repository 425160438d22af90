"""Attach expert parallelism to a model, take it off, and save or load its sharded experts.

Three things change on a model whose experts are sharded:

- its expert parameters are listed in ``_ddp_params_and_buffers_to_ignore``. So
  DistributedDataParallel neither broadcasts rank 0's shards at start, which would make every
  rank's experts identical, nor all-reduces their gradients. The expert backward averages those
  instead (see `sharding.local_weights`).
- its ``generate`` defaults to ``synced_gpus=True``, because a rank that finished early must keep
  running forwards while the others still need its part of the experts;
- ``state_dict()`` holds only this rank's shards. `full_state_dict`, `save_pretrained` and
  `unshard` gather the plain transformers layout; `load_state_dict` with full tensors scatters.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import torch
from transformers import TrainerCallback

from mathrl.moe.parallel.sharding import expert_param_names, full_tensors, unshard_experts

__all__ = [
    "validate",
    "attach",
    "detach",
    "sharded_experts",
    "full_state_dict",
    "save_pretrained",
    "unshard",
    "ExpertParallelCheckpoint",
]

logger = logging.getLogger(__name__)

DDP_IGNORE = "_ddp_params_and_buffers_to_ignore"


def _synced_generate(self, *args, **kwargs):
    kwargs.setdefault("synced_gpus", True)
    return type(self).generate(self, *args, **kwargs)


def _runtime(model):
    from mathrl.moe.patch import _pretrained, runtime_of

    hf_model = _pretrained(model)
    return hf_model, runtime_of(hf_model)


def sharded_experts(model) -> list[tuple[str, torch.nn.Module]]:
    """(qualified name, experts module) of each sharded experts module of a model."""
    from mathrl.moe.patch import _pretrained

    return [(name, m) for name, m in _pretrained(model).named_modules() if hasattr(m, "_mathrl_layout")]


def validate(blocks, config, groups) -> None:
    """Raise before anything is patched when the experts cannot be sharded as configured."""
    from mathrl.moe.parallel.sharding import make_layout

    for variable, name in (("ACCELERATE_USE_FSDP", "FSDP"), ("ACCELERATE_USE_DEEPSPEED", "DeepSpeed")):
        if os.environ.get(variable, "false").lower() == "true":
            raise NotImplementedError(
                f"moe.expert_parallel.size={groups.size} is not supported with {name}, which would treat the "
                "expert shards as replicated weights; launch with recipes/accelerate/ddp.yaml"
            )
    for _layer, experts, _router, _gating in blocks:
        layout = make_layout(experts, groups.size, groups.rank)
        if config.expert_parallel.r != "auto":
            layout.check_degree(config.expert_parallel.r)


def attach(hf_model, runtime, blocks, config, groups) -> None:
    """Shard the experts of every MoE block and switch the runtime to the expert-parallel forward."""
    from mathrl.moe.parallel.engine import ExpertParallel

    parallel = ExpertParallel(config.expert_parallel, groups)
    for layer, experts, _router, _gating in blocks:
        parallel.add_layer(layer, experts)
    runtime.parallel = parallel

    names = [
        f"{prefix}.{param}" if prefix else param
        for prefix, experts in sharded_experts(hf_model)
        for param in expert_param_names(experts)
    ]
    setattr(hf_model, DDP_IGNORE, sorted(set(getattr(hf_model, DDP_IGNORE, [])) | set(names)))
    runtime.ddp_ignored = names
    hf_model.generate = _synced_generate.__get__(hf_model)
    logger.info(
        "expert parallelism over %d ranks (rank %d, %d copies): %d expert tensors sharded, r=%s, degree=%s",
        groups.size,
        groups.rank,
        groups.dp_size,
        len(names),
        config.expert_parallel.r,
        config.expert_parallel.degree,
    )


def detach(hf_model, runtime) -> None:
    """Gather the full experts back into the model and return to the single-process forward (collective)."""
    group = runtime.parallel.groups.ep_group
    for _name, experts in sharded_experts(hf_model):
        unshard_experts(experts, group)
    remaining = sorted(set(getattr(hf_model, DDP_IGNORE, [])) - set(runtime.ddp_ignored))
    if remaining:
        setattr(hf_model, DDP_IGNORE, remaining)
    elif hasattr(hf_model, DDP_IGNORE):
        delattr(hf_model, DDP_IGNORE)
    if "generate" in vars(hf_model):
        del hf_model.generate
    runtime.parallel = None


def unshard(model):
    """Gather the sharded experts back into full parameters on every rank; returns `model`.

    A collective: every rank of the EP group must call it. The runtime stays enabled and runs all
    experts on each process, so the model can then be evaluated or saved by one process alone.
    An optimizer built before still references the old shards.
    """
    hf_model, runtime = _runtime(model)
    if getattr(runtime, "parallel", None) is not None:
        detach(hf_model, runtime)
    return model


def full_state_dict(model) -> dict[str, torch.Tensor]:
    """Return the model's state dict with every expert tensor gathered to its full shape (collective)."""
    from mathrl.moe.patch import _pretrained

    hf_model = _pretrained(model)
    state = hf_model.state_dict()
    parallel = getattr(getattr(hf_model, "_mathrl_moe", None), "parallel", None)
    if parallel is None:
        return state
    for prefix, experts in sharded_experts(hf_model):
        for name, tensor in full_tensors(experts, parallel.groups.ep_group).items():
            state[f"{prefix}.{name}" if prefix else name] = tensor
    return state


def _remove_weight_files(path: Path) -> None:
    for file in list(path.glob("model*.safetensors")) + list(path.glob("model*.safetensors.index.json")):
        file.unlink()


def save_pretrained(model, path: str | os.PathLike, tokenizer=None, is_main: bool | None = None) -> None:
    """Save the model in plain transformers layout: every rank gathers, rank 0 (or `is_main`) writes."""
    import torch.distributed as dist

    from mathrl.moe.patch import _pretrained

    state = full_state_dict(model)
    if is_main is None:
        is_main = not dist.is_initialized() or dist.get_rank() == 0
    if is_main:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        _remove_weight_files(path)
        _pretrained(model).save_pretrained(path, state_dict=state)
        if tokenizer is not None:
            tokenizer.save_pretrained(path)


def _expert_parameters(model) -> list[tuple[str, torch.nn.Parameter]]:
    return [
        (f"{prefix}.{name}" if prefix else name, getattr(experts, name))
        for prefix, experts in sharded_experts(model)
        for name in expert_param_names(experts)
    ]


class ExpertParallelCheckpoint(TrainerCallback):
    """Complete each Trainer checkpoint with the gathered experts and every rank's expert optimizer state.

    The Trainer saves from the main process only, which holds only its shards. Right after a save
    this callback runs on every process: the ranks gather the experts and the main process
    overwrites the checkpoint's weight files; each rank writes the optimizer state of its own
    shards to ``expert_optimizer_rank<r>.pt``. When a resumed run begins, each rank puts its file's
    state back in place of the main process's shard state that the Trainer loaded.
    NOTE: the per-rank files assume that the resumed run has the same world and EP size.
    """

    def on_save(self, args, state, control, model=None, optimizer=None, **kwargs):
        if model is None or not sharded_experts(model):
            return control
        import torch.distributed as dist

        folder = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        full = full_state_dict(model)
        if state.is_world_process_zero and folder.is_dir():
            from mathrl.moe.patch import _pretrained

            _remove_weight_files(folder)
            _pretrained(model).save_pretrained(folder, state_dict=full)
            logger.info("wrote the gathered experts into %s", folder)
        if optimizer is not None and folder.is_dir():
            shards = {
                name: optimizer.state[p] for name, p in _expert_parameters(model) if p in optimizer.state
            }
            torch.save(shards, folder / f"expert_optimizer_rank{dist.get_rank()}.pt")
        return control

    def on_train_begin(self, args, state, control, model=None, optimizer=None, **kwargs):
        if model is None or optimizer is None or state.global_step == 0 or not sharded_experts(model):
            return control
        import torch.distributed as dist

        path = (
            Path(args.output_dir)
            / f"checkpoint-{state.global_step}"
            / f"expert_optimizer_rank{dist.get_rank()}.pt"
        )
        if not path.is_file():
            logger.warning(
                "%s is missing; the expert shards resume with the main process's optimizer state", path
            )
            return control
        shards = torch.load(path, map_location="cpu")
        for name, param in _expert_parameters(model):
            if name in shards:
                optimizer.state[param] = {
                    key: value.to(param.device) if isinstance(value, torch.Tensor) and value.dim() else value
                    for key, value in shards[name].items()
                }
        logger.info("restored this rank's expert optimizer state from %s", path)
        return control
