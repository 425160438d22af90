"""Reward registry and loading of user reward functions by import path.

The reward contract: ``fn(completions, **columns) -> list[float | None]``. ``completions`` is a list
of strings or chat-message lists; every dataset column (``answer``, ``problem``, ...) and
``prompts`` arrive as keyword lists aligned with ``completions``. ``None`` means the row could not
be scored (never "wrong"). This matches the signature TRL's GRPOTrainer calls reward functions with.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import inspect
import sys
from pathlib import Path
from typing import Any, Callable

from mathrl.registry import Registry

__all__ = ["REWARDS", "RewardFn", "register_reward", "load_reward", "import_object"]

RewardFn = Callable[..., list]

REWARDS: Registry[Any] = Registry("reward")


def register_reward(name: str):
    """Register a reward function, or a class whose instances are reward functions, under ``name``."""
    return REWARDS.register(name)


def import_object(spec: str) -> Any:
    """Import ``package.module:attribute`` or ``path/to/file.py:attribute``."""
    module_part, _, attribute = spec.rpartition(":")
    if not module_part or not attribute:
        raise ValueError(f"invalid import path {spec!r}; expected 'package.module:name' or 'file.py:name'")
    if module_part.endswith(".py"):
        path = Path(module_part).expanduser().resolve()
        if not path.is_file():
            raise FileNotFoundError(f"file not found: {path} (from {spec!r})")
        module_name = f"mathrl_user_{path.stem}_{abs(hash(str(path)))}"
        module = sys.modules.get(module_name)
        if module is None:
            module_spec = importlib.util.spec_from_file_location(module_name, path)
            module = importlib.util.module_from_spec(module_spec)
            sys.modules[module_name] = module
            module_spec.loader.exec_module(module)
    else:
        module = importlib.import_module(module_part)
    try:
        return getattr(module, attribute)
    except AttributeError:
        raise ValueError(f"{spec!r}: module {module_part!r} has no attribute {attribute!r}") from None


def load_reward(spec: str, options: dict | None = None) -> RewardFn:
    """Return a reward function from a registry name or an import path, bound to ``options``.

    A registered class is instantiated with ``options`` as keyword arguments; a plain function gets
    them bound with ``functools.partial``. The result carries a ``__name__`` for metric keys.
    """
    # Importing the package registers the built-in rewards.
    import rewards  # noqa: F401

    options = dict(options or {})
    obj = import_object(spec) if ":" in spec else REWARDS.get(spec)
    name = spec.rsplit(":", 1)[-1] if ":" in spec else spec

    if inspect.isclass(obj):
        fn = obj(**options)
    elif options:
        fn = functools.partial(obj, **options)
    else:
        fn = obj
    if not callable(fn):
        raise TypeError(f"reward {spec!r} is not callable")
    try:
        fn.__name__ = name
    except (AttributeError, TypeError):
        pass
    return fn
