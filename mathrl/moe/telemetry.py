"""Per-layer router and load statistics, accumulated on the device and read in one sync.

The forward adds into small device tensors and never calls `.item()`. `collect_metrics` reads
every layer with a single host copy and resets the accumulators.
"""

from __future__ import annotations

import torch

__all__ = ["LayerStats", "summarise"]


class LayerStats:
    """Accumulators of one MoE layer since the last collection."""

    def __init__(self, num_experts: int):
        self.num_experts = num_experts
        self.reset()

    def reset(self) -> None:
        self.tokens: torch.Tensor | None = None  # (E,) routed slots per expert, before capacity drops
        self.dropped: torch.Tensor | None = None  # () slots dropped by the capacity
        self.entropy_sum: torch.Tensor | None = None  # () sum over real tokens of the router entropy
        self.entropy_count: torch.Tensor | None = None  # () real tokens behind entropy_sum
        self.route_changed: torch.Tensor | None = None  # () replayed tokens whose fresh choice differs
        self.route_compared: torch.Tensor | None = None  # () replayed tokens compared

    @staticmethod
    def _add(total: torch.Tensor | None, value: torch.Tensor) -> torch.Tensor:
        if total is None:
            return value.detach().to(torch.float64, copy=True)
        return total.add_(value.detach())  # one kernel: add_ casts into the float64 total

    def add_load(self, requested: torch.Tensor, dropped: torch.Tensor | None) -> None:
        self.tokens = self._add(self.tokens, requested)
        if dropped is not None:
            self.dropped = self._add(self.dropped, dropped)

    def add_entropy(self, entropy_sum: torch.Tensor, count: torch.Tensor) -> None:
        self.entropy_sum = self._add(self.entropy_sum, entropy_sum)
        self.entropy_count = self._add(self.entropy_count, count)

    def add_route_change(self, changed: torch.Tensor, compared: torch.Tensor) -> None:
        self.route_changed = self._add(self.route_changed, changed)
        self.route_compared = self._add(self.route_compared, compared)


def _layer_values(stats: LayerStats) -> list[torch.Tensor]:
    nan = torch.full((), float("nan"), dtype=torch.float64)
    tokens = (
        stats.tokens
        if stats.tokens is not None
        else torch.full((stats.num_experts,), float("nan"), dtype=torch.float64)
    )
    device = tokens.device
    mean = tokens.mean()
    values = [
        tokens.std(unbiased=False) / mean,  # load_cv
        tokens.max() / mean,  # max_mean_load
        stats.dropped if stats.dropped is not None else torch.zeros((), dtype=torch.float64, device=device),
        tokens.sum(),
        stats.entropy_sum if stats.entropy_sum is not None else nan.to(device),
        stats.entropy_count if stats.entropy_count is not None else nan.to(device),
        stats.route_changed if stats.route_changed is not None else nan.to(device),
        stats.route_compared if stats.route_compared is not None else nan.to(device),
    ]
    return [v.to(device) for v in values] + [tokens]


def summarise(
    layers: dict[int, LayerStats], per_expert: bool = False, reset: bool = True
) -> dict[str, float]:
    """Return `moe/...` metrics of every layer and their aggregates, then reset the accumulators.

    Keys: ``moe/layer<i>/{load_cv, max_mean_load, dropped_frac, router_entropy, route_change_frac}``,
    aggregated ``moe/{load_cv, max_mean_load, router_entropy}`` (means over layers),
    ``moe/dropped_frac`` and ``moe/route_change_frac`` (ratios of totals), and with `per_expert`
    ``moe/layer<i>/tokens/e<j>``. A statistic with no data since the last reset is left out.
    """
    if not layers:
        return {}
    rows = []
    for stats in layers.values():
        values = _layer_values(stats)
        rows.append(torch.cat([torch.stack(values[:-1]), values[-1]]))
    device = rows[0].device
    table = torch.stack([row.to(device) for row in rows]).tolist()  # the only host sync
    metrics: dict[str, float] = {}
    totals = {"dropped": 0.0, "routed": 0.0, "changed": 0.0, "compared": 0.0}
    per_layer: dict[str, list[float]] = {"load_cv": [], "max_mean_load": [], "router_entropy": []}

    def keep(value: float) -> bool:
        return value == value  # not NaN

    for layer, row in zip(layers, table):
        cv, max_mean, dropped, routed, ent_sum, ent_count, changed, compared = row[:8]
        prefix = f"moe/layer{layer}"
        if keep(routed) and routed > 0:
            metrics[f"{prefix}/load_cv"] = cv
            metrics[f"{prefix}/max_mean_load"] = max_mean
            metrics[f"{prefix}/dropped_frac"] = dropped / routed
            per_layer["load_cv"].append(cv)
            per_layer["max_mean_load"].append(max_mean)
            totals["dropped"] += dropped
            totals["routed"] += routed
            if per_expert:
                for expert, count in enumerate(row[8:]):
                    metrics[f"{prefix}/tokens/e{expert}"] = count
        if keep(ent_count) and ent_count > 0:
            metrics[f"{prefix}/router_entropy"] = ent_sum / ent_count
            per_layer["router_entropy"].append(ent_sum / ent_count)
        if keep(compared) and compared > 0:
            metrics[f"{prefix}/route_change_frac"] = changed / compared
            totals["changed"] += changed
            totals["compared"] += compared

    for name, values in per_layer.items():
        if values:
            metrics[f"moe/{name}"] = sum(values) / len(values)
    if totals["routed"] > 0:
        metrics["moe/dropped_frac"] = totals["dropped"] / totals["routed"]
    if totals["compared"] > 0:
        metrics["moe/route_change_frac"] = totals["changed"] / totals["compared"]
    if reset:
        for stats in layers.values():
            stats.reset()
    return metrics
