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

The output is one :class:`Trajectory` per episode, in input order: per turn the observation,
the action, the prompt and completion token ids, log-probabilities, the reward and its
components; the final stop reason; JSONL via :func:`write_jsonl` / :func:`read_jsonl`.

Example:
    >>> from arenagym.agents.backends.base import Completion, SamplingParams
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
import contextlib
import inspect
import json
import time
import traceback
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import IO, Any

from arenagym.agents.backends.base import (
    Completion,
    Conversation,
    GenerationBackend,
    SamplingParams,
)
from arenagym.agents.base import EpisodeStop
from arenagym.agents.chat import (
    ChatAgent,
    PromptTemplate,
    check_context,
    derive_seed,
    template_for_env,
)

__all__ = [
    "BatchingQueue",
    "EpisodeSpec",
    "RolloutConfig",
    "RolloutEngine",
    "Step",
    "Trajectory",
    "read_jsonl",
    "rollout",
    "shared_queue",
    "write_jsonl",
]


# --------------------------------------------------------------------------- batching queue


@dataclass
class _Request:
    conversation: Conversation
    params: SamplingParams
    max_context: int | None  # checked when set, or when check_context (then: the backend's)
    check_context: bool
    future: asyncio.Future[Completion]

    def limit(self, backend: GenerationBackend) -> int | None:
        if self.max_context is not None:
            return self.max_context
        return backend.max_context if self.check_context else None


#: Event-loop turns the queue yields, once its wait is over, before it sends a partial batch.
_LATE_TURNS = 4


