"""The vLLM backend on the tiny model. Needs vLLM and a GPU; skips cleanly without them."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest

from arenagym.agents.backends import SamplingParams

CONVERSATIONS = [
    [{"role": "user", "content": "What is 2+2?"}],
    [{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": "Hello there!"}],
]


def vllm_is_installed() -> bool:
    return importlib.util.find_spec("vllm") is not None


#: Marks the tests that run vLLM; evaluated before any fixture, so nothing is built just to skip.
requires_vllm = pytest.mark.skipif(
    not vllm_is_installed(), reason="vLLM is not installed (the vllm extra; it needs a GPU to run)"
)


@pytest.mark.skipif(
    vllm_is_installed(), reason="vLLM is installed: this checks the message without it"
)
def test_without_vllm_the_backend_says_what_to_install(tmp_path: Path) -> None:
    from arenagym.agents.backends.vllm import VLLMBackend

    with pytest.raises(ImportError, match=r"arenagym\[vllm\]"):
        VLLMBackend(tmp_path)


@pytest.fixture(scope="module")
def vllm_backend(request: pytest.FixtureRequest) -> Any:
    # Skip before building the tiny model: nothing below can run without vLLM and a GPU.
    pytest.importorskip(
        "vllm", reason="vLLM is not installed (the vllm extra; it needs a GPU to run)"
    )
    import torch

    if not torch.cuda.is_available():
        pytest.skip("vLLM needs a CUDA GPU; none is available")
    from arenagym.agents.backends.vllm import VLLMBackend

    tiny_model_dir = request.getfixturevalue("tiny_model_dir")

    return VLLMBackend(
        tiny_model_dir, dtype="float32", gpu_memory_utilization=0.2, enforce_eager=True, seed=0
    )


@requires_vllm
def test_generate_greedy_batch(vllm_backend: Any, tiny_backend: Any) -> None:
    params = SamplingParams(max_tokens=8, temperature=0)
    completions = vllm_backend.generate(CONVERSATIONS, params)
    for conversation, completion in zip(CONVERSATIONS, completions, strict=True):
        assert completion.prompt_token_ids == tiny_backend.prompt_ids(conversation)
        assert len(completion.completion_token_ids) == len(completion.logprobs) <= 8
        [local] = tiny_backend.generate([conversation], params)
        assert completion.completion_token_ids[:3] == local.completion_token_ids[:3]
        assert completion.logprobs[:3] == pytest.approx(local.logprobs[:3], abs=1e-2)


@requires_vllm
def test_seeded_sampling_and_count_tokens(vllm_backend: Any) -> None:
    params = SamplingParams(max_tokens=6, temperature=1.0, seed=3)
    first = vllm_backend.generate(CONVERSATIONS, params)
    again = vllm_backend.generate(CONVERSATIONS, params)
    assert [c.completion_token_ids for c in first] == [c.completion_token_ids for c in again]
    assert vllm_backend.count_tokens(CONVERSATIONS[0]) == len(first[0].prompt_token_ids)
    assert vllm_backend.max_context == 2048


@requires_vllm
def test_update_weights_changes_the_output(vllm_backend: Any, tiny_backend: Any) -> None:
    import torch

    params = SamplingParams(max_tokens=6, temperature=0)
    before = vllm_backend.generate(CONVERSATIONS, params)
    state = tiny_backend.model.state_dict()
    vllm_backend.update_weights(
        {"model.norm.weight": torch.full_like(state["model.norm.weight"], -3.0)}
    )
    changed = vllm_backend.generate(CONVERSATIONS, params)
    vllm_backend.update_weights({"model.norm.weight": state["model.norm.weight"]})
    restored = vllm_backend.generate(CONVERSATIONS, params)
    assert [c.completion_token_ids for c in changed] != [c.completion_token_ids for c in before]
    assert [c.completion_token_ids for c in restored] == [c.completion_token_ids for c in before]
    assert vllm_backend.weights_version == 2
