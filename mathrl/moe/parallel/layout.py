"""The fixed layout of expert weights over an expert-parallel group of W ranks, and its parallel degrees.

With W <= E, rank w stores the E/W whole experts ``[w*E/W, (w+1)*E/W)``. With W > E, each expert is
split over s = W/E ranks along its intermediate dimension I: rank w stores slice ``w % s`` (I/s
columns of the up projection, I/s rows of the down projection) of expert ``w // s``.

A forward with parallel degree r reads this one layout in different ways, so switching r never
moves a parameter:

- r = 0 (data parallel): every rank all-gathers every expert and computes its own tokens.
- r = 1 (expert parallel): tokens travel to a rank holding their whole expert. With W > E the s
  ranks of an expert first all-gather its slices, and each serves the tokens of 1/s of the ranks.
- 1 < r <= s, r dividing s (W > E): the s ranks of an expert form r groups of s/r ranks, each
  all-gathering a slice of I/r; every token visits one rank of each group and the r partial
  outputs are summed.

Fused gate-and-up projections are split so that each slice keeps matching gate and up columns:
halves (``act(gate) * up`` of the two halves, transformers' default) or interleaved pairs (GPT-OSS).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["ExpertLayout", "gate_layout", "up_name", "input_major", "stored"]


def gate_layout(experts: torch.nn.Module) -> str | None:
    """Return how the fused up projection orders its gate and up columns: 'halves', 'interleaved' or 'none'.

    None means an unknown custom gate, which cannot be split along I.
    """
    if not getattr(experts, "has_gate", True):
        return "none"
    from transformers.integrations.moe import _default_apply_gate

    apply_gate = getattr(type(experts), "_apply_gate", None)
    if apply_gate is _default_apply_gate:
        return "halves"
    if type(experts).__name__.startswith("GptOss"):
        return "interleaved"  # gate_up[..., ::2], gate_up[..., 1::2]
    return None


def up_name(experts: torch.nn.Module) -> str:
    return "gate_up_proj" if getattr(experts, "has_gate", True) else "up_proj"


def input_major(experts: torch.nn.Module, weight: torch.Tensor) -> torch.Tensor:
    """View a stored (E, out, in) weight as (E, in, out); weights stored input-major pass through."""
    return weight if getattr(experts, "is_transposed", False) else weight.transpose(1, 2)


def stored(experts: torch.nn.Module, weight: torch.Tensor) -> torch.Tensor:
    """Inverse of `input_major`: return the (E, in, out) tensor in the module's storage orientation."""
    return weight if getattr(experts, "is_transposed", False) else weight.transpose(1, 2)


@dataclass(frozen=True)
class ExpertLayout:
    """Assignment of whole experts, or of expert slices, to each of the W ranks."""

    world: int  # W
    rank: int
    num_experts: int  # E
    intermediate: int  # I
    gate: str | None  # see gate_layout

    def __post_init__(self):
        W, E = self.world, self.num_experts
        if W <= E and E % W:
            raise ValueError(
                f"{E} experts cannot be spread evenly over moe.expert_parallel.size={W} ranks; "
                "use a size that divides the number of experts, or a multiple of it"
            )
        if W > E:
            if W % E:
                raise ValueError(
                    f"moe.expert_parallel.size={W} is larger than the {E} experts but not a multiple "
                    "of it; use a divisor or a multiple of the number of experts"
                )
            if self.intermediate % self.splits:
                raise ValueError(
                    f"expert intermediate size {self.intermediate} cannot be split over {self.splits} ranks "
                    f"(moe.expert_parallel.size={W}, {E} experts); use a smaller size"
                )
            if self.gate is None:
                raise NotImplementedError(
                    f"moe.expert_parallel.size={W} > {E} experts splits each expert along its intermediate "
                    "dimension, which this experts class's custom gate does not support; use size <= experts"
                )

    @property
    def splits(self) -> int:
        """s: ranks that each expert is split over (1 when W <= E)."""
        return max(1, self.world // self.num_experts)

    @property
    def local_experts(self) -> int:
        return max(1, self.num_experts // self.world)

    @property
    def first_expert(self) -> int:
        return self.rank * self.local_experts if self.splits == 1 else self.rank // self.splits

    @property
    def slice_index(self) -> int:
        return self.rank % self.splits

    @property
    def slice_size(self) -> int:
        return self.intermediate // self.splits

    def degrees(self) -> list[int]:
        """Return the valid parallel degrees r: 0, 1 and every divisor of s above 1."""
        return [0] + [r for r in range(1, self.splits + 1) if self.splits % r == 0]

    def check_degree(self, r: int) -> None:
        if r not in self.degrees():
            raise ValueError(
                f"moe.expert_parallel.r={r} is not valid for {self.world} ranks and "
                f"{self.num_experts} experts; valid: {', '.join(map(str, self.degrees()))} or auto"
            )

    # -- the shard of this rank -------------------------------------------------------------------

    def up_columns(self, slice_index: int, device=None) -> torch.Tensor:
        """Columns of the (E, H, 2I) up projection stored in fine slice `slice_index`, in shard order."""
        size = self.slice_size
        start = slice_index * size
        if self.gate == "halves":
            columns = list(range(start, start + size)) + list(
                range(self.intermediate + start, self.intermediate + start + size)
            )
        elif self.gate == "interleaved":
            columns = list(range(2 * start, 2 * (start + size)))
        else:
            columns = list(range(start, start + size))
        return torch.tensor(columns, dtype=torch.int64, device=device)

    def shard_up(self, full: torch.Tensor) -> torch.Tensor:
        """Cut this rank's shard from an input-major (E, H, 2I) up projection or its (E, 2I) bias."""
        experts = full[self.first_expert : self.first_expert + self.local_experts]
        if self.splits == 1:
            return experts
        return experts.index_select(-1, self.up_columns(self.slice_index, full.device))

    def shard_down(self, full: torch.Tensor) -> torch.Tensor:
        """Cut this rank's shard from an input-major (E, I, H) down projection."""
        experts = full[self.first_expert : self.first_expert + self.local_experts]
        if self.splits == 1:
            return experts
        start = self.slice_index * self.slice_size
        return experts[:, start : start + self.slice_size]

    def shard_expert_rows(self, full: torch.Tensor) -> torch.Tensor:
        """Cut this rank's experts from a per-expert (E, ...) tensor such as the down-projection bias."""
        return full[self.first_expert : self.first_expert + self.local_experts]

    # -- assembling gathered shards ---------------------------------------------------------------

    def assemble_up(self, stacked: torch.Tensor) -> torch.Tensor:
        """Join n consecutive fine slices of each expert. Shapes: (E', n, H, c) -> (E', H, n*c)."""
        experts, n, hidden, columns = stacked.shape
        if n == 1:
            return stacked[:, 0]
        if self.gate == "halves":
            half = columns // 2
            gate = stacked[..., :half].permute(0, 2, 1, 3).reshape(experts, hidden, n * half)
            up = stacked[..., half:].permute(0, 2, 1, 3).reshape(experts, hidden, n * half)
            return torch.cat([gate, up], dim=-1)
        return stacked.permute(0, 2, 1, 3).reshape(experts, hidden, n * columns)

    @staticmethod
    def assemble_down(stacked: torch.Tensor) -> torch.Tensor:
        """Join n consecutive fine slices of each expert. Shapes: (E', n, c, H) -> (E', n*c, H)."""
        experts, n, rows, hidden = stacked.shape
        return stacked.reshape(experts, n * rows, hidden)
