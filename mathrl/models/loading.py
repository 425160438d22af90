"""Load a causal LM and its tokenizer from a preset name, a local folder or a hub id."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch
import transformers
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel, PreTrainedTokenizerBase

from mathrl.models.presets import PRESETS, TOKENIZER_DIR

__all__ = ["load_model", "load_tokenizer", "build_preset", "is_adapter_dir"]

logger = logging.getLogger(__name__)

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16, "auto": "auto"}


def _resolve_dtype(dtype: str):
    try:
        return _DTYPES[dtype]
    except KeyError:
        raise ValueError(f"invalid dtype {dtype!r}; valid values: {', '.join(_DTYPES)}") from None


def is_adapter_dir(path: str | Path) -> bool:
    """True when ``path`` holds a peft adapter rather than full model weights."""
    return (Path(path) / "adapter_config.json").is_file()


def _hub_error(name: str, error: Exception) -> RuntimeError:
    return RuntimeError(
        f"could not load {name!r}: it is not a preset ({', '.join(PRESETS.names())}) or a local folder, "
        f"and loading it from the Hugging Face hub failed ({type(error).__name__}: {error}). "
        "Without network access, download the model elsewhere and pass its local folder."
    )


def load_tokenizer(name_or_path: str) -> PreTrainedTokenizerBase:
    """Return the tokenizer for a preset (the shipped one), a local folder or a hub id, padded on the left."""
    if name_or_path in PRESETS:
        source = str(TOKENIZER_DIR)
    elif is_adapter_dir(name_or_path) and not (Path(name_or_path) / "tokenizer_config.json").is_file():
        source = json.loads((Path(name_or_path) / "adapter_config.json").read_text())["base_model_name_or_path"]
        return load_tokenizer(source)
    else:
        source = name_or_path
    try:
        tokenizer = AutoTokenizer.from_pretrained(source)
    except OSError as error:
        if Path(source).exists():
            raise
        raise _hub_error(source, error) from error
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    return tokenizer


def build_preset(name: str, tokenizer: PreTrainedTokenizerBase | None = None, seed: int = 0,
                 dtype: str = "float32") -> PreTrainedModel:
    """Build a freshly initialised model from a preset; the same seed gives the same weights."""
    preset = PRESETS.get(name)
    tokenizer = tokenizer or load_tokenizer(name)
    config_class = getattr(transformers, preset.config_class)
    config = config_class(
        vocab_size=len(tokenizer),
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        **preset.config,
    )
    devices = [torch.cuda.current_device()] if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_config(config, dtype=_resolve_dtype(dtype))
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    # peft records this as an adapter's base model, so a saved adapter finds its base again.
    model.config._name_or_path = name
    model.name_or_path = name
    return model


def load_model(name_or_path: str, dtype: str = "float32", seed: int = 0,
               tokenizer: PreTrainedTokenizerBase | None = None) -> PreTrainedModel:
    """Return a causal LM from a preset name, a local folder (full model or peft adapter) or a hub id."""
    torch_dtype = _resolve_dtype(dtype)
    if name_or_path in PRESETS:
        return build_preset(name_or_path, tokenizer, seed=seed, dtype=dtype)

    path = Path(name_or_path)
    if path.exists() and not path.is_dir():
        raise ValueError(f"model path {name_or_path!r} is a file; pass the folder that holds config.json")
    if path.is_dir() and is_adapter_dir(path):
        from peft import PeftModel

        base_name = json.loads((path / "adapter_config.json").read_text())["base_model_name_or_path"]
        logger.info("loading base model %s for the adapter in %s", base_name, path)
        base = load_model(base_name, dtype=dtype, seed=seed, tokenizer=tokenizer)
        return PeftModel.from_pretrained(base, str(path)).merge_and_unload()
    if path.is_dir() and not (path / "config.json").is_file():
        raise FileNotFoundError(f"model folder {name_or_path!r} has no config.json (nor adapter_config.json)")
    try:
        return AutoModelForCausalLM.from_pretrained(name_or_path, dtype=torch_dtype)
    except OSError as error:
        if path.exists():
            raise
        raise _hub_error(name_or_path, error) from error
