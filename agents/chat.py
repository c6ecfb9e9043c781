r"""The chat agent: an LLM that plays an env as a chat, keeping every token it sampled.

:class:`ChatAgent` turns an episode into a chat conversation — the env's system prompt (from the
reset info) as the system message, each observation as a user message, each of its replies as an
assistant message — and asks a :class:`~arenagym.agents.backends.interface.GenerationBackend` for the
next reply. Why a class of its own: the same agent runs in the benchmark runner (one agent per
episode, awaited with :meth:`ChatAgent.aact`) and in the rollout engine, and in both it records,
per turn, the exact prompt token ids, completion token ids and log-probabilities the backend used,
so that a trainer learns from the trajectory exactly as it was sampled.

Budgets end the episode on purpose, never with an error: before each request the agent raises
:class:`~arenagym.agents.agent.EpisodeStop` with ``stop_reason="context_overflow"`` when the
prompt plus ``max_tokens`` would not fit ``max_context``, and ``"max_tokens"`` when the episode's
completion-token budget (``max_total_tokens``) is spent; the runner and the engine record it.

Prefix consistency. Per turn the records are exact. Whether the turns also join into one token
sequence — turn *k*'s prompt ids followed by its completion ids being a prefix of turn *k+1*'s
prompt ids, i.e. re-tokenising the recorded conversation reproducing the recorded ids (see
:func:`prefix_consistency`) — depends on the chat template and on the sample:

- It holds for ChatML-style templates that render every earlier message verbatim (the tiny test
  model's template, Qwen2/Qwen2.5, SmolLM), when the completion is the tokenizer's own encoding of
  its text and ended at the end-of-turn token or the token limit.
- It fails for templates that rewrite earlier assistant turns: Qwen3 and QwQ drop the
  ``<think>...</think>`` reasoning of assistant turns before the last user message; DeepSeek-R1
  drops everything up to ``</think>``; and templates that ``trim`` message content (Llama 3,
  Mistral) change completions that start or end with whitespace. It also fails for templates whose
  generation prompt differs from how an assistant turn is rendered later (DeepSeek-R1 opens the
  generation prompt with ``<think>\n``).
- It fails with any template when the model sampled a non-canonical tokenisation of its text (a
  sequence of tokens the tokenizer would merge differently; common for random or small models),
  or when a stop string cut the text inside a token.

Where it fails, train on the per-turn records (each turn's prompt and completion ids are exactly
what was sampled), not on a re-tokenised conversation.

Example:
    >>> from arenagym.agents.backends.interface import Completion, SamplingParams
    >>> class Echo:  # a stand-in backend: replies with the last user message reversed
    ...     max_context = 64
    ...     def count_tokens(self, conversation):
    ...         return sum(len(m["content"]) for m in conversation)
    ...     def generate(self, conversations, params):
    ...         return [Completion(c[-1]["content"][::-1], completion_token_ids=[1, 2],
    ...                            logprobs=[-0.5, -0.1]) for c in conversations]
    >>> agent = ChatAgent(Echo(), SamplingParams(max_tokens=8))
    >>> agent.reset("Reverse it.")
    >>> agent.act("abc")
    'cba'
    >>> [m["role"] for m in agent.messages], agent.completion_tokens
    (['system', 'user', 'assistant'], 2)
    >>> agent.act("x" * 60)
    Traceback (most recent call last):
    ...
    arenagym.agents.agent.EpisodeStop: the next request needs 77 + 8 tokens, over the context of 64
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from arenagym.agents.agent import EpisodeStop
from arenagym.agents.backends.interface import (
    Completion,
    ContextLengthError,
    Conversation,
    GenerationBackend,
    Message,
    SamplingParams,
)
from arenagym.agents.batching import check_context, shared_queue
from arenagym.agents.thread_batching import thread_batcher

if TYPE_CHECKING:
    from arenagym.agents.batching import BatchingQueue

__all__ = [
    "FAMILY_TEMPLATES",
    "AgentTurn",
    "ChatAgent",
    "PromptTemplate",
    "derive_seed",
    "prefix_consistency",
    "template_for_env",
]


@dataclass(frozen=True)
class PromptTemplate:
    """How an env's text becomes chat messages (before the model's own chat template).

    ``system`` formats the reset info's system prompt (``{system_prompt}``), ``user`` each
    observation (``{observation}``); ``first_user`` (default ``user``) the first one, e.g. to
    add instructions once. ``system_in_user`` puts the system text at the top of the first user
    message instead of a system message, for models whose chat template has no system role
    (Gemma). An empty system text sends no system message.

    Example:
        >>> t = PromptTemplate(user="Observation:\\n{observation}", system_in_user=True)
        >>> t.start("Be brief.")
        []
        >>> t.user_message("2+2?", first=True, system_prompt="Be brief.")
        {'role': 'user', 'content': 'Be brief.\\n\\nObservation:\\n2+2?'}
    """

    system: str = "{system_prompt}"
    user: str = "{observation}"
    first_user: str | None = None
    system_in_user: bool = False

    def start(self, system_prompt: str) -> list[Message]:
        """The messages an episode starts with."""
        text = self.system.format(system_prompt=system_prompt)
        if self.system_in_user or not text:
            return []
        return [{"role": "system", "content": text}]

    def user_message(self, observation: str, *, first: bool, system_prompt: str = "") -> Message:
        """The user message for ``observation`` (``first``: the episode's first one)."""
        form = self.first_user if first and self.first_user is not None else self.user
        text = form.format(observation=observation)
        if first and self.system_in_user:
            system = self.system.format(system_prompt=system_prompt)
            text = f"{system}\n\n{text}" if system else text
        return {"role": "user", "content": text}


#: Prompt templates for env families that need one, by family (the env id before ``-v``).
#: The built-in families' system prompts already say how to answer, so none is needed yet;
#: add an entry, or pass ``template=``, for a family whose observations need framing.
FAMILY_TEMPLATES: dict[str, PromptTemplate] = {}


def template_for_env(
    env_id: str, templates: Mapping[str, PromptTemplate] | None = None
) -> PromptTemplate:
    """The template for ``env_id``: by exact id, then by family, in ``templates`` then
    :data:`FAMILY_TEMPLATES`; the plain :class:`PromptTemplate` otherwise.

    Example:
        >>> custom = {"Math": PromptTemplate(user="Problem: {observation}")}
        >>> template_for_env("Math-v0", custom).user
        'Problem: {observation}'
        >>> template_for_env("Other-v1", custom) == PromptTemplate()
        True
    """
    family = env_id.rsplit("/", 1)[-1].split("-v")[0]
    for table in (templates or {}, FAMILY_TEMPLATES):
        for key in (env_id, family):
            if key in table:
                return table[key]
    return PromptTemplate()


@dataclass(frozen=True)
class AgentTurn:
    """One model call of an episode, exactly as sampled.

    ``logprobs[i]`` is the log-probability of ``completion_token_ids[i]``; backends that report
    no token ids (some hosted APIs) leave the id and log-probability lists empty.
    """

    observation: str
    text: str
    prompt_token_ids: list[int] = field(default_factory=list)
    completion_token_ids: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    finish_reason: str = "stop"


class ChatAgent:
    """An LLM agent over a generation backend; see the module docstring.

    Args:
        backend: any :class:`~arenagym.agents.backends.interface.GenerationBackend`.
        sampling: sampling parameters for every turn (default: ``SamplingParams()``); with a
            ``seed``, turn *t* samples with ``derive_seed(seed, t)``, so turns differ but an
            episode replays exactly.
        template: how env text becomes messages (default: the plain :class:`PromptTemplate`).
        max_context: the context budget in tokens (default: ``backend.max_context``).
        max_total_tokens: the episode's budget of completion tokens over all turns (default:
            none); a turn asks for at most what is left, and a spent budget ends the episode
            with ``stop_reason="max_tokens"``.
        queue: the :class:`~arenagym.agents.batching.BatchingQueue` that :meth:`aact` sends
            requests through (default: one shared per backend and event loop), so concurrent
            episodes are generated as one batch.

    Attributes:
        messages: the conversation so far.
        turns: one :class:`AgentTurn` per model call this episode.
    """

    def __init__(
        self,
        backend: GenerationBackend,
        sampling: SamplingParams | None = None,
        *,
        template: PromptTemplate | None = None,
        max_context: int | None = None,
        max_total_tokens: int | None = None,
        queue: BatchingQueue | None = None,
    ) -> None:
        if max_context is not None and max_context < 1:
            raise ValueError(f"max_context must be >= 1 or None, got {max_context!r}")
        if max_total_tokens is not None and max_total_tokens < 1:
            raise ValueError(f"max_total_tokens must be >= 1 or None, got {max_total_tokens!r}")
        self.backend = backend
        self.sampling = sampling or SamplingParams()
        self.template = template or PromptTemplate()
        self._max_context = max_context
        self.max_total_tokens = max_total_tokens
        self.queue = queue
        self.system_prompt = ""
        self.messages: list[Message] = []
        self.turns: list[AgentTurn] = []

    @property
    def max_context(self) -> int:
        """The context budget: the constructor's ``max_context`` or the backend's."""
        return self._max_context if self._max_context is not None else self.backend.max_context

    @property
    def completion_tokens(self) -> int:
        """Completion tokens sampled this episode (what ``max_total_tokens`` limits)."""
        return sum(len(turn.completion_token_ids) for turn in self.turns)

    def reset(self, system_prompt: str) -> None:
        """Start a new conversation whose instructions are ``system_prompt``."""
        self.system_prompt = system_prompt
        self.messages = self.template.start(system_prompt)
        self.turns = []

    async def areset(self, system_prompt: str) -> None:
        """:meth:`reset` (for callers that await agents)."""
        self.reset(system_prompt)

    def act(self, observation: str) -> str:
        """The model's reply to ``observation``: a blocking backend call, batched with those of
        other threads acting on the same backend at the same time (the match runner's games).

        Raises:
            EpisodeStop: ``context_overflow`` or ``max_tokens`` (see the module docstring).
        """
        conversation, params = self._prepare(observation)
        try:
            self._check_context(self.backend.count_tokens(conversation), params)
            # joins the requests of other threads acting on the same backend right now
            completion = thread_batcher(self.backend).generate(conversation, params)
        except ContextLengthError as error:
            self.messages.pop()
            if isinstance(error, EpisodeStop):  # already says context_overflow
                raise
            raise _overflow(error) from error
        except BaseException:
            self.messages.pop()
            raise
        return self._record(observation, completion)

    async def aact(self, observation: str) -> str:
        """:meth:`act` for the event loop: the request joins a batch of concurrent episodes'."""
        conversation, params = self._prepare(observation)
        queue = self.queue or shared_queue(self.backend)
        try:
            completion = await queue.generate(
                conversation, params, max_context=self._max_context, check_context=True
            )
        except ContextLengthError as error:
            self.messages.pop()
            if isinstance(error, EpisodeStop):  # already says context_overflow
                raise
            raise _overflow(error) from error
        except BaseException:
            self.messages.pop()
            raise
        return self._record(observation, completion)

    # ----------------------------------------------------------------------- internals
    def _prepare(self, observation: str) -> tuple[Conversation, SamplingParams]:
        """Append the user message and pick this turn's sampling parameters."""
        params = self.sampling
        if self.max_total_tokens is not None:
            left = self.max_total_tokens - self.completion_tokens
            if left <= 0:
                raise EpisodeStop(
                    "max_tokens",
                    f"the episode's budget of {self.max_total_tokens} completion tokens is spent",
                    completion_tokens=self.completion_tokens,
                )
            if left < params.max_tokens:
                params = replace(params, max_tokens=left)
        if params.seed is not None:  # a fresh, reproducible stream per turn
            params = replace(params, seed=derive_seed(params.seed, len(self.turns)))
        message = self.template.user_message(
            observation if isinstance(observation, str) else str(observation),
            first=not self.turns,
            system_prompt=self.system_prompt,
        )
        self.messages.append(message)
        return list(self.messages), params

    def _check_context(self, prompt_tokens: int, params: SamplingParams) -> None:
        check_context(prompt_tokens, params, self.max_context)

    def _record(self, observation: str, completion: Completion) -> str:
        self.messages.append({"role": "assistant", "content": completion.text})
        self.turns.append(
            AgentTurn(
                observation=observation,
                text=completion.text,
                prompt_token_ids=list(completion.prompt_token_ids),
                completion_token_ids=list(completion.completion_token_ids),
                logprobs=list(completion.logprobs),
                finish_reason=completion.finish_reason,
            )
        )
        return completion.text


def derive_seed(seed: int, *salt: int) -> int:
    """A seed for a sub-stream of ``seed`` (per episode, per turn), reproducible and spread out.

    Example:
        >>> derive_seed(0, 1) == derive_seed(0, 1) != derive_seed(0, 2)
        True
    """
    value = seed
    for part in salt:
        value = (value * 1_000_003 + part + 0x9E3779B9) % (2**31 - 1)
    return value


def prefix_consistency(
    turns: Sequence[AgentTurn],
    full_ids: Sequence[int] | None = None,
    end_of_turn: int | None = None,
) -> list[str]:
    """The places where the turns do not join into one token sequence (empty: consistent).

    Checks that each turn's prompt ids followed by its completion ids (without a trailing
    ``end_of_turn`` id, which the template writes itself) start the next turn's prompt ids, and,
    given ``full_ids`` (the whole recorded conversation re-tokenised with the chat template), that
    the last turn's do too.

    Example:
        >>> a = AgentTurn("q1", "a", prompt_token_ids=[1, 2], completion_token_ids=[3, 9])
        >>> b = AgentTurn("q2", "b", prompt_token_ids=[1, 2, 3, 9, 4], completion_token_ids=[5])
        >>> prefix_consistency([a, b], full_ids=[1, 2, 3, 9, 4, 5, 9], end_of_turn=9)
        []
        >>> prefix_consistency([a, b], full_ids=[1, 2, 3, 9, 4, 6, 9], end_of_turn=9)
        ['turn 1: prompt + completion (6 ids) is not a prefix of the re-tokenised conversation']
    """
    problems = []
    for index, turn in enumerate(turns):
        ids = list(turn.prompt_token_ids) + list(turn.completion_token_ids)
        if end_of_turn is not None and ids and ids[-1] == end_of_turn and turn.completion_token_ids:
            ids.pop()
        if index + 1 < len(turns):
            following, what = list(turns[index + 1].prompt_token_ids), "the next turn's prompt"
        elif full_ids is not None:
            following, what = list(full_ids), "the re-tokenised conversation"
        else:
            continue
        if following[: len(ids)] != ids:
            problems.append(
                f"turn {index}: prompt + completion ({len(ids)} ids) is not a prefix of {what}"
            )
    return problems


def _overflow(error: ContextLengthError) -> EpisodeStop:
    """A backend's context error as the end of the episode (``context_overflow``), not a failure."""
    return EpisodeStop(
        "context_overflow",
        str(error),
        prompt_tokens=error.prompt_tokens,
        max_context=error.max_context,
    )
