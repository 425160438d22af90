"""DAPO dynamic sampling: replace groups whose rewards all agree with freshly generated groups.

A group whose G completions got the same reward has zero advantage everywhere and carries no
gradient. Dynamic sampling draws more prompts, generates and scores them, and keeps informative
groups until the local batch is full again, up to a cap on extra rounds.

The helpers here work on the batch dictionary TRL's GRPOTrainer builds (tensors with the local
completions as the first dimension); shapes use B*G rows, Tp prompt tokens, Tc completion tokens.
"""

from __future__ import annotations

import torch

__all__ = ["informative_groups", "select_rows", "concat_batches", "PROMPT_KEYS", "COMPLETION_KEYS"]

PROMPT_KEYS = {"prompt_ids": "pad", "prompt_mask": 0, "routing_prompt": -1}
"""Left-padded prompt tensors (B*G, Tp) and their pad values ("pad" means the tokenizer's pad id)."""

COMPLETION_KEYS = {"completion_ids": "pad", "completion_mask": 0, "old_per_token_logps": 0.0,
                   "ref_per_token_logps": 0.0, "sampling_per_token_logps": 0.0, "importance_sampling_ratio": 1.0,
                   "tool_mask": 1, "routing_completion": -1}
"""Right-padded completion tensors (B*G, Tc) and their pad values."""


def informative_groups(advantages: torch.Tensor, group_size: int) -> torch.Tensor:
    """Return a bool mask over groups: True where some completion has a non-zero advantage.

    >>> informative_groups(torch.tensor([0.0, 0.0, 0.5, -0.5]), 2).tolist()
    [False, True]
    """
    return (advantages.view(-1, group_size) != 0).any(dim=1)  # (B,)


def select_rows(batch: dict, rows: torch.Tensor) -> dict:
    """Index every per-completion tensor of ``batch`` by ``rows``; scalars are left out."""
    out = {}
    for key, value in batch.items():
        if isinstance(value, torch.Tensor) and value.dim() >= 1 and key != "num_items_in_batch":
            out[key] = value[rows]
    return out


def _pad_to(tensor: torch.Tensor, length: int, value, left: bool) -> torch.Tensor:
    missing = length - tensor.shape[1]
    if missing == 0:
        return tensor
    filler = torch.full((tensor.shape[0], missing, *tensor.shape[2:]), value, dtype=tensor.dtype, device=tensor.device)
    return torch.cat([filler, tensor] if left else [tensor, filler], dim=1)


def concat_batches(batches: list[dict], pad_token_id: int) -> dict:
    """Concatenate batch dictionaries row-wise, re-padding prompts on the left and completions on the right."""
    out = {}
    for key in batches[0]:
        values = [b[key] for b in batches]
        if key in PROMPT_KEYS or key in COMPLETION_KEYS:
            left = key in PROMPT_KEYS
            pad = (PROMPT_KEYS if left else COMPLETION_KEYS)[key]
            pad = pad_token_id if pad == "pad" else pad
            length = max(v.shape[1] for v in values)
            out[key] = torch.cat([_pad_to(v, length, pad, left) for v in values], dim=0)
        else:
            out[key] = torch.cat(values, dim=0)
    return out
