"""The rollout engine: many episodes at once on one LLM backend, generation batched across them.

Why: a model generates a batch of conversations nearly as fast as one, so episodes that wait for
the model at the same time should wait together. :class:`RolloutEngine` runs every episode as an
asyncio task with a :class:`~arenagym.agents.chat.ChatAgent`; their requests go through one
:class:`BatchingQueue`, which sends whatever is waiting to the backend as one ``generate`` call
(in a thread, so the event loop keeps running) as soon as every live episode is waiting, or once
no other request has arrived for ``max_wait_s`` while some are still busy in their env. Env calls
(``gym.make``, ``reset``, ``step``, ``close``) run in a thread pool, so a slow env never holds up
the others.

Budgets: ``max_turns`` (``stop_reason="max_turns"``), ``max_tokens_per_turn``,
``max_total_tokens`` per episode (``"max_tokens"``) and the model's context
(``"context_overflow"``). An exception from the env or the backend ends only its episode, with
``stop_reason="env_error"`` and the error recorded (optionally retried once on a fresh env).
Each episode is played by :func:`~arenagym.agents.episode.aplay_episode`, the loop the benchmark
runner plays with too; what the engine does its own way (the agent awaited on the engine's loop,
a failed generation as ``env_error``) and why is written there.

The output is one :class:`Trajectory` per episode, in input order: per turn the observation,
the action, the prompt and completion token ids, log-probabilities, the reward and its
components; the final stop reason; JSONL via :func:`write_jsonl` / :func:`read_jsonl`.

Example:
    >>> from arenagym.agents.backends.interface import Completion, SamplingParams
    >>> class Boxed42:  # a stand-in backend that always answers 42
    ...     max_context = 4096
    ...     def count_tokens(self, conversation):
    ...         return 10
    ...     def generate(self, conversations, params):
    ...         return [Completion("\\\\boxed{42}", [1], [7], [-0.25]) for _ in conversations]
    >>> episodes = [EpisodeSpec("Math-v0", {"difficulty": 1}, seed=s) for s in range(3)]
    >>> trajectories = rollout(Boxed42(), episodes, RolloutConfig(SamplingParams(max_tokens=4)))
    >>> [t.stop_reason in ("solved", "failed") for t in trajectories]
    [True, True, True]
    >>> trajectories[0].steps[0].completion_token_ids, trajectories[0].steps[0].logprobs
    ([7], [-0.25])

The benchmark runner gets the same batching without this engine: a ``ChatAgent`` awaited with
``aact`` sends its requests through :func:`shared_queue` (one queue per backend and event loop).
"""

from __future__ import annotations

import asyncio
import inspect
import json
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import IO, Any

from arenagym.agents.backends.interface import (
    GenerationBackend,
    SamplingParams,
)
from arenagym.agents.batching import BatchingQueue
from arenagym.agents.chat import (
    ChatAgent,
    PromptTemplate,
    derive_seed,
    template_for_env,
)
from arenagym.agents.episode import AgentCalls, EnvStep, aplay_episode, describe, in_executor

__all__ = [
    "EpisodeSpec",
    "RolloutConfig",
    "RolloutEngine",
    "Step",
    "Trajectory",
    "read_jsonl",
    "rollout",
    "write_jsonl",
]


# --------------------------------------------------------------------------- trajectories


@dataclass(frozen=True)
class EpisodeSpec:
    """One episode to play: ``gym.make(env_id, **env_kwargs)`` then ``reset(seed, options)``."""

    env_id: str
    env_kwargs: Mapping[str, Any] = field(default_factory=dict)
    seed: int | None = None
    options: Mapping[str, Any] | None = None


@dataclass
class Step:
    """One turn: what the agent saw and said, the tokens it sampled, and what it earned."""

    observation: str
    action: str
    reward: float
    reward_components: dict[str, float] = field(default_factory=dict)
    prompt_token_ids: list[int] = field(default_factory=list)
    completion_token_ids: list[int] = field(default_factory=list)
    logprobs: list[float] = field(default_factory=list)
    finish_reason: str = "stop"
    invalid_action: bool = False


