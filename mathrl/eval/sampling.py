"""Batched sampling of completions for chat prompts with a transformers model."""

from __future__ import annotations

import logging

import torch
from tqdm.auto import tqdm
from transformers import PreTrainedModel, PreTrainedTokenizerBase

__all__ = ["generate_completions"]

logger = logging.getLogger(__name__)


@torch.no_grad()
def generate_completions(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    prompts: list[list[dict]],
    samples: int = 1,
    temperature: float = 0.0,
    top_p: float = 1.0,
    max_new_tokens: int = 64,
    batch_size: int = 64,
    progress: bool = True,
    description: str = "generating",
) -> list[list[str]]:
    """Return ``samples`` completions for each chat prompt, in prompt order.

    ``temperature`` 0 decodes greedily. Prompts are sorted by length so batches carry little padding.
    """
    if temperature == 0 and samples > 1:
        raise ValueError(f"samples={samples} needs temperature > 0; greedy decoding gives identical samples")
    texts = [tokenizer.apply_chat_template(p, tokenize=False, add_generation_prompt=True) for p in prompts]
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    results: list[list[str]] = [[] for _ in texts]

    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    sampling = dict(do_sample=True, temperature=temperature, top_p=top_p) if temperature > 0 else dict(do_sample=False)
    prompts_per_batch = max(1, batch_size // samples)
    bar = tqdm(total=len(texts), desc=description, disable=not progress, unit="prompt")
    try:
        for start in range(0, len(order), prompts_per_batch):
            indices = order[start : start + prompts_per_batch]
            batch = tokenizer([texts[i] for i in indices], return_tensors="pt", padding=True,
                              padding_side="left", add_special_tokens=False).to(device)
            output = model.generate(
                **batch,
                max_new_tokens=max_new_tokens,
                num_return_sequences=samples,
                pad_token_id=tokenizer.pad_token_id,
                eos_token_id=tokenizer.eos_token_id,
                top_k=None,
                **sampling,
            )  # (len(indices) * samples, prompt_len + new)
            completion_ids = output[:, batch["input_ids"].shape[1] :]
            decoded = tokenizer.batch_decode(completion_ids, skip_special_tokens=True)
            for j, i in enumerate(indices):
                results[i] = decoded[j * samples : (j + 1) * samples]
            bar.update(len(indices))
    finally:
        bar.close()
        model.train(was_training)
    return results
