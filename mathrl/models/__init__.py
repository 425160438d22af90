"""Model and tokenizer loading: presets, local folders, hub ids."""

from mathrl.models.presets import PRESETS, TOKENIZER_DIR, ModelPreset

__all__ = ["PRESETS", "TOKENIZER_DIR", "ModelPreset", "load_model", "load_tokenizer", "build_preset"]


def __getattr__(name):
    # The loaders import torch and transformers; keep `import mathrl.models` cheap.
    if name in ("load_model", "load_tokenizer", "build_preset", "is_adapter_dir"):
        from mathrl.models import loading

        return getattr(loading, name)
    raise AttributeError(name)