@dataclass
class Trajectory:
    """One played episode. ``reward`` is the sum of the steps' rewards (the return),
    ``clean_reward`` the sum of ``info["clean_reward"]`` where the env reports it (else of the
    rewards), ``final_reward`` the last step's reward. ``error`` holds the exception of an
    ``env_error`` episode (and of the first attempt when it was retried)."""

    index: int
    env_id: str
    env_kwargs: dict[str, Any]
    seed: int | None
    stop_reason: str
    steps: list[Step] = field(default_factory=list)
    messages: list[dict[str, str]] = field(default_factory=list)
    system_prompt: str = ""
    task_id: str | None = None
    final_observation: str = ""
    reward: float = 0.0
    clean_reward: float = 0.0
    error: str | None = None
    attempts: int = 1
    duration_s: float = 0.0
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def final_reward(self) -> float:
        """The reward of the last step (0 for an episode without steps)."""
        return self.steps[-1].reward if self.steps else 0.0

    @property
    def completion_tokens(self) -> int:
        """Completion tokens sampled in this episode."""
        return sum(len(step.completion_token_ids) for step in self.steps)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (:meth:`from_dict` inverts it)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Trajectory:
        """The trajectory that :meth:`to_dict` wrote."""
        fields = dict(data)
        fields["steps"] = [Step(**step) for step in fields.get("steps", [])]
        return cls(**fields)


def write_jsonl(trajectories: Iterable[Trajectory], file: str | Path | IO[str]) -> None:
    """Write one JSON object per trajectory per line (a path is overwritten).

    Example:
        >>> import io
        >>> buffer = io.StringIO()
        >>> t = Trajectory(0, "Math-v0", {}, 3, "solved", [Step("1+1?", "2", 1.0, {"correct": 1.0})])
        >>> write_jsonl([t], buffer)
        >>> read_jsonl(io.StringIO(buffer.getvalue())) == [t]
        True
    """
    if isinstance(file, str | Path):
        with open(file, "w", encoding="utf-8") as handle:
            write_jsonl(trajectories, handle)
        return
    for trajectory in trajectories:
        file.write(json.dumps(trajectory.to_dict(), ensure_ascii=False, default=repr) + "\n")


def read_jsonl(file: str | Path | IO[str]) -> list[Trajectory]:
    """The trajectories of a file written by :func:`write_jsonl`."""
    if isinstance(file, str | Path):
        with open(file, encoding="utf-8") as handle:
            return read_jsonl(handle)
    return [Trajectory.from_dict(json.loads(line)) for line in file if line.strip()]


# --------------------------------------------------------------------------- the engine