class BatchingQueue:
    """Collects the generation requests of concurrent episodes and sends them as batches.

    ``await queue.generate(conversation, params)`` parks the request. One worker task sends
    every parked request to the backend as one ``generate_each(conversations, params_per_row)``
    call when the backend has it (the transformers backend: per-row seeds, so a seeded sample
    does not depend on the batch), else one ``generate`` call per distinct ``SamplingParams``
    apart from the seed (the call uses the first request's seed: reproducible as far as the
    batches are; in a single background thread: calls never overlap, so a backend needs no locking), as
    soon as ``max_batch_size`` are parked, or every live episode is waiting (when episodes are
    counted with :meth:`episode_started` / :meth:`episode_finished`), or ``max_wait_s`` after
    the first one arrived — when episodes are counted, ``max_wait_s`` after the latest one
    arrived: while counted episodes keep arriving (a rollout's start, when every episode resets
    its env at once), the batch waits for them rather than leave them waiting for a whole batch's
    generation; each counted episode adds at most one request, so the wait ends once no other
    arrives for ``max_wait_s`` or all are waiting. A request whose prompt plus ``max_tokens``
    exceeds its ``max_context`` raises :class:`~arenagym.agents.base.EpisodeStop`
    (``context_overflow``) instead; the prompt is measured with ``backend.count_tokens`` in the
    same thread. If a batch fails, its requests are retried one by one so that one bad request
    fails alone.

    A queue belongs to the event loop that first uses it. ``batch_sizes`` lists the size of
    every backend call made, for tests and measurements.
    """

    def __init__(
        self,
        backend: GenerationBackend,
        *,
        max_batch_size: int = 64,
        max_wait_s: float = 0.01,
    ) -> None:
        if max_batch_size < 1:
            raise ValueError(f"max_batch_size must be >= 1, got {max_batch_size!r}")
        if max_wait_s < 0:
            raise ValueError(f"max_wait_s must be >= 0, got {max_wait_s!r}")
        self.backend = backend
        self.max_batch_size = max_batch_size
        self.max_wait_s = max_wait_s
        self.batch_sizes: list[int] = []
        self._pending: list[_Request] = []
        self._live = 0
        self._wakeup: asyncio.Event | None = None
        self._worker: asyncio.Task[None] | None = None
        self._executor: ThreadPoolExecutor | None = None

    # ------------------------------------------------------------------ episode counting
    def episode_started(self) -> None:
        """Count one more live episode (one that will send requests)."""
        self._live += 1

    def episode_finished(self) -> None:
        """Count one live episode less; the others may now all be waiting."""
        self._live = max(0, self._live - 1)
        if self._wakeup is not None:
            self._wakeup.set()

    # ------------------------------------------------------------------------- requests
    async def generate(
        self,
        conversation: Conversation,
        params: SamplingParams,
        *,
        max_context: int | None = None,
        check_context: bool = False,
    ) -> Completion:
        """The completion of ``conversation``, generated in a batch with other waiting requests.

        A backend with an ``async def agenerate`` (HTTP) gets the request at once instead, as
        one of many concurrent requests: batching is then the server's job.

        Raises:
            EpisodeStop: ``context_overflow`` when the prompt plus ``params.max_tokens`` exceed
                ``max_context`` (if given; with ``check_context``, the backend's context).
            Exception: whatever the backend raised for this conversation.
        """
        loop = asyncio.get_running_loop()
        request = _Request(
            list(conversation), params, max_context, check_context, loop.create_future()
        )
        if inspect.iscoroutinefunction(getattr(self.backend, "agenerate", None)):
            return await self._direct(request)
        if self._wakeup is None:
            self._wakeup = asyncio.Event()
        self._pending.append(request)
        self._wakeup.set()
        if self._worker is None or self._worker.done():
            self._worker = loop.create_task(self._work(), name="arenagym-batching-queue")
        return await request.future

    async def _direct(self, request: _Request) -> Completion:
        """An async backend: check the context in a thread (it may ask the server), then await."""
        loop = asyncio.get_running_loop()

        def check() -> None:
            limit = request.limit(self.backend)
            if limit is not None:
                check_context(
                    self.backend.count_tokens(request.conversation), request.params, limit
                )

        await loop.run_in_executor(None, check)
        self.batch_sizes.append(1)
        completions = await self.backend.agenerate(  # type: ignore[attr-defined]
            [request.conversation], request.params
        )
        return completions[0]

    async def aclose(self) -> None:
        """Stop the worker and release the generation thread (pending requests are cancelled)."""
        if self._worker is not None:
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)
            self._worker = None
        for request in self._pending:
            request.future.cancel()
        self._pending.clear()
        if self._executor is not None:
            self._executor.shutdown(wait=False)
            self._executor = None

    # -------------------------------------------------------------------------- worker
    def _ready(self) -> bool:
        waiting = len(self._pending)
        return waiting >= self.max_batch_size or (self._live > 0 and waiting >= self._live)

    async def _work(self) -> None:
        loop = asyncio.get_running_loop()
        assert self._wakeup is not None
        while True:
            if not self._pending:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            deadline = loop.time() + self.max_wait_s
            seen, yielded = len(self._pending), False
            while not self._ready():
                left = deadline - loop.time()
                if left > 0:
                    self._wakeup.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wakeup.wait(), left)
                elif self._live > 0 and not yielded:
                    # The deadline passed, maybe while the event loop could not run (env threads
                    # holding the GIL): first let it deliver what the env threads finished.
                    for _ in range(_LATE_TURNS):
                        await asyncio.sleep(0)
                    yielded = True
                else:
                    break
                if self._live > 0 and len(self._pending) > seen:
                    # Counted episodes are still arriving (e.g. all of them resetting their
                    # envs at the start): wait max_wait_s more after each arrival rather than
                    # send part of them and leave the rest waiting for that whole batch.
                    seen, yielded = len(self._pending), False
                    deadline = loop.time() + self.max_wait_s
            batch = self._pending[: self.max_batch_size]
            del self._pending[: self.max_batch_size]
            batch = [request for request in batch if not request.future.done()]
            if batch:
                await self._send(batch)

    async def _send(self, batch: list[_Request]) -> None:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="arenagym-generate")
        loop = asyncio.get_running_loop()
        if callable(getattr(self.backend, "generate_each", None)):
            groups = [batch]  # one call, one SamplingParams per row
        else:  # seeds aside: per-request seeds would split every batch into ones
            by_params: dict[SamplingParams, list[_Request]] = {}
            for request in batch:
                by_params.setdefault(replace(request.params, seed=None), []).append(request)
            groups = list(by_params.values())
        for requests in groups:
            try:
                results = await loop.run_in_executor(self._executor, self._call, requests)
            except BaseException as error:  # cancelled while generating
                for request in requests:
                    if not request.future.done():
                        request.future.set_exception(error)
                raise
            for request, result in zip(requests, results, strict=True):
                if request.future.done():
                    continue
                if isinstance(result, BaseException):
                    request.future.set_exception(result)
                else:
                    request.future.set_result(result)

    def _generate(self, requests: list[_Request]) -> list[Completion]:
        """One backend call for ``requests`` (all with the same params unless per-row params
        are supported through ``generate_each``)."""
        conversations = [request.conversation for request in requests]
        self.batch_sizes.append(len(requests))
        each = getattr(self.backend, "generate_each", None)
        if callable(each):
            completions = each(conversations, [request.params for request in requests])
        else:
            completions = self.backend.generate(conversations, requests[0].params)
        if len(completions) != len(requests):
            raise RuntimeError(
                f"the backend returned {len(completions)} completions for "
                f"{len(requests)} conversations"
            )
        return list(completions)

    def _call(self, requests: list[_Request]) -> list[Completion | BaseException]:
        """In the generation thread: check contexts, then generate the rest as one batch."""
        results: list[Completion | BaseException | None] = [None] * len(requests)
        todo: list[int] = []
        for index, request in enumerate(requests):
            try:
                limit = request.limit(self.backend)
                if limit is not None:
                    prompt_tokens = self.backend.count_tokens(request.conversation)
                    check_context(prompt_tokens, request.params, limit)
                todo.append(index)
            except Exception as error:  # EpisodeStop, or a backend error counting
                results[index] = error
        if todo:
            batch = [requests[index] for index in todo]
            completions: list[Completion | BaseException]
            try:
                completions = list(self._generate(batch))
            except Exception as error:
                completions = [error] if len(batch) == 1 else self._one_by_one(batch)
            for index, completion in zip(todo, completions, strict=True):
                results[index] = completion
        return [result for result in results if result is not None]  # every slot is set

    def _one_by_one(self, requests: list[_Request]) -> list[Completion | BaseException]:
        """After a failed batch: each request alone, so a bad one fails only itself."""
        out: list[Completion | BaseException] = []
        for request in requests:
            try:
                out.append(self._generate([request])[0])
            except Exception as error:
                out.append(error)
        return out


