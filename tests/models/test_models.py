"""Presets, the shipped tokenizer, and loading errors."""

import pytest
import torch
import transformers

from mathrl.models import PRESETS, load_model, load_tokenizer

MATH_TEXTS = [
    "Natalia sold 48/2 = 24 clips in May. \\boxed{72}",
    "Find $\\frac{1}{2} + \\sqrt{3}$ when $x^2 = 4$.",
    "Unicode survives: ∫ π ≤ ∞ 日本",
    "  leading spaces and\nnewlines\t",
]


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer("tiny-qwen3-moe")


@pytest.mark.parametrize("text", MATH_TEXTS)
def test_tokenizer_round_trip(tokenizer, text):
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert tokenizer.decode(ids) == text


def test_tokenizer_digits_are_single_tokens(tokenizer):
    assert tokenizer.convert_ids_to_tokens(tokenizer("90817", add_special_tokens=False)["input_ids"]) == list("90817")


def test_tokenizer_chat_template_and_special_tokens(tokenizer):
    text = tokenizer.apply_chat_template([{"role": "user", "content": "What is 2 + 3?"}], tokenize=False,
                                         add_generation_prompt=True)
    assert text == "<|im_start|>user\nWhat is 2 + 3?<|im_end|>\n<|im_start|>assistant\n"
    assert tokenizer.eos_token == "<|im_end|>"
    assert tokenizer.pad_token_id != tokenizer.eos_token_id
    assert tokenizer.padding_side == "left"
    assert len(tokenizer) <= 4096


def test_tiny_preset_size_and_moe_defaults():
    model = load_model("tiny-qwen3-moe")
    assert isinstance(model, transformers.Qwen3MoeForCausalLM)
    params = sum(p.numel() for p in model.parameters())
    assert 5e6 <= params <= 10e6
    assert model.config.output_router_logits is False
    assert model.config.router_aux_loss_coef == 0.0
    assert model.config.num_experts == 8 and model.config.num_experts_per_tok == 2


def test_preset_is_deterministic_per_seed():
    a, b, c = load_model("micro-qwen3-moe", seed=1), load_model("micro-qwen3-moe", seed=1), load_model("micro-qwen3-moe", seed=2)
    assert all(torch.equal(x, y) for x, y in zip(a.parameters(), b.parameters()))
    assert not all(torch.equal(x, y) for x, y in zip(a.parameters(), c.parameters()))


def test_preset_generates_padded_batch():
    tokenizer = load_tokenizer("micro-qwen3-moe")
    model = load_model("micro-qwen3-moe")
    batch = tokenizer(["What is 2+3?", "1"], return_tensors="pt", padding=True)
    out = model.generate(**batch, max_new_tokens=3, do_sample=False, pad_token_id=tokenizer.pad_token_id)
    assert out.shape == (2, batch["input_ids"].shape[1] + 3)


def test_saved_model_loads_from_folder(tmp_path):
    model = load_model("micro-qwen3-moe")
    tokenizer = load_tokenizer("micro-qwen3-moe")
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    again = load_model(str(tmp_path))
    assert all(torch.equal(x, y) for x, y in zip(model.parameters(), again.parameters()))
    assert load_tokenizer(str(tmp_path)).pad_token == tokenizer.pad_token


def test_unknown_model_error_names_presets():
    with pytest.raises(RuntimeError) as error:
        load_model("no-such-org/no-such-model")
    message = str(error.value)
    assert "no-such-org/no-such-model" in message and "tiny-qwen3-moe" in message and "local folder" in message


def test_folder_without_config(tmp_path):
    with pytest.raises(FileNotFoundError, match="no config.json"):
        load_model(str(tmp_path))


def test_presets_registry_lists_names():
    assert {"tiny-qwen3-moe", "micro-qwen3-moe"} <= set(PRESETS.names())
