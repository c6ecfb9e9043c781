"""The transformers backend: batching, sampling, stops, log-probabilities, context, weights."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch", reason="the hf extra (torch) is not installed")
pytest.importorskip("transformers", reason="the hf extra (transformers) is not installed")

from arenagym.agents.backends import (
    Completion,
    ContextLengthError,
    GenerationBackend,
    SamplingParams,
    TransformersBackend,
)

CONVERSATIONS = [
    [{"role": "user", "content": "What is 2+2?"}],
    [
        {"role": "system", "content": "You are a careful math solver. Think step by step."},
        {"role": "user", "content": "Nia has 75 cookies and buys 14 more. How many now?"},
    ],
    [{"role": "user", "content": "x"}],
    [
        {"role": "user", "content": "Board:\nXO.\n.OO\nOOX\nYour move?"},
        {"role": "assistant", "content": "I play 2."},
        {"role": "user", "content": "Why?"},
    ],
]
GREEDY = SamplingParams(max_tokens=24, temperature=0.0)


def teacher_forced_logprobs(backend: TransformersBackend, completion: Completion) -> list[float]:
    """log_softmax of one unpadded forward pass over prompt + completion, at the sampled ids."""
    import torch

    ids = completion.prompt_token_ids + completion.completion_token_ids
    with torch.no_grad():
        logits = backend.model(torch.tensor([ids])).logits[0].float()
    logprobs = torch.log_softmax(logits, dim=-1)
    start = len(completion.prompt_token_ids) - 1
    return [logprobs[start + i, t].item() for i, t in enumerate(completion.completion_token_ids)]


def ascii_run(text: str, length: int = 3) -> str:
    """The first run of ``length`` ASCII letters in ``text`` after its first few characters."""
    for start in range(2, len(text) - length):
        piece = text[start : start + length]
        if piece.isascii() and piece.isalpha():
            return piece
    raise AssertionError(f"no ASCII run in {text!r}")


def test_is_a_generation_backend(tiny_backend: TransformersBackend) -> None:
    assert isinstance(tiny_backend, GenerationBackend)
    assert tiny_backend.max_context == 2048
    assert tiny_backend.generate([], GREEDY) == []


def test_batched_greedy_equals_one_by_one(tiny_backend: TransformersBackend) -> None:
    batched = tiny_backend.generate(CONVERSATIONS, GREEDY)
    singles = [tiny_backend.generate([c], GREEDY)[0] for c in CONVERSATIONS]
    for together, alone in zip(batched, singles, strict=True):
        assert together.prompt_token_ids == alone.prompt_token_ids
        assert together.completion_token_ids == alone.completion_token_ids
        assert together.text == alone.text
        assert together.finish_reason == alone.finish_reason
        assert together.logprobs == pytest.approx(alone.logprobs, abs=1e-4)
    lengths = {len(c.prompt_token_ids) for c in batched}
    assert len(lengths) == len(CONVERSATIONS)  # really different lengths, so left padding matters


def test_seeded_sampling_is_reproducible(tiny_backend: TransformersBackend) -> None:
    params = SamplingParams(max_tokens=16, temperature=1.0, top_p=0.9, top_k=40, seed=1234)
    first = tiny_backend.generate(CONVERSATIONS, params)
    second = tiny_backend.generate(CONVERSATIONS, params)
    assert [c.completion_token_ids for c in first] == [c.completion_token_ids for c in second]
    other = tiny_backend.generate(CONVERSATIONS, SamplingParams(max_tokens=16, seed=99))
    assert [c.completion_token_ids for c in other] != [c.completion_token_ids for c in first]
    # Two copies of one prompt in a batch get different samples from the shared generator.
    twins = tiny_backend.generate([CONVERSATIONS[0]] * 2, params)
    assert twins[0].completion_token_ids != twins[1].completion_token_ids


def test_generate_each_seeded_row_ignores_its_neighbours(tiny_backend: TransformersBackend) -> None:
    mine = SamplingParams(max_tokens=12, temperature=0.9, seed=7)
    alone = tiny_backend.generate_each([CONVERSATIONS[1]], [mine])[0]
    crowd = tiny_backend.generate_each(
        [CONVERSATIONS[0], CONVERSATIONS[1], CONVERSATIONS[3]],
        # the neighbours are greedy: an unseeded sampled row could end early on EOS, at random
        [
            SamplingParams(max_tokens=5, temperature=0),
            mine,
            SamplingParams(max_tokens=20, temperature=0),
        ],
    )
    assert crowd[1].completion_token_ids == alone.completion_token_ids
    assert len(crowd[0].completion_token_ids) == 5 and len(crowd[2].completion_token_ids) == 20


def test_max_tokens_gives_length(tiny_backend: TransformersBackend) -> None:
    [completion] = tiny_backend.generate(
        CONVERSATIONS[:1], SamplingParams(max_tokens=7, temperature=0)
    )
    assert completion.finish_reason == "length"
    assert len(completion.completion_token_ids) == len(completion.logprobs) == 7


def test_stop_string_truncates_text_and_ids_consistently(tiny_backend: TransformersBackend) -> None:
    tokenizer = tiny_backend.tokenizer
    [full] = tiny_backend.generate(CONVERSATIONS[1:2], SamplingParams(max_tokens=40, temperature=0))
    stop = ascii_run(full.text)
    [cut] = tiny_backend.generate(
        CONVERSATIONS[1:2], SamplingParams(max_tokens=40, temperature=0, stop=("@@never@@", stop))
    )
    assert cut.finish_reason == "stop"
    assert cut.text == full.text[: full.text.index(stop)]
    ids = cut.completion_token_ids
    assert ids == full.completion_token_ids[: len(ids)]  # exactly the tokens that were sampled
    assert len(cut.logprobs) == len(ids)
    assert tokenizer.decode(ids, skip_special_tokens=True).startswith(cut.text + stop)
    assert stop not in tokenizer.decode(ids[:-1], skip_special_tokens=True)  # stopped at once


def test_stop_token_ids_end_the_row_and_are_kept(tiny_backend: TransformersBackend) -> None:
    [full] = tiny_backend.generate(CONVERSATIONS[2:3], SamplingParams(max_tokens=30, temperature=0))
    token = full.completion_token_ids[4]
    first = full.completion_token_ids.index(token)
    [cut] = tiny_backend.generate(
        CONVERSATIONS[2:3], SamplingParams(max_tokens=30, temperature=0, stop_token_ids=(token,))
    )
    assert cut.finish_reason == "stop"
    assert cut.completion_token_ids == full.completion_token_ids[: first + 1]
    expected = tiny_backend.tokenizer.decode(
        full.completion_token_ids[:first], skip_special_tokens=True
    )
    assert cut.text == expected


def test_logprobs_match_a_teacher_forced_forward_pass(tiny_backend: TransformersBackend) -> None:
    # Sampled (not greedy), filtered, with rows of different lengths finishing at different steps
    # (so finished rows leave the batch mid-way).
    conversations = CONVERSATIONS
    params = [
        SamplingParams(max_tokens=n, temperature=t, top_p=p, top_k=k, seed=s)
        for n, t, p, k, s in [
            (6, 0.7, 0.9, 0, 1),
            (20, 1.3, 1.0, 50, 2),
            (11, 1.0, 0.8, 10, 3),
            (3, 0.0, 1.0, 0, 4),
        ]
    ]
    completions = tiny_backend.generate_each(conversations, params)
    for completion, p in zip(completions, params, strict=True):
        assert len(completion.completion_token_ids) == p.max_tokens
        expected = teacher_forced_logprobs(tiny_backend, completion)
        assert completion.logprobs == pytest.approx(expected, abs=1e-4)


def test_top_logprobs(tiny_backend: TransformersBackend) -> None:
    params = SamplingParams(max_tokens=5, temperature=0, top_logprobs=3)
    [completion] = tiny_backend.generate(CONVERSATIONS[:1], params)
    assert len(completion.top_logprobs) == 5
    for token, logprob, top in zip(
        completion.completion_token_ids, completion.logprobs, completion.top_logprobs, strict=True
    ):
        assert len(top) == 3
        best = next(iter(top))
        assert best == token and top[best] == pytest.approx(logprob)
        assert list(top.values()) == sorted(top.values(), reverse=True)
    [plain] = tiny_backend.generate(CONVERSATIONS[:1], SamplingParams(max_tokens=5, logprobs=False))
    assert plain.logprobs == [] and plain.top_logprobs == []


def test_count_tokens_agrees_with_prompt_ids(tiny_backend: TransformersBackend) -> None:
    tokenizer = tiny_backend.tokenizer
    completions = tiny_backend.generate(CONVERSATIONS, SamplingParams(max_tokens=1))
    for conversation, completion in zip(CONVERSATIONS, completions, strict=True):
        assert tiny_backend.count_tokens(conversation) == len(completion.prompt_token_ids)
        text = tokenizer.apply_chat_template(
            conversation, tokenize=False, add_generation_prompt=True
        )
        assert completion.prompt_token_ids == tokenizer(text, add_special_tokens=False)["input_ids"]


def test_context_limits(tiny_backend: TransformersBackend) -> None:
    small = TransformersBackend(tiny_backend.model, tiny_backend.tokenizer, max_context=24)
    prompt_tokens = small.count_tokens(CONVERSATIONS[0])
    assert prompt_tokens < 24
    [clipped] = small.generate(CONVERSATIONS[:1], SamplingParams(max_tokens=100, temperature=0))
    assert clipped.finish_reason == "length"
    assert len(clipped.completion_token_ids) == 24 - prompt_tokens
    with pytest.raises(ContextLengthError) as error:
        small.generate([CONVERSATIONS[0], CONVERSATIONS[1]], GREEDY)
    assert error.value.row == 1 and error.value.max_context == 24


def test_model_object_needs_a_tokenizer(tiny_backend: TransformersBackend) -> None:
    with pytest.raises(ValueError, match="tokenizer"):
        TransformersBackend(tiny_backend.model)


def test_weight_updates(tiny_model_dir: Path) -> None:
    import torch

    backend = TransformersBackend(tiny_model_dir, device="cpu")
    original = {k: v.clone() for k, v in backend.model.state_dict().items()}
    before = backend.generate(CONVERSATIONS[:2], GREEDY)
    name = "model.norm.weight"
    backend.update_weights({name: torch.full_like(original[name], -3.0)})
    assert backend.weights_version == 1
    changed = backend.generate(CONVERSATIONS[:2], GREEDY)
    assert [c.completion_token_ids for c in changed] != [c.completion_token_ids for c in before]
    backend.load_state_dict(original)
    assert backend.weights_version == 2
    after = backend.generate(CONVERSATIONS[:2], GREEDY)
    assert [c.completion_token_ids for c in after] == [c.completion_token_ids for c in before]
    with pytest.raises(KeyError):
        backend.update_weights([("no.such.weight", torch.zeros(1))])


def test_shares_the_model_object_with_a_trainer(tiny_backend: TransformersBackend) -> None:
    shared = TransformersBackend(tiny_backend.model, tiny_backend.tokenizer)
    assert shared.model is tiny_backend.model
    a = shared.generate(CONVERSATIONS[:1], GREEDY)[0]
    b = tiny_backend.generate(CONVERSATIONS[:1], GREEDY)[0]
    assert a.completion_token_ids == b.completion_token_ids


def test_importing_agents_stays_light() -> None:
    code = (
        "import sys, arenagym.agents, arenagym.agents.backends, arenagym.agents.serve, "
        "arenagym.agents.tiny_model, arenagym.agents.backends.hf, arenagym.agents.backends.vllm, "
        "arenagym.agents.backends.openai_compat\n"
        "heavy = [m for m in ('torch', 'transformers', 'openai', 'fastapi', 'vllm', 'httpx') "
        "if m in sys.modules]\n"
        "print(','.join(heavy))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""