_SHARED: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[int, BatchingQueue]] = (
    weakref.WeakKeyDictionary()
)


def shared_queue(backend: GenerationBackend) -> BatchingQueue:
    """The :class:`BatchingQueue` of ``backend`` on the running event loop (made on first use).

    Every ``ChatAgent.aact`` on the same backend and loop goes through it, so the benchmark
    runner's concurrent LLM episodes are batched without knowing about the engine (the queue
    then flushes after ``max_wait_s``, as it cannot know how many episodes are live).
    """
    loop = asyncio.get_running_loop()
    queues = _SHARED.setdefault(loop, {})
    queue = queues.get(id(backend))
    if queue is None or queue.backend is not backend:
        queue = queues[id(backend)] = BatchingQueue(backend)
    return queue


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


class _EnvFault(Exception):
    """An env call raised: ends the episode with ``env_error``."""


class RolloutEngine:
    """Plays episodes concurrently on one backend; see the module docstring.

    With a sampling ``seed``, episode *i* samples with ``derive_seed(seed, i)`` (and each turn
    with a seed derived from that), so the episodes differ from each other — also those of the
    same env seed, as GRPO groups need — and a run replays exactly on a backend with per-row
    seeds. ``agent_factory(spec, queue, index)`` may replace the default ``ChatAgent`` (it must have
    ``reset`` and ``async aact``; its ``turns`` list, if any, supplies the token records).
    """

    def __init__(
        self,
        backend: GenerationBackend,
        config: RolloutConfig | None = None,
        agent_factory: Callable[[EpisodeSpec, BatchingQueue, int], Any] | None = None,
    ) -> None:
        self.backend = backend
        self.config = config or RolloutConfig()
        self.agent_factory = agent_factory or self._chat_agent
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
        loop = asyncio.get_running_loop()
        started = time.perf_counter()

        async def env_call(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
            try:
                return await loop.run_in_executor(executor, lambda: function(*args, **kwargs))
            except Exception as error:
                raise _EnvFault() from error

        trajectory = Trajectory(
            index=index,
            env_id=spec.env_id,
            env_kwargs=dict(spec.env_kwargs),
            seed=spec.seed,
            stop_reason="",
        )
        limit = self.config.max_turns or self.config.max_turns_default
        env = None
        agent: Any = None
        observation = ""
        try:
            import gymnasium as gym

            import arenagym.envs  # noqa: F401  (registers every arenagym env id)

            env = await env_call(gym.make, spec.env_id, **dict(spec.env_kwargs))
            options = dict(spec.options) if spec.options is not None else None
            observation, info = await env_call(env.reset, seed=spec.seed, options=options)
            trajectory.system_prompt = str(info.get("system_prompt", ""))
            trajectory.task_id = info.get("task_id")
            agent = self.agent_factory(spec, queue, index)
            await _maybe_await(agent.reset(trajectory.system_prompt))
            while True:
                if len(trajectory.steps) >= limit:
                    trajectory.stop_reason = "max_turns"
                    break
                try:
                    action = await agent.aact(observation)
                except EpisodeStop as stop:
                    trajectory.stop_reason = stop.stop_reason
                    trajectory.info.update(stop.info, stop_message=str(stop))
                    break
                except Exception as error:  # the backend failed for this episode
                    trajectory.stop_reason = "env_error"
                    trajectory.error = _describe(error)
                    trajectory.info["traceback"] = "".join(traceback.format_exception(error))
                    break
                turn = agent.turns[-1] if getattr(agent, "turns", None) else None
                seen = observation
                observation, reward, terminated, truncated, info = await env_call(env.step, action)
                trajectory.steps.append(
                    Step(
                        observation=seen,
                        action=action,
                        reward=float(reward),
                        reward_components=dict(info.get("reward_components", {})),
                        prompt_token_ids=list(turn.prompt_token_ids) if turn else [],
                        completion_token_ids=list(turn.completion_token_ids) if turn else [],
                        logprobs=list(turn.logprobs) if turn else [],
                        finish_reason=turn.finish_reason if turn else "stop",
                        invalid_action=bool(info.get("invalid_action", False)),
                    )
                )
                trajectory.reward += float(reward)
                trajectory.clean_reward += float(info.get("clean_reward", reward))
                if terminated or truncated:
                    trajectory.stop_reason = str(
                        info.get("stop_reason") or ("terminated" if terminated else "truncated")
                    )
                    if "error" in info and trajectory.stop_reason == "env_error":
                        trajectory.error = str(info["error"])
                    break
        except _EnvFault as fault:
            error = fault.__cause__ or fault
            trajectory.stop_reason = "env_error"
            trajectory.error = _describe(error)
            trajectory.info["traceback"] = "".join(traceback.format_exception(error))
        finally:
            if env is not None:
                try:
                    await loop.run_in_executor(executor, env.close)
                except Exception as error:
                    trajectory.info["close_error"] = _describe(error)
        trajectory.final_observation = observation if trajectory.steps else ""
        if agent is not None:
            trajectory.messages = [dict(message) for message in getattr(agent, "messages", [])]
        trajectory.duration_s = time.perf_counter() - started
        return trajectory


async def _maybe_await(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


def rollout(
    backend: GenerationBackend,
    episodes: Sequence[EpisodeSpec],
    config: RolloutConfig | None = None,
) -> list[Trajectory]:
    """Play ``episodes`` on ``backend`` with :class:`RolloutEngine`; one trajectory each."""
    return RolloutEngine(backend, config).run(episodes)
