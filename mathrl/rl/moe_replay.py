"""GRPO's use of the MoE runtime: routing replay, the runtime's aux loss, and telemetry.

Replay modes (``moe.replay``):

- ``rollout``: the experts each token was routed to while the completions were generated are
  recorded and reused in every policy-update forward, so the update scores the same routing
  that produced the samples.
- ``old_policy``: the routing of a no-grad forward with the pre-update weights (the old policy)
  is recorded once per generation batch and reused in the update forwards.

The recorded routing travels inside TRL's batch dictionary as two tensors that follow the batch
through shuffling and splitting: ``routing_prompt`` (B*G, Tp, L, K), left-padded like
``prompt_ids``, and ``routing_completion`` (B*G, Tc, L, K), right-padded like ``completion_ids``.
L is the number of MoE layers; -1 marks positions that were never routed.
"""

from __future__ import annotations

import contextlib
import logging

import torch

import mathrl.moe
from mathrl.moe.config import ReplayMode

__all__ = ["MoEReplayMixin", "ROUTING_KEYS"]

logger = logging.getLogger(__name__)

ROUTING_KEYS = ("routing_prompt", "routing_completion")


class MoEReplayMixin:
    """Mixin for MathGRPOTrainer; call ``_setup_moe(replay, enabled)`` at the end of ``__init__``."""

    def _setup_moe(self, replay: ReplayMode, enabled: bool) -> None:
        self.moe_enabled = enabled
        self.replay = ReplayMode(replay)
        if self.replay is not ReplayMode.OFF and not enabled:
            raise ValueError(f"moe.replay={self.replay.value!r} needs the MoE runtime (moe.enable: true on an MoE model)")
        self._rollout_routing = None
        self._routing_layers: list[int] | None = None

    def _hf_model(self, model=None):
        return self.accelerator.unwrap_model(model if model is not None else self.model)

    # -- recording ---------------------------------------------------------------------------------

    def _generate_single_turn(self, *args, **kwargs):
        if self.replay is not ReplayMode.ROLLOUT or not self.model.training:
            return super()._generate_single_turn(*args, **kwargs)
        with mathrl.moe.record_routing(self._hf_model()) as recorder:
            result = super()._generate_single_turn(*args, **kwargs)
        self._rollout_routing = recorder.routing
        return result

    def _record_old_policy(self, batch: dict):
        input_ids = torch.cat([batch["prompt_ids"], batch["completion_ids"]], dim=1)
        attention_mask = torch.cat([batch["prompt_mask"], batch["completion_mask"]], dim=1)
        model = self._hf_model()
        with torch.no_grad(), mathrl.moe.record_routing(model) as recorder:
            model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False)
        return recorder.routing

    def _attach_routing(self, batch: dict) -> dict:
        """Add the recorded routing of this generation batch to ``batch`` (see the module docstring)."""
        if self.replay is ReplayMode.OFF or not self.model.training:
            return batch
        if self.replay is ReplayMode.ROLLOUT:
            routing, self._rollout_routing = self._rollout_routing, None
            if routing is None:
                raise RuntimeError("moe.replay=rollout recorded no routing during generation; vLLM generation "
                                   "does not run the transformers model, so use moe.replay=old_policy with it")
        else:
            routing = self._record_old_policy(batch)

        prompt_len = batch["prompt_ids"].shape[1]
        total = prompt_len + batch["completion_ids"].shape[1]
        if routing.shape[0] != batch["prompt_ids"].shape[0]:
            raise RuntimeError(f"recorded routing has {routing.shape[0]} rows for a batch of "
                               f"{batch['prompt_ids'].shape[0]}; replay needs one generate call per batch")
        routing = routing.pad_to(total)
        self._routing_layers = routing.layers
        stacked = torch.stack([routing.indices[layer] for layer in routing.layers], dim=2)  # (B*G, T, L, K)
        stacked = stacked.to(batch["prompt_ids"].device)
        batch["routing_prompt"] = stacked[:, :prompt_len]
        batch["routing_completion"] = stacked[:, prompt_len:]
        return batch

    # -- replay --------------------------------------------------------------------------------------

    def _replay_context(self, model, inputs: dict):
        """Return a context that replays the routing carried by ``inputs`` (and drop it from ``inputs``)."""
        parts = [inputs.pop(key, None) for key in ROUTING_KEYS]
        if self.replay is ReplayMode.OFF or parts[0] is None:
            return contextlib.nullcontext()
        stacked = torch.cat(parts, dim=1)  # (B, T, L, K)
        routing = mathrl.moe.Routing({layer: stacked[:, :, i] for i, layer in enumerate(self._routing_layers)})
        return mathrl.moe.replay_routing(self._hf_model(model), routing)

    # -- aux loss and telemetry ----------------------------------------------------------------------

    def _moe_aux_loss(self, model):
        if not self.moe_enabled:
            return None
        return mathrl.moe.pop_aux_loss(self._hf_model(model))

    def moe_metrics(self) -> dict:
        """The runtime's telemetry since the last call (``moe/...`` keys), for the training log."""
        if not self.moe_enabled:
            return {}
        return mathrl.moe.collect_metrics(self._hf_model())
