"""The tiny test model: builds fast, loads with plain transformers, deterministic, real chat template."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("torch", reason="the hf extra (torch) is not installed")
pytest.importorskip("transformers", reason="the hf extra (transformers) is not installed")

from arenagym.agents.tiny_model import (
    CHAT_TEMPLATE,
    ENDOFTEXT,
    IM_END,
    IM_START,
    build_tiny_model,
    corpus_text,
)

EXPECTED_FILES = {
    "config.json",
    "generation_config.json",
    "model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
}


def test_writes_standard_hugging_face_files(tiny_model_dir: Path) -> None:
    names = {p.name for p in tiny_model_dir.iterdir()}
    assert names >= EXPECTED_FILES
    size = (tiny_model_dir / "model.safetensors").stat().st_size
    assert 100_000 < size < 10_000_000  # "a few MB"
    tokenizer_config = json.loads((tiny_model_dir / "tokenizer_config.json").read_text())
    assert tokenizer_config["chat_template"] == CHAT_TEMPLATE
    assert tokenizer_config["eos_token"] == IM_END
    assert tokenizer_config["pad_token"] == ENDOFTEXT
    config = json.loads((tiny_model_dir / "config.json").read_text())
    assert config["model_type"] == "qwen2"
    assert config["max_position_embeddings"] == 2048


def test_loads_with_auto_classes_offline(tiny_model_dir: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    assert model.config.vocab_size == len(tokenizer)
    assert tokenizer.eos_token == IM_END and tokenizer.pad_token == ENDOFTEXT
    generation = json.loads((tiny_model_dir / "generation_config.json").read_text())
    assert set(generation["eos_token_id"]) == {tokenizer.eos_token_id, tokenizer.pad_token_id}
    ids = tokenizer("Evaluate $(3 + 4) \\times 2$.", return_tensors="pt").input_ids
    with torch.no_grad():
        logits = model(ids).logits
    assert logits.shape == (1, ids.shape[1], len(tokenizer))
    assert torch.isfinite(logits).all()


def test_chat_template_renders_chatml(tiny_model_dir: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_model_dir)
    conversation = [
        {"role": "system", "content": "You solve math."},
        {"role": "user", "content": "What is 2+2?"},
    ]
    text = tokenizer.apply_chat_template(conversation, tokenize=False, add_generation_prompt=True)
    assert text == (
        "<|im_start|>system\nYou solve math.<|im_end|>\n"
        "<|im_start|>user\nWhat is 2+2?<|im_end|>\n"
        "<|im_start|>assistant\n"
    )
    ids = tokenizer(text, add_special_tokens=False).input_ids
    for special in (IM_START, IM_END):  # special tokens are single ids, never split
        assert ids.count(tokenizer.convert_tokens_to_ids(special)) == text.count(special)
    assert tokenizer.decode(ids) == text
    # Byte-level: any text round-trips, digits are single tokens (as in Qwen2).
    odd = "naïve ☃ 𝔘 12345\t\n"
    assert tokenizer.decode(tokenizer(odd, add_special_tokens=False).input_ids) == odd
    digits = tokenizer("2024", add_special_tokens=False).input_ids
    assert len(digits) == 4


def test_same_seed_same_bytes_other_seed_other_weights(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    again = build_tiny_model(tmp_path / "again", seed=0)
    other = build_tiny_model(tmp_path / "other", seed=1)
    for name in ("model.safetensors", "tokenizer.json", "tokenizer_config.json", "config.json"):
        assert (again / name).read_bytes() == (tiny_model_dir / name).read_bytes(), name
    assert (other / "model.safetensors").read_bytes() != (again / "model.safetensors").read_bytes()
    assert (other / "tokenizer.json").read_bytes() == (again / "tokenizer.json").read_bytes()


def test_llama_architecture(tmp_path: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = build_tiny_model(tmp_path / "llama", architecture="llama", seed=3)
    model = AutoModelForCausalLM.from_pretrained(path)
    tokenizer = AutoTokenizer.from_pretrained(path)
    assert model.config.model_type == "llama"
    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": "hi"}], tokenize=False, add_generation_prompt=True
    )
    assert text == "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"


def test_rejects_unknown_architecture(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="architecture"):
        build_tiny_model(tmp_path, architecture="gpt2")  # type: ignore[arg-type]


def test_corpus_is_shipped_and_small() -> None:
    text = corpus_text()
    assert 100_000 < len(text.encode()) < 500_000
    assert "\\boxed" in text
