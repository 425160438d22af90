"""Train the byte-level BPE tokenizer that ships with mathrl's tiny presets.

It is trained once and committed under ``mathrl/models/tokenizer/``; rerun it only to change the
vocabulary::

    python -m mathrl.models.build_tokenizer --gsm8k-train mathrl/data/files/gsm8k/train.jsonl

Training text: GSM8K train problems and solutions plus generated arithmetic, never an evaluation
set, so the vocabulary carries no information from held-out problems. Every digit is its own
token, which keeps numbers compositional for a small model.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
from pathlib import Path

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

logger = logging.getLogger(__name__)

OUTPUT_DIR = Path(__file__).parent / "tokenizer"
PAD, BOS, EOS = "<|pad|>", "<|endoftext|>", "<|im_end|>"
SPECIAL_TOKENS = [PAD, BOS, "<|im_start|>", EOS]

# ChatML, as Qwen models use it; `add_generation_prompt` opens the assistant turn.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)


def _arithmetic_lines(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    lines = []
    for _ in range(count):
        a, b = rng.randint(0, 9999), rng.randint(1, 999)
        op = rng.choice("+-*/")
        lines.append(f"What is {a} {op} {b}? Put the final answer in \\boxed{{}}. \\boxed{{{a}}}")
    return lines


def _gsm8k_lines(path: Path) -> list[str]:
    lines = []
    with path.open() as handle:
        for line in handle:
            row = json.loads(line)
            lines.append(row["question"])
            lines.append(row["answer"])
    return lines


def build_tokenizer(texts: list[str], vocab_size: int) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE on ``texts`` and wrap it with mathrl's special tokens and chat template."""
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [pre_tokenizers.Digits(individual_digits=True), pre_tokenizers.ByteLevel(add_prefix_space=False)]
    )
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        pad_token=PAD,
        bos_token=BOS,
        eos_token=EOS,
        unk_token=None,
        chat_template=CHAT_TEMPLATE,
        model_max_length=4096,
        padding_side="left",
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gsm8k-train", type=Path, required=True, help="GSM8K train jsonl (question, answer)")
    parser.add_argument("--vocab-size", type=int, default=2048, help="target vocabulary size, special tokens included")
    parser.add_argument("--output", type=Path, default=OUTPUT_DIR, help="folder to write the tokenizer files to")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO)

    texts = _gsm8k_lines(args.gsm8k_train) + _arithmetic_lines(20_000, seed=0)
    tokenizer = build_tokenizer(texts, args.vocab_size)
    tokenizer.save_pretrained(args.output)
    logger.info("wrote a %d-token tokenizer to %s", len(tokenizer), args.output)


if __name__ == "__main__":
    main()
