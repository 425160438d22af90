"""PPO checkpoints: the policy in transformers format, the critic, optimizers, schedulers, RNG and data position.

A checkpoint is written into ``<checkpoints>/.staging/checkpoint-N`` and renamed to
``<checkpoints>/checkpoint-N`` only when every process has written its part, so a run killed
mid-save leaves no folder that looks complete.
"""

from __future__ import annotations

import json
import logging
import os
import random
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR, rotate_checkpoints

from mathrl.rl.checkpoint import STAGING_DIR

__all__ = ["TrainerState", "save_checkpoint", "load_checkpoint"]

logger = logging.getLogger(__name__)

STATE_FILE = "trainer_state.json"


@dataclass
class TrainerState:
    """Counters a resumed run continues from."""

    global_step: int = 0
    data_position: dict = field(default_factory=dict)
    best_dev: list | None = None  # [step, accuracy]
    dev_history: list = field(default_factory=list)


def _rng_state() -> dict:
    return {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None}


def _set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if state["cuda"] is not None and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _trainable_state(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    """Return the parameters that training changes, plus buffers, leaving out frozen base weights."""
    trainable = {name for name, p in module.named_parameters() if p.requires_grad}
    return {name: tensor.detach().contiguous().cpu() for name, tensor in module.state_dict().items()
            if name in trainable or name not in dict(module.named_parameters())}


def save_checkpoint(accelerator, checkpoints_dir: Path, state: TrainerState, policy, tokenizer,
                    critic_module: torch.nn.Module, optimizers: dict, schedulers: dict,
                    save_total_limit: int | None) -> Path:
    """Write checkpoint ``checkpoint-<global_step>`` atomically; return its final path.

    ``policy`` is the unwrapped language model (or peft model), saved with ``save_pretrained``.
    ``critic_module`` is the unwrapped module that contains the value head (and the critic's backbone).
    """
    name = f"{PREFIX_CHECKPOINT_DIR}-{state.global_step}"
    staging = checkpoints_dir / STAGING_DIR / name
    final = checkpoints_dir / name
    if accelerator.is_main_process:
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
    accelerator.wait_for_everyone()

    # Model and optimizer states are the same on every process under data parallelism; RNG is not.
    if accelerator.is_main_process:
        policy.save_pretrained(staging)
        tokenizer.save_pretrained(staging)
        save_file(_trainable_state(critic_module), str(staging / "critic.safetensors"))
        for key, optimizer in optimizers.items():
            torch.save(optimizer.state_dict(), staging / f"{key}_optimizer.pt")
        for key, scheduler in schedulers.items():
            torch.save(scheduler.state_dict(), staging / f"{key}_scheduler.pt")
        (staging / STATE_FILE).write_text(json.dumps(asdict(state), indent=2))
    torch.save(_rng_state(), staging / f"rng_state_{accelerator.process_index}.pth")
    accelerator.wait_for_everyone()

    if accelerator.is_main_process:
        if final.exists():
            shutil.rmtree(final)
        os.replace(staging, final)
        rotate_checkpoints(str(checkpoints_dir), save_total_limit, None, use_mtime=False)
        logger.info("saved checkpoint %s", final)
    accelerator.wait_for_everyone()
    return final


def _load_policy_weights(policy, checkpoint: Path) -> None:
    adapter = checkpoint / "adapter_model.safetensors"
    if adapter.is_file():
        from peft import set_peft_model_state_dict

        result = set_peft_model_state_dict(policy, load_file(str(adapter)))
        if result.unexpected_keys:
            raise ValueError(f"checkpoint {checkpoint} adapter has keys that this model lacks: "
                             f"{result.unexpected_keys[:3]}; resume with the recipe's model.lora settings")
        return
    if not (checkpoint / "config.json").is_file():
        raise FileNotFoundError(f"checkpoint {checkpoint} has neither config.json nor adapter_model.safetensors")
    # from_pretrained, not a raw state dict: transformers 5 saves fused MoE expert weights in the
    # per-expert layout of the hub checkpoints and converts them back only when loading this way.
    from transformers import AutoModelForCausalLM

    dtype = next(policy.parameters()).dtype
    loaded = AutoModelForCausalLM.from_pretrained(str(checkpoint), dtype=dtype)
    policy.load_state_dict(loaded.state_dict())


def load_checkpoint(accelerator, checkpoint: str | Path, policy, critic_module: torch.nn.Module, optimizers: dict,
                    schedulers: dict) -> TrainerState:
    """Restore everything ``save_checkpoint`` wrote into the given (unwrapped) modules; return the trainer state."""
    checkpoint = Path(checkpoint)
    _load_policy_weights(policy, checkpoint)
    missing, unexpected = critic_module.load_state_dict(load_file(str(checkpoint / "critic.safetensors")), strict=False)
    if unexpected:
        raise ValueError(f"checkpoint {checkpoint} critic has keys that this critic lacks: {unexpected[:3]}; "
                         "resume with the recipe's ppo.critic and model.lora settings")
    for key, optimizer in optimizers.items():
        optimizer.load_state_dict(torch.load(checkpoint / f"{key}_optimizer.pt", weights_only=False))
    for key, scheduler in schedulers.items():
        scheduler.load_state_dict(torch.load(checkpoint / f"{key}_scheduler.pt", weights_only=False))
    rng_file = checkpoint / f"rng_state_{accelerator.process_index}.pth"
    if rng_file.is_file():
        _set_rng_state(torch.load(rng_file, weights_only=False))
    else:
        logger.warning("checkpoint %s has no RNG state for process %d (saved with fewer processes?); "
                       "sampling continues from a fresh RNG state", checkpoint, accelerator.process_index)
    return TrainerState(**json.loads((checkpoint / STATE_FILE).read_text()))
