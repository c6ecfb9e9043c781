"""The one interface every generation backend implements: chat conversations in, completions out.

A backend takes a batch of chat conversations (OpenAI-style message lists) and sampling parameters
and returns, per conversation, the completion text together with the exact token ids of the prompt
and of the completion and the log-probability of every completion token — what a trainer needs to
learn from a trajectory exactly as it was sampled.

Backends: :mod:`arenagym.agents.backends.hf` (Hugging Face transformers, in-process, CPU or GPU),
:mod:`arenagym.agents.backends.openai_compat` (any OpenAI-compatible server over HTTP) and
:mod:`arenagym.agents.backends.vllm` (vLLM in-process).

Example:
    >>> params = SamplingParams(max_tokens=16, temperature=0.0)
    >>> params.greedy
    True
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, runtime_checkable

Message = dict[str, str]
Conversation = list[Message]
FinishReason = Literal["stop", "length"]


@dataclass(frozen=True)
class SamplingParams:
    """How to sample one completion. ``seed`` makes sampling reproducible where the backend can."""

    max_tokens: int = 256
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0  # 0 = no top-k filtering
    stop: tuple[str, ...] = ()
    seed: int | None = None
    logprobs: bool = True
    #: Token ids that end the completion besides the model's EOS ids (kept as the last completion id).
    stop_token_ids: tuple[int, ...] = ()
    #: How many most likely alternatives to report per completion token (0 = none; at most 20).
    top_logprobs: int = 0

    def __post_init__(self) -> None:
        # Accept a single string or any iterable for the tuple fields, so that the params stay
        # hashable (the server groups and caches by them).
        if isinstance(self.stop, str):
            object.__setattr__(self, "stop", (self.stop,))
        elif not isinstance(self.stop, tuple):
            object.__setattr__(self, "stop", tuple(self.stop))
        if not isinstance(self.stop_token_ids, tuple):
            object.__setattr__(self, "stop_token_ids", tuple(int(t) for t in self.stop_token_ids))
        if any(not s for s in self.stop):
            raise ValueError("stop strings must be non-empty")
        if self.max_tokens < 1:
            raise ValueError(f"max_tokens must be >= 1, got {self.max_tokens}")
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.top_k < 0:
            raise ValueError(f"top_k must be >= 0, got {self.top_k}")
        if not 0 <= self.top_logprobs <= 20:
            raise ValueError(f"top_logprobs must be in [0, 20], got {self.top_logprobs}")

    @property
    def greedy(self) -> bool:
        """Temperature 0 means greedy decoding."""
        return self.temperature == 0


class ContextLengthError(ValueError):
    """A prompt does not fit the model's context: the caller should end the episode, not retry.

    >>> error = ContextLengthError(5000, 4096, row=3)
    >>> (error.prompt_tokens, error.max_context, error.row)
    (5000, 4096, 3)
    >>> print(error)
    prompt of row 3 has 5000 tokens; the model's context is 4096 tokens
    """

    def __init__(self, prompt_tokens: int, max_context: int, row: int | None = None) -> None:
        where = "prompt" if row is None else f"prompt of row {row}"
        super().__init__(
            f"{where} has {prompt_tokens} tokens; the model's context is {max_context} tokens"
        )
        self.prompt_tokens = prompt_tokens
        self.max_context = max_context
        self.row = row


@dataclass(frozen=True)
class Completion:
    """One sampled completion and the tokens it was sampled as.

    ``logprobs[i]`` is the log-probability of ``completion_token_ids[i]`` under the sampling
    distribution's model (before temperature/top-p/top-k). Backends that cannot report token ids or
    log-probabilities (some hosted APIs) leave those lists empty.

    ``completion_token_ids`` are all the tokens sampled, including a final EOS / stop token or the
    token that completed a stop string; ``text`` excludes the stop token and is cut right before the
    stop string (as vLLM does).
    """

    text: str
    prompt_token_ids: list[int] = field(default_factory=list)
    completion_token_ids: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    finish_reason: FinishReason = "stop"
    #: Per completion token, the ``params.top_logprobs`` most likely token ids and their
    #: log-probabilities, most likely first (empty unless requested and supported).
    top_logprobs: list[dict[int, float]] = field(default_factory=list)


@runtime_checkable
class GenerationBackend(Protocol):
    """What the chat agent, the rollout engine and the trainer call."""

    def generate(
        self, conversations: Sequence[Conversation], params: SamplingParams
    ) -> list[Completion]:
        """One completion per conversation, in order, generated as one batch where possible."""
        ...

    def count_tokens(self, conversation: Conversation) -> int:
        """The prompt length of ``conversation`` in tokens (chat template applied)."""
        ...

    @property
    def max_context(self) -> int | None:
        """The model's context length in tokens (prompt + completion); ``None`` when unknown
        (a hosted API that does not report it: a request that is too long is refused by it)."""
        ...


def chat_prompt_ids(tokenizer: Any, conversation: Conversation) -> list[int]:
    """The token ids of ``conversation`` rendered with ``tokenizer``'s chat template and the
    generation prompt — the prompt exactly as an in-process backend feeds it to the model."""
    text = tokenizer.apply_chat_template(
        list(conversation), tokenize=False, add_generation_prompt=True
    )
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])
