"""A tiny randomly initialised chat LLM, built on the spot, for tests and CPU benchmarks.

No model can be downloaded in this project's test environments, yet every generation backend
(transformers in-process, ``arenagym serve``, vLLM) must be exercised against a real model in the
standard Hugging Face layout. :func:`build_tiny_model` writes one into a directory:

- ``tokenizer.json`` / ``tokenizer_config.json``: a byte-level BPE tokenizer trained locally with
  ``tokenizers`` on the corpus shipped with arenagym (``agents/data/tokenizer_corpus.txt``), with the
  ChatML special tokens ``<|endoftext|>``, ``<|im_start|>``, ``<|im_end|>`` and a ChatML chat template
  (``<|im_start|>role\\ncontent<|im_end|>\\n``); eos is ``<|im_end|>``, pad is ``<|endoftext|>``;
- ``config.json`` / ``model.safetensors``: a Qwen2 (default) or Llama causal LM with a couple of
  layers (about 2 MB in float32), randomly initialised from ``seed``;
- ``generation_config.json``: eos ids ``<|im_end|>`` and ``<|endoftext|>``, pad ``<|endoftext|>``;
- ``chat_template.jinja`` as well, when transformers >= 4.50 writes it (the template is also embedded
  in ``tokenizer_config.json`` for older readers).

The same seed gives byte-identical files. Everything loads offline with ``AutoTokenizer`` and
``AutoModelForCausalLM`` (and, on a GPU, with ``vllm.LLM``: head size 32 is one that vLLM's attention
kernels support). The weights are random, so the text it writes is gibberish — what matters is that
tokens, chat templates, log-probabilities and batching are real.

Example (needs the ``hf`` extra; builds in about a second):
    >>> from arenagym.agents.tiny_model import build_tiny_model
    >>> path = build_tiny_model("/tmp/tiny-qwen2")  # doctest: +SKIP
    >>> sorted(p.name for p in path.iterdir())  # doctest: +SKIP
    ['chat_template.jinja', 'config.json', 'generation_config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json']

The chat template, as a plain Jinja string, is importable without torch:
    >>> CHAT_TEMPLATE.count("<|im_start|>")
    2
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any, Literal

Architecture = Literal["qwen2", "llama"]

ENDOFTEXT = "<|endoftext|>"
IM_START = "<|im_start|>"
IM_END = "<|im_end|>"
SPECIAL_TOKENS = (ENDOFTEXT, IM_START, IM_END)

#: ChatML, as used by Qwen2 instruct models: every message is ``<|im_start|>ROLE\\nCONTENT<|im_end|>\\n``,
#: and the generation prompt is ``<|im_start|>assistant\\n``. Re-rendering a conversation that ends in an
#: assistant message reproduces the prompt tokens of the earlier turns as a prefix.
CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)

#: Qwen2's pre-tokenisation regex (words, single digits, punctuation runs, newlines, spaces).
PRETOKENIZE_REGEX = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)

#: Where the tokenizer's training text lives inside the package.
CORPUS_RESOURCE = "data/tokenizer_corpus.txt"


def corpus_text() -> str:
    """The shipped tokenizer training corpus (synthetic text written for arenagym).

    >>> len(corpus_text()) > 100_000
    True
    """
    return resources.files("arenagym.agents").joinpath(CORPUS_RESOURCE).read_text(encoding="utf-8")


def train_tokenizer(vocab_size: int = 2048) -> Any:
    """Train a byte-level BPE ``tokenizers.Tokenizer`` on :func:`corpus_text` (deterministic).

    The three ChatML special tokens get ids 0, 1, 2. Byte-level means every string round-trips
    through encode/decode, whatever characters it contains. Normaliser and pre-tokeniser are exactly
    Qwen2's (NFC; split on :data:`PRETOKENIZE_REGEX`, one digit per token; byte-level), so the
    tokenizer encodes the same whether it is loaded as a raw ``tokenizers.Tokenizer``, as
    ``PreTrainedTokenizerFast`` or as ``Qwen2Tokenizer`` (which transformers 5 rebuilds with these
    components whatever ``tokenizer.json`` says).
    """
    from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.normalizer = normalizers.NFC()
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(PRETOKENIZE_REGEX), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    lines = corpus_text().splitlines(keepends=True)
    tokenizer.train_from_iterator(lines, trainer=trainer, length=len(lines))
    return tokenizer


def build_tiny_model(
    directory: str | Path,
    *,
    architecture: Architecture = "qwen2",
    seed: int = 0,
    vocab_size: int = 2048,
    hidden_size: int = 128,
    intermediate_size: int = 256,
    num_hidden_layers: int = 2,
    num_attention_heads: int = 4,
    num_key_value_heads: int = 2,
    max_position_embeddings: int = 2048,
    initializer_range: float = 0.1,
) -> Path:
    """Write a tiny random causal LM + trained tokenizer + chat template into ``directory``.

    ``directory`` is created if needed; existing files of the same names are overwritten. Returns
    the directory as a :class:`~pathlib.Path`. ``initializer_range`` is larger than a real model's
    (0.02) so that next-token distributions are peaked enough that greedy decoding is not decided
    by floating-point noise (batched and one-by-one greedy runs then agree token for token).

    ``vocab_size`` is the BPE target; the model's vocabulary is exactly the trained tokenizer's size.
    """
    import torch
    from transformers import (
        AutoModelForCausalLM,
        GenerationConfig,
        LlamaConfig,
        PreTrainedTokenizerFast,
        Qwen2Config,
    )

    if architecture not in ("qwen2", "llama"):
        raise ValueError(f"architecture must be 'qwen2' or 'llama', got {architecture!r}")
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)

    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=train_tokenizer(vocab_size),
        eos_token=IM_END,
        pad_token=ENDOFTEXT,
        unk_token=None,
        bos_token=None,
        model_max_length=max_position_embeddings,
        padding_side="left",
        clean_up_tokenization_spaces=False,
    )
    tokenizer.chat_template = CHAT_TEMPLATE
    pad_id = tokenizer.convert_tokens_to_ids(ENDOFTEXT)
    eos_id = tokenizer.convert_tokens_to_ids(IM_END)

    common: dict[str, Any] = {
        "vocab_size": len(tokenizer),
        "hidden_size": hidden_size,
        "intermediate_size": intermediate_size,
        "num_hidden_layers": num_hidden_layers,
        "num_attention_heads": num_attention_heads,
        "num_key_value_heads": num_key_value_heads,
        "max_position_embeddings": max_position_embeddings,
        "initializer_range": initializer_range,
        "tie_word_embeddings": True,
        "bos_token_id": None,
        "eos_token_id": eos_id,
        "pad_token_id": pad_id,
    }
    config_class = Qwen2Config if architecture == "qwen2" else LlamaConfig
    config = config_class(**common)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AutoModelForCausalLM.from_config(config)
    model.generation_config = GenerationConfig(
        eos_token_id=[eos_id, pad_id], pad_token_id=pad_id, bos_token_id=None, do_sample=True
    )
    model.save_pretrained(path, safe_serialization=True)
    tokenizer.save_pretrained(path)
    _portable_tokenizer_config(path, architecture)
    return path


def _portable_tokenizer_config(path: Path, architecture: Architecture) -> None:
    """Make ``tokenizer_config.json`` load the same under transformers 4.x, 5.x and vLLM.

    transformers 5 writes ``tokenizer_class: TokenizersBackend`` (unknown to 4.x) and the chat
    template only to ``chat_template.jinja`` (read by transformers >= 4.50); we name a class every
    version knows and also embed the template in ``tokenizer_config.json``.
    """
    config_file = path / "tokenizer_config.json"
    config = json.loads(config_file.read_text(encoding="utf-8"))
    config["tokenizer_class"] = (
        "Qwen2Tokenizer" if architecture == "qwen2" else "PreTrainedTokenizerFast"
    )
    config["chat_template"] = CHAT_TEMPLATE
    config_file.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", encoding="utf-8")
