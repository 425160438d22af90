"""Adaptive choice of the parallel degree r and pipelining degree d, per MoE layer and token-count bucket.

For each key (layer, global routed slots rounded up to a power of two, grad enabled or not) the
chooser runs live forwards with every valid (r, d) in turn for `trials` rounds. It keeps the pair
with the lowest minimum time, preferring a lower d within `tolerance`, and re-probes after
`reprobe_every` further forwards of that key. With grad enabled a trial's time is the layer's
forward plus its backward, until the gradients of its dispatched rows and expert weights exist.
Every candidate computes the same function, so probing changes only speed.

All ranks of an EP group must use the same (r, d) in each forward, or their collectives would not
match. The key comes from counts that every rank has gathered, each rank counts the same
forwards, and the measured times are reduced with MAX over the group (the slowest rank sets the
step time) before the argmin. So every rank makes the same choice without further messages.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import torch
import torch.distributed as dist

__all__ = ["ParallelChooser", "candidates", "PIPELINE_DEGREES"]

logger = logging.getLogger(__name__)

PIPELINE_DEGREES = (1, 2, 4)


def candidates(degrees: list[int], r="auto", d="auto", pipeline=PIPELINE_DEGREES) -> list[tuple[int, int]]:
    """The (r, d) pairs to try. r = 0 has no all-to-all to pipeline, so it only pairs with d = 1."""
    rs = degrees if r == "auto" else [r]
    ds = list(pipeline) if d == "auto" else [d]
    pairs = []
    for parallel in rs:
        for depth in [1] if parallel == 0 else ds:
            pairs.append((parallel, depth))
    return pairs


def _bucket(slots: int) -> int:
    return 1 << max(0, (max(slots, 1) - 1).bit_length())


@dataclass
class _Probe:
    queue: list[tuple[int, int]]
    times: dict[tuple[int, int], float] = field(default_factory=dict)
    choice: tuple[int, int] | None = None
    uses: int = 0


class ParallelChooser:
    """Time the (r, d) candidates of each key on live forwards and cache the fastest."""

    def __init__(
        self,
        pairs: list[tuple[int, int]],
        group,
        trials: int = 4,
        reprobe_every: int = 500,
        tolerance: float = 0.05,
    ):
        if not pairs:
            raise ValueError("the expert-parallel chooser needs at least one (r, d) candidate")
        self.pairs = list(pairs)
        self.group = group
        self.trials = trials
        self.reprobe_every = reprobe_every
        self.tolerance = tolerance
        self.probes: dict[tuple, _Probe] = {}
        self.history: list[dict] = []  # one entry per decision: key, choice, times

    def key(self, layer: int, slots: int) -> tuple:
        return layer, _bucket(slots), torch.is_grad_enabled()

    def select(self, key: tuple) -> tuple[tuple[int, int], bool]:
        """Return the (r, d) of the next forward of `key`, and whether that forward is being timed."""
        if len(self.pairs) == 1:
            return self.pairs[0], False
        probe = self.probes.get(key)
        if probe is None or (probe.choice is not None and probe.uses >= self.reprobe_every):
            # Round-robin, so that a burst of load from other processes slows every candidate alike.
            probe = self.probes[key] = _Probe(queue=[p for _ in range(self.trials) for p in self.pairs])
        if probe.choice is not None:
            probe.uses += 1
            return probe.choice, False
        return probe.queue[0], True

    def record(self, key: tuple, pair: tuple[int, int], seconds: float) -> None:
        """Store the time of a probing forward; decide once every candidate has run `trials` times."""
        probe = self.probes[key]
        probe.queue.pop(0)
        probe.times[pair] = min(seconds, probe.times.get(pair, float("inf")))
        if probe.queue:
            return
        times = torch.tensor([probe.times[p] for p in self.pairs], dtype=torch.float64)
        if self.group is not None:
            backend = dist.get_backend(self.group)
            device = (
                torch.device("cuda", torch.cuda.current_device())
                if backend == "nccl"
                else torch.device("cpu")
            )
            times = times.to(device)
            dist.all_reduce(times, op=dist.ReduceOp.MAX, group=self.group)
            times = times.cpu()
        # Among pairs within `tolerance` of the fastest, take the lowest d (then the lowest r): fewer
        # messages per forward vary less with other processes' load than the probe can resolve.
        limit = float(times.min()) * (1 + self.tolerance)
        close = [i for i, t in enumerate(times.tolist()) if t <= limit]
        best = min(close, key=lambda i: (self.pairs[i][1], i))
        probe.choice, probe.uses = self.pairs[best], 0
        layer, bucket, grad = key
        summary = ", ".join(f"r={r} d={d} {t * 1e3:.2f}" for (r, d), t in zip(self.pairs, times.tolist()))
        logger.info(
            "expert parallel choice for layer %s, up to %d slots%s: r=%d d=%d (ms, slowest rank: %s)",
            layer,
            bucket,
            " with grad" if grad else "",
            *probe.choice,
            summary,
        )
        self.history.append(
            {
                "key": key,
                "choice": probe.choice,
                "ms": dict(zip(self.pairs, (t * 1e3 for t in times.tolist()))),
            }
        )

    def timed(self, device: torch.device):
        """Return a function that reads a clock, synchronising the device first on CUDA."""

        def now() -> float:
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            return time.perf_counter()

        return now