@dataclass(frozen=True)
class RolloutConfig:
    """How :class:`RolloutEngine` plays.

    Args:
        sampling: sampling parameters of every turn.
        max_turns: end an episode with ``"max_turns"`` after this many turns (``None``: the env
            decides; ``max_turns_default`` still guards against an env that never ends).
        max_tokens_per_turn: overrides ``sampling.max_tokens``.
        max_total_tokens: completion tokens per episode; then ``"max_tokens"``.
        max_context: the context budget (default: the backend's); then ``"context_overflow"``.
        concurrency: episodes in flight at once.
        env_threads: threads for env calls.
        max_batch_size: the most conversations per backend call.
        max_wait_s: how long a request waits for others while some episodes are in their env
            (counted from the latest request that arrived).
        retry_env_errors: play an ``env_error`` episode once more on a fresh env.
        templates: prompt templates by env id or family (see
            :func:`~arenagym.agents.chat.template_for_env`).
    """

    sampling: SamplingParams = field(default_factory=SamplingParams)
    max_turns: int | None = None
    max_tokens_per_turn: int | None = None
    max_total_tokens: int | None = None
    max_context: int | None = None
    concurrency: int = 256
    env_threads: int = 8
    max_batch_size: int = 64
    max_wait_s: float = 0.01
    retry_env_errors: bool = False
    templates: Mapping[str, PromptTemplate] | None = None

    #: The turn limit when neither ``max_turns`` nor the env ends an episode.
    max_turns_default: int = 1000

    def __post_init__(self) -> None:
        for name in ("concurrency", "env_threads", "max_batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)!r}")
        for name in ("max_turns", "max_tokens_per_turn", "max_total_tokens", "max_context"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be >= 1 or None, got {value!r}")

    @property
    def turn_sampling(self) -> SamplingParams:
        """``sampling`` with ``max_tokens_per_turn`` applied."""
        if self.max_tokens_per_turn is None:
            return self.sampling
        return replace(self.sampling, max_tokens=self.max_tokens_per_turn)


class _EngineCalls(AgentCalls):
    """How the engine calls its agent (see :mod:`arenagym.agents.episode` for why it differs from
    the benchmark runner): ``agent_factory`` and ``reset`` directly (an exception there is the
    trainer's bug and propagates), ``aact`` awaited on the engine's own loop, where the batching
    queue collects every episode's request; a failed generation ends the episode as
    ``env_error``. :attr:`turn` is the agent's record of the latest turn (its token ids)."""

    failure_reason = "env_error"

    def __init__(self, build: Callable[[], Any]) -> None:
        super().__init__(build)
        self.turn: Any = None

    async def build(self) -> Any:
        return self._build()

    async def reset(self, agent: Any, system_prompt: str) -> None:
        await _maybe_await(agent.reset(system_prompt))

    async def act(self, agent: Any, observation: Any, turn: int) -> str:
        action = await self.call(lambda: agent.aact(observation))
        self.turn = agent.turns[-1] if getattr(agent, "turns", None) else None
        return action


class RolloutEngine:
    """Plays episodes concurrently on one backend; see the module docstring.

    With a sampling ``seed``, episode *i* samples with ``derive_seed(seed, i)`` (and each turn
    with a seed derived from that), so the episodes differ from each other — also those of the
    same env seed, as GRPO groups need — and a run replays exactly on a backend with per-row
    seeds. ``agent_factory(spec, queue, index)`` may replace the default ``ChatAgent`` (it must have
    ``reset`` and ``async aact``; its ``turns`` list, if any, supplies the token records).
    ``make_env(spec)`` may replace ``gym.make`` (e.g. :class:`~arenagym.agents.cluster.EnvHosts`
    builds the env on a Ray actor and returns a proxy with ``reset``, ``step`` and ``close``).
    """

    def __init__(
        self,
        backend: GenerationBackend,
        config: RolloutConfig | None = None,
        agent_factory: Callable[[EpisodeSpec, BatchingQueue, int], Any] | None = None,
        make_env: Callable[[EpisodeSpec], Any] | None = None,
    ) -> None:
        self.backend = backend
        self.config = config or RolloutConfig()
        self.agent_factory = agent_factory or self._chat_agent
        self.make_env = make_env or _gym_make
        #: Sizes of the backend calls of the last run.
        self.batch_sizes: list[int] = []

    def run(self, episodes: Sequence[EpisodeSpec]) -> list[Trajectory]:
        """Play ``episodes``; one trajectory each, in order. Not from inside an event loop."""
        return asyncio.run(self.arun(episodes))

    async def arun(self, episodes: Sequence[EpisodeSpec]) -> list[Trajectory]:
        """:meth:`run` as a coroutine."""
        config = self.config
        queue = BatchingQueue(
            self.backend, max_batch_size=config.max_batch_size, max_wait_s=config.max_wait_s
        )
        executor = ThreadPoolExecutor(config.env_threads, thread_name_prefix="arenagym-env")
        semaphore = asyncio.Semaphore(config.concurrency)

        async def play(index: int, spec: EpisodeSpec) -> Trajectory:
            async with semaphore:
                queue.episode_started()
                try:
                    return await self._episode(index, spec, queue, executor)
                finally:
                    queue.episode_finished()

        try:
            tasks = [asyncio.create_task(play(i, spec)) for i, spec in enumerate(episodes)]
            try:
                return list(await asyncio.gather(*tasks))
            except BaseException:
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
                raise
        finally:
            self.batch_sizes = list(queue.batch_sizes)
            await queue.aclose()
            executor.shutdown(wait=False, cancel_futures=True)

    def _chat_agent(self, spec: EpisodeSpec, queue: BatchingQueue, index: int) -> ChatAgent:
        config = self.config
        sampling = config.turn_sampling
        if sampling.seed is not None:  # each episode its own stream, the same in every run
            sampling = replace(sampling, seed=derive_seed(sampling.seed, index))
        return ChatAgent(
            self.backend,
            sampling,
            template=template_for_env(spec.env_id, config.templates),
            max_context=config.max_context,
            max_total_tokens=config.max_total_tokens,
            queue=queue,
        )

    async def _episode(
        self, index: int, spec: EpisodeSpec, queue: BatchingQueue, executor: ThreadPoolExecutor
    ) -> Trajectory:
        first = await self._attempt(index, spec, queue, executor)
        if first.stop_reason != "env_error" or not self.config.retry_env_errors:
            return first
        second = await self._attempt(index, spec, queue, executor)
        second.attempts = 2
        second.info["first_attempt_error"] = first.error
        return second

    async def _attempt(
        self, index: int, spec: EpisodeSpec, queue: BatchingQueue, executor: ThreadPoolExecutor
    ) -> Trajectory:
        """Play ``spec`` once with :func:`~arenagym.agents.episode.aplay_episode` and record
        every turn with its token ids."""
        started = time.perf_counter()
        trajectory = Trajectory(
            index=index,
            env_id=spec.env_id,
            env_kwargs=dict(spec.env_kwargs),
            seed=spec.seed,
            stop_reason="",
        )
        calls = _EngineCalls(partial(self.agent_factory, spec, queue, index))

        def record(step: EnvStep) -> None:
            turn = calls.turn
            trajectory.steps.append(
                Step(
                    observation=step.observation,
                    action=step.action,
                    reward=step.reward,
                    reward_components=dict(step.info.get("reward_components", {})),
                    prompt_token_ids=list(turn.prompt_token_ids) if turn else [],
                    completion_token_ids=list(turn.completion_token_ids) if turn else [],
                    logprobs=list(turn.logprobs) if turn else [],
                    finish_reason=turn.finish_reason if turn else "stop",
                    invalid_action=bool(step.info.get("invalid_action", False)),
                )
            )

        result = await aplay_episode(
            partial(self.make_env, spec),
            calls,
            seed=spec.seed,
            options=spec.options,
            max_steps=self.config.max_turns or self.config.max_turns_default,
            max_steps_reason="max_turns",
            run_env=in_executor(executor),
            on_step=record,
        )
        trajectory.stop_reason = result.stop_reason
        trajectory.system_prompt = result.system_prompt
        trajectory.task_id = result.task_id
        trajectory.reward = result.reward
        trajectory.clean_reward = result.clean_reward
        if result.stop is not None:
            trajectory.info.update(result.stop.info, stop_message=str(result.stop))
        if result.failure is not None:
            trajectory.error = describe(result.failure.error)
            trajectory.info["traceback"] = result.failure.trace_text
        elif result.env_error is not None:
            trajectory.error = str(result.env_error)
        if result.close_error is not None:
            trajectory.info["close_error"] = result.close_error
        trajectory.final_observation = result.observation if trajectory.steps else ""
        if result.agent is not None:
            trajectory.messages = [dict(m) for m in getattr(result.agent, "messages", [])]
        trajectory.duration_s = time.perf_counter() - started
        return trajectory


def _gym_make(spec: EpisodeSpec) -> Any:
    """``gym.make(spec.env_id, **spec.env_kwargs)``."""
    import gymnasium as gym

    import arenagym.envs  # noqa: F401  (registers every arenagym env id)

    return gym.make(spec.env_id, **dict(spec.env_kwargs))


async def _maybe_await(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


def rollout(
    backend: GenerationBackend,
    episodes: Sequence[EpisodeSpec],
    config: RolloutConfig | None = None,
) -> list[Trajectory]:
    """Play ``episodes`` on ``backend`` with :class:`RolloutEngine`; one trajectory each."""
    return RolloutEngine(backend, config).run(episodes)
