"""Routing record and replay: reuse the experts chosen in one forward (or `generate`) in a later one.

    with mathrl.moe.record_routing(model) as recorder:
        sequences = model.generate(prompt_ids, attention_mask=prompt_mask, max_new_tokens=L)
    routing = recorder.routing.pad_to(sequences.shape[1])   # (B, P+L) positions
    with mathrl.moe.replay_routing(model, routing):
        logits = model(sequences, attention_mask=full_mask).logits

A recorded `Routing` has one (B, T, K) expert-index tensor per MoE layer, in the token layout of
the recorded forwards. For `generate` that is the prefill plus one column per decode step, which
lines up with the left-padded prompts and completions of the sequences that `generate` returns. The last
generated token is never fed back through the model, hence `pad_to`. Positions that were padding
or not recorded hold -1 and are routed fresh during replay. Replay uses the recorded experts,
while their weights still come from the current router output, so the router keeps its gradient.
"""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Iterator

import torch

__all__ = ["Routing", "RoutingRecorder", "record_routing", "replay_routing", "route_change_frac"]

NOT_ROUTED = -1


def _index_dtype(num_experts: int) -> torch.dtype:
    return torch.int16 if num_experts < 2**15 else torch.int32


@dataclass
class Routing:
    """Chosen experts per MoE layer: `indices[layer]` is (B, T, K), -1 where not routed."""

    indices: dict[int, torch.Tensor]

    def __post_init__(self):
        shapes = {tuple(t.shape[:2]) for t in self.indices.values()}
        if len(shapes) > 1:
            raise ValueError(f"all layers of a Routing must share (B, T); got {sorted(shapes)}")

    @property
    def shape(self) -> tuple[int, int]:
        """(B, T) of the routed token layout."""
        first = next(iter(self.indices.values()))
        return tuple(first.shape[:2])

    @property
    def layers(self) -> list[int]:
        return list(self.indices)

    def _map(self, fn) -> "Routing":
        return Routing({layer: fn(t) for layer, t in self.indices.items()})

    def __getitem__(self, rows) -> "Routing":
        """Select batch rows (an int, slice, index list or tensor, or a bool mask)."""
        if isinstance(rows, int):
            rows = slice(rows, rows + 1)
        return self._map(lambda t: t[rows])

    def slice(self, start: int | None = None, stop: int | None = None) -> "Routing":
        """Select token positions [start, stop) of every row."""
        return self._map(lambda t: t[:, start:stop])

    def pad_to(self, length: int) -> "Routing":
        """Extend (or cut) every row on the right to `length` positions; new positions are -1."""
        batch, current = self.shape
        if length <= current:
            return self.slice(0, length)

        def pad(t):
            extra = t.new_full((batch, length - current, t.shape[-1]), NOT_ROUTED)
            return torch.cat([t, extra], dim=1)

        return self._map(pad)

    def to(self, device) -> "Routing":
        return self._map(lambda t: t.to(device))

    @staticmethod
    def cat(parts: list["Routing"], dim: int = 0) -> "Routing":
        """Concatenate routings along batch rows (dim 0) or token positions (dim 1)."""
        layers = parts[0].layers
        for part in parts[1:]:
            if part.layers != layers:
                raise ValueError(f"cannot concatenate routings of layers {layers} and {part.layers}")
        return Routing({layer: torch.cat([p.indices[layer] for p in parts], dim=dim) for layer in layers})


@dataclass
class RoutingRecorder:
    """Collects the routing of every forward of a model while `record_routing` is active."""

    calls: list[dict[int, torch.Tensor]] = field(default_factory=list)
    """One entry per forward: layer -> (B, T, K) chosen experts, -1 on padding."""

    _forward_ids: list[int] = field(default_factory=list, repr=False)

    def add(
        self,
        forward_id: int,
        layer: int,
        indices: torch.Tensor,
        batch_shape: tuple[int, int] | None,
        real: torch.Tensor | None,
        num_experts: int,
    ) -> None:
        """Store one layer's choice in forward `forward_id`. Shapes: indices (B*T, K); real (B*T,) or None."""
        indices = indices.detach()
        if real is not None:
            indices = indices.masked_fill(~real.unsqueeze(-1), NOT_ROUTED)
        batch, length = batch_shape if batch_shape is not None else (1, indices.shape[0])
        indices = indices.to(_index_dtype(num_experts)).view(batch, length, -1)  # (B, T, K)
        if not self._forward_ids or self._forward_ids[-1] != forward_id:
            self._forward_ids.append(forward_id)
            self.calls.append({})
        self.calls[-1][layer] = indices

    @property
    def routing(self) -> Routing:
        """The recorded forwards joined along token positions (prefill, then decode steps)."""
        if not self.calls:
            raise ValueError("no routing was recorded: run a forward or generate inside record_routing")
        batches = {next(iter(call.values())).shape[0] for call in self.calls}
        if len(batches) > 1:
            raise ValueError(
                f"recorded forwards have different batch sizes {sorted(batches)}; "
                "use recorder.calls to pick them apart"
            )
        return Routing.cat([Routing(call) for call in self.calls], dim=1)


def route_change_frac(recorded: Routing, fresh: Routing) -> float:
    """Return the fraction of tokens routed in both whose expert set differs, over all layers."""
    if recorded.layers != fresh.layers or recorded.shape != fresh.shape:
        raise ValueError(
            f"routings differ in layers or shape: {recorded.layers} {recorded.shape} vs "
            f"{fresh.layers} {fresh.shape}"
        )
    changed = compared = 0
    for layer in recorded.layers:
        a = recorded.indices[layer].long().sort(dim=-1).values
        b = fresh.indices[layer].to(a.device).long().sort(dim=-1).values
        both = (a >= 0).all(-1) & (b >= 0).all(-1)
        changed += int(((a != b).any(-1) & both).sum())
        compared += int(both.sum())
    return changed / compared if compared else 0.0


def _runtime_of(model):
    from mathrl.moe.patch import runtime_of

    return runtime_of(model)


@contextmanager
def record_routing(model) -> Iterator[RoutingRecorder]:
    """Record the chosen experts of every MoE layer in each forward run inside the block."""
    runtime = _runtime_of(model)
    if runtime.recorder is not None:
        raise RuntimeError("record_routing is already active on this model; nesting is not supported")
    recorder = RoutingRecorder()
    runtime.recorder = recorder
    try:
        yield recorder
    finally:
        runtime.recorder = None


@contextmanager
def replay_routing(model, routing: Routing) -> Iterator[Routing]:
    """Use `routing` instead of fresh top-k choices in every forward run inside the block.

    Each forward must have the (B, T) token layout of `routing` (see `Routing.slice`, `pad_to`,
    and row selection); a mismatch raises ValueError. The fraction of replayed tokens whose
    fresh choice would differ is reported as ``moe/route_change_frac`` by `collect_metrics`.
    """
    runtime = _runtime_of(model)
    missing = sorted(set(runtime.layers) - set(routing.layers))
    if missing:
        raise ValueError(f"the routing has no entry for MoE layers {missing}; record it on the same model")
    previous = runtime.replay
    runtime.replay = routing
    try:
        yield routing
    finally:
        runtime.replay = previous
