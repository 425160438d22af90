"""Atomic checkpoints for transformers Trainers, and atomic saving of a final model.

transformers writes ``checkpoint-N`` in place, so a run killed mid-save leaves a folder that looks
complete to ``get_last_checkpoint``. Here every checkpoint is written into a staging folder and
renamed into place only when all processes have finished writing it.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR, get_last_checkpoint, rotate_checkpoints

__all__ = ["AtomicCheckpointMixin", "save_model_atomic", "last_checkpoint"]

logger = logging.getLogger(__name__)

STAGING_DIR = ".staging"


class AtomicCheckpointMixin:
    """Mixin for ``transformers.Trainer`` subclasses: write each checkpoint to staging, then rename."""

    _staging: str | None = None

    def _load_from_checkpoint(self, resume_from_checkpoint, model=None):
        # transformers 5.25 saves fused MoE expert weights in a per-expert layout, and Trainer's own
        # resume loads the file with load_state_dict, which skips them (missing and unexpected keys)
        # and leaves the experts at their initial values. from_pretrained converts the layout.
        target = self.accelerator.unwrap_model(model if model is not None else self.model)
        if hasattr(target, "peft_config") or not (Path(resume_from_checkpoint) / "config.json").is_file():
            return super()._load_from_checkpoint(resume_from_checkpoint, model)
        loaded = type(target).from_pretrained(resume_from_checkpoint, dtype=next(target.parameters()).dtype)
        missing, unexpected = target.load_state_dict(loaded.state_dict(), strict=False)
        if unexpected or any(key not in getattr(target, "_tied_weights_keys", {}) for key in missing):
            raise RuntimeError(f"checkpoint {resume_from_checkpoint} does not match the model: missing {missing}, "
                               f"unexpected {unexpected}")
        logger.info("loaded model weights from %s", resume_from_checkpoint)

    def _save_extra_state(self, checkpoint_dir: str) -> None:
        """Write additional files into a checkpoint before it is renamed into place (main process)."""

    def _get_output_dir(self, trial):
        if self._staging is not None:
            return self._staging
        return super()._get_output_dir(trial)

    def _save_checkpoint(self, model, trial):
        run_dir = super()._get_output_dir(trial)
        staging = os.path.join(run_dir, STAGING_DIR)
        name = f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}"
        if self.args.should_save:
            shutil.rmtree(os.path.join(staging, name), ignore_errors=True)
        self.accelerator.wait_for_everyone()
        self._staging = staging
        try:
            super()._save_checkpoint(model, trial)
            if self.args.should_save:
                self._save_extra_state(os.path.join(staging, name))
        finally:
            self._staging = None
        self.accelerator.wait_for_everyone()
        if self.args.should_save:
            final = os.path.join(run_dir, name)
            if os.path.exists(final):
                shutil.rmtree(final)
            os.replace(os.path.join(staging, name), final)
            if self.state.best_model_checkpoint and self.state.best_model_checkpoint.startswith(staging):
                self.state.best_model_checkpoint = final
            rotate_checkpoints(run_dir, self.args.save_total_limit, self.state.best_model_checkpoint, use_mtime=False)
            logger.info("saved checkpoint %s", final)
        self.accelerator.wait_for_everyone()


def save_model_atomic(model, tokenizer, path: str | Path) -> Path:
    """Save a model (or peft adapter) and its tokenizer in transformers format, replacing ``path`` atomically."""
    path = Path(path)
    staging = path.with_name(f".{path.name}.partial")
    shutil.rmtree(staging, ignore_errors=True)
    model.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    if path.exists():
        old = path.with_name(f".{path.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(path, old)
        os.replace(staging, path)
        shutil.rmtree(old)
    else:
        os.replace(staging, path)
    return path


def last_checkpoint(run_dir: str | Path) -> str | None:
    """Return the newest complete checkpoint folder in ``run_dir`` (staging folders are ignored)."""
    if not Path(run_dir).is_dir():
        return None
    return get_last_checkpoint(str(run_dir))
