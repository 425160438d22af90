"""Switching a loaded model to mathrl's MoE runtime according to the recipe's ``moe`` section."""

from __future__ import annotations

import logging

from mathrl.moe.config import MoEConfig

__all__ = ["enable_moe_runtime", "is_moe_runtime_enabled"]

logger = logging.getLogger(__name__)


def _base(model):
    # A peft model wraps the transformers model; the runtime lives on the latter.
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def enable_moe_runtime(model, config: MoEConfig):
    """Run ``model``'s expert layers through mathrl's runtime when the recipe asks for it; returns ``model``.

    A model without MoE layers is left as it is, with an info line, so one recipe serves dense models too.
    The experts stay whole on every process: train.py shards them for expert parallelism only right
    before the RL trainer is built, because main-process-only saves and evaluations need whole experts.
    """
    import dataclasses

    import mathrl.moe
    from mathrl.moe.config import ExpertParallelConfig

    if not config.enable:
        return model
    config = dataclasses.replace(config, expert_parallel=ExpertParallelConfig())
    try:
        mathrl.moe.enable(_base(model), config)
    except ValueError as error:
        if "has no MoE expert layers" not in str(error):
            raise
        logger.info("%s; it runs without mathrl's MoE runtime", error)
    return model


def is_moe_runtime_enabled(model) -> bool:
    import mathrl.moe

    return mathrl.moe.is_enabled(_base(model))
