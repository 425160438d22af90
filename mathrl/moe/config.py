"""Options of the MoE expert runtime: the recipe's ``moe:`` section. Imports no torch."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

__all__ = ["CapacityMode", "ReplayMode", "ExpertParallelConfig", "MoEConfig", "EXPERT_IMPLS"]

EXPERT_IMPLS = ("auto", "grouped_mm", "batched", "loop")


class CapacityMode(str, enum.Enum):
    """How many tokens each expert may take in one forward."""

    DROPLESS = "dropless"  # every routed token is computed
    FIXED = "fixed"  # capacity = ceil(capacity_factor * N * K / E); overflow is dropped and counted
    ADAPTIVE = "adaptive"  # the smallest capacity that drops nothing in this batch


class ReplayMode(str, enum.Enum):
    """Which recorded routing the policy-update forwards reuse."""

    OFF = "off"
    ROLLOUT = "rollout"  # routing recorded during generation
    OLD_POLICY = "old_policy"  # routing recorded during the old-policy log-prob pass


@dataclass
class ExpertParallelConfig:
    size: int = 1
    """Ranks in one expert-parallel group (W); 1 turns expert parallelism off."""
    r: str | int = "auto"
    """Parallel degree: 0 data parallel, 1 expert parallel, >1 experts split over r ranks; or 'auto'."""
    degree: str | int = "auto"
    """Pipelining degree: chunks the dispatched tokens are split into to overlap all-to-all and compute."""
    hierarchical: bool = False
    """Use a two-level all-to-all (inside a node first, then across nodes)."""

    def __post_init__(self):
        if not isinstance(self.size, int) or self.size < 1:
            raise ValueError(f"moe.expert_parallel.size must be an integer >= 1, got {self.size!r}")
        for key, low in (("r", 0), ("degree", 1)):
            value = getattr(self, key)
            if value != "auto" and not (isinstance(value, int) and value >= low):
                raise ValueError(
                    f"moe.expert_parallel.{key} must be 'auto' or an integer >= {low}, got {value!r}"
                )


@dataclass
class MoEConfig:
    enable: bool = True
    """Run the expert layers through mathrl's runtime instead of the transformers implementation."""
    capacity_mode: CapacityMode = CapacityMode.DROPLESS
    """dropless, fixed or adaptive (see CapacityMode)."""
    capacity_factor: float = 1.25
    """Multiplier on the even share N*K/E of routed tokens, used by capacity_mode 'fixed'."""
    router_dtype: str = "float32"
    """Precision of the router logits and softmax."""
    freeze_router: bool = False
    """Keep router weights fixed during training."""
    aux_loss_coef: float = 0.0
    """Load-balancing loss weight; 0 by default because it degrades RL on MoE models."""
    z_loss_coef: float = 0.0
    """Router z-loss weight."""
    replay: ReplayMode = ReplayMode.OFF
    """Routing replay during policy updates: off, rollout or old_policy."""
    padding_aware: bool = True
    """Skip tokens whose attention mask is 0 when dispatching."""
    expert_impl: str = "auto"
    """Expert compute kernel: auto (measured per shape), grouped_mm, batched or loop."""
    telemetry: bool = True
    """Accumulate per-layer load, router entropy, drop and route-change statistics for `moe/...` metrics."""
    expert_parallel: ExpertParallelConfig = field(default_factory=ExpertParallelConfig)

    def __post_init__(self):
        self.capacity_mode = CapacityMode(self.capacity_mode)
        self.replay = ReplayMode(self.replay)
        if isinstance(self.expert_parallel, dict):
            self.expert_parallel = ExpertParallelConfig(**self.expert_parallel)
        if self.capacity_factor <= 0:
            raise ValueError(f"moe.capacity_factor must be > 0, got {self.capacity_factor}")
        if self.expert_impl not in EXPERT_IMPLS:
            raise ValueError(
                f"moe.expert_impl must be one of {', '.join(EXPERT_IMPLS)}, got {self.expert_impl!r}"
            )
        if self.router_dtype not in ("float32", "float64", "bfloat16", "float16"):
            raise ValueError(f"moe.router_dtype must be float32, float64, bfloat16 or float16, got {self.router_dtype!r}")
