"""The benchmark runner: play every episode of a suite with an agent, resumably and concurrently.

:func:`run_suite` plays each ``(task, seed, episode)`` of a suite that the results store does
not hold yet for this agent, and writes one row per episode as soon as it ends, so a killed run
resumes where it stopped.

How it runs: asyncio, one task per episode, a semaphore as the concurrency limit. Every blocking
call (``gym.make``, ``env.reset``/``step``/``close``, building the agent, and ``agent.reset``/
``act`` of a plain synchronous agent) runs in a thread pool of ``concurrency`` threads; an agent
with ``async def aact(observation)`` (and optionally ``async def areset(system_prompt)``) is
awaited on the event loop instead, so waiting for a model server holds no thread. Each episode
gets a fresh agent from ``load_agent(spec, **kwargs)``. An exception from the agent or the env
ends only that episode, recorded with ``stop_reason`` ``"agent_error"`` / ``"env_error"`` and
the error in ``info``; an episode that reaches the task's ``max_steps`` is stopped with
``"max_steps"``; an agent that raises :class:`~arenagym.agents.base.EpisodeStop` (an LLM agent
out of context or tokens) ends its episode with that stop reason, not as an error. Before the
first episode, the agent and each task's env are built once, so a typo in kwargs is one clear
:class:`RunSetupError` rather than a store full of error rows.

Secrets never reach the store, the progress bar or an error message: an API key given in the
agent spec (``api_key=...``) or its kwargs is stored and shown as ``***``
(:func:`~arenagym.agents.base.redact_secrets`), and every occurrence of such a key (or of the key an
``openai:`` spec reads from the environment) in recorded errors and tracebacks is replaced too.

Example:
    >>> from arenagym.benchmarks.store import ResultsStore
    >>> from arenagym.benchmarks.suite import load_suite
    >>> summary = run_suite(load_suite("smoke"), "math-solver", None, ResultsStore(":memory:"),
    ...                     progress=False)  # doctest: +SKIP
    >>> summary.ran, summary.skipped  # doctest: +SKIP
    (4, 0)
"""

from __future__ import annotations

import asyncio
import inspect
import json
import time
import traceback
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import gymnasium as gym
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from arenagym.agents.base import (
    Agent,
    EpisodeStop,
    load_agent,
    redact_secrets,
    redact_spec,
    resolve_agent_factory,
    secret_values,
)
from arenagym.benchmarks.store import EpisodeRow, ResultsStore
from arenagym.benchmarks.suite import Suite, Task, episode_reset_seed

T = TypeVar("T")

#: Episodes played at once when the caller does not say.
DEFAULT_CONCURRENCY = 8


class RunSetupError(ValueError):
    """The agent or a task's env cannot be built at all, so no episode was played."""


@dataclass(frozen=True)
class RunSummary:
    """What :func:`run_suite` did. ``failed`` counts episodes that ended in agent/env errors."""

    suite: str
    agent: str
    total: int
    skipped: int
    ran: int
    failed: int
    duration_s: float
    stop_reasons: dict[str, int] = field(default_factory=dict)


def agent_display_name(spec: str, kwargs: dict[str, Any] | None = None) -> str:
    """The agent's default name in the store: ``spec``, plus its sorted kwargs if any, with
    secrets (API keys) shown as ``***``.

    >>> agent_display_name("random", {"seed": 1, "max_length": 8})
    'random(max_length=8, seed=1)'
    >>> agent_display_name("openai:http://h/v1,model=m,api_key=sk-1", {"api_key": "sk-2"})
    'openai:http://h/v1,model=m,api_key=***(api_key="***")'
    """
    spec = redact_spec(spec)
    if not kwargs:
        return spec
    kwargs = redact_secrets(kwargs)
    arguments = ", ".join(
        f"{key}={json.dumps(kwargs[key], sort_keys=True, default=repr)}" for key in sorted(kwargs)
    )
    return f"{spec}({arguments})"


def run_suite(
    suite: Suite,
    agent_spec: str,
    agent_kwargs: dict[str, Any] | None,
    store: ResultsStore | str | Path,
    concurrency: int = DEFAULT_CONCURRENCY,
    progress: bool = True,
    agent_name: str | None = None,
    *,
    retry_errors: bool = False,
) -> RunSummary:
    """Play the episodes of ``suite`` that ``store`` lacks for this agent; see the module doc.

    Args:
        suite: what to play.
        agent_spec: an agent name for :func:`~arenagym.agents.base.load_agent`.
        agent_kwargs: keyword arguments for the agent (JSON-serialisable, they are recorded).
        store: a :class:`ResultsStore`, or the path of one (opened and closed here).
        concurrency: episodes in flight at once (and threads in the pool).
        progress: show a rich progress bar on stderr.
        agent_name: the agent's name in the store; default :func:`agent_display_name`.
        retry_errors: first delete this agent's ``agent_error``/``env_error`` rows of the suite,
            so that those episodes are played again.

    Raises:
        RunSetupError: the agent or an env cannot be built (nothing was recorded).

    Not callable from inside a running event loop; await :func:`arun_suite` there.
    """
    return asyncio.run(
        arun_suite(
            suite,
            agent_spec,
            agent_kwargs,
            store,
            concurrency=concurrency,
            progress=progress,
            agent_name=agent_name,
            retry_errors=retry_errors,
        )
    )


async def arun_suite(
    suite: Suite,
    agent_spec: str,
    agent_kwargs: dict[str, Any] | None,
    store: ResultsStore | str | Path,
    concurrency: int = DEFAULT_CONCURRENCY,
    progress: bool = True,
    agent_name: str | None = None,
    *,
    retry_errors: bool = False,
) -> RunSummary:
    """:func:`run_suite` as a coroutine, for callers that already run an event loop."""
    if isinstance(store, ResultsStore):
        return await _run(
            suite, agent_spec, agent_kwargs, store, concurrency, progress, agent_name, retry_errors
        )
    with ResultsStore(store) as opened:
        return await _run(
            suite, agent_spec, agent_kwargs, opened, concurrency, progress, agent_name, retry_errors
        )


@dataclass(frozen=True)
class _Job:
    task: Task
    seed: int
    episode: int


class _EpisodeFailure(Exception):
    """Raised inside an episode to end it with ``stop_reason`` (agent_error / env_error)."""

    def __init__(self, stop_reason: str, error: BaseException) -> None:
        super().__init__(stop_reason)
        self.stop_reason = stop_reason
        self.error = error


async def _run(
    suite: Suite,
    agent_spec: str,
    agent_kwargs: dict[str, Any] | None,
    store: ResultsStore,
    concurrency: int,
    progress: bool,
    agent_name: str | None,
    retry_errors: bool,
) -> RunSummary:
    if not isinstance(concurrency, int) or concurrency < 1:
        raise ValueError(f"concurrency must be an int >= 1, got {concurrency!r}")
    kwargs = dict(agent_kwargs or {})
    try:
        json.dumps(kwargs)
    except (TypeError, ValueError) as error:
        raise RunSetupError(f"agent kwargs must be JSON-serialisable ({error})") from None
    secrets = secret_values(agent_spec, kwargs)
    name = redact_secrets(agent_name or agent_display_name(agent_spec, kwargs), secrets)
    kwargs = suite.agent_kwargs(agent_spec, kwargs)  # the suite's [generation] budgets
    try:
        resolve_agent_factory(agent_spec)
    except ValueError as error:
        raise RunSetupError(redact_secrets(str(error), secrets)) from None

    finished = store.finished_keys(suite.name, name)
    if retry_errors:
        finished -= {
            (row.task, row.seed, row.episode)
            for row in store.rows(suite=suite.name, agent=name)
            if row.is_error
        }
    jobs = [
        _Job(task, seed, episode)
        for task in suite.tasks
        for seed, episode in task.episode_keys()
        if (task.name, seed, episode) not in finished
    ]
    total = suite.n_episodes
    started = time.perf_counter()
    stop_reasons: Counter[str] = Counter()
    loop = asyncio.get_running_loop()
    executor = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="arenagym-run")
    try:
        if jobs:
            pending_tasks = list({job.task.name: job.task for job in jobs}.values())
            await _check_setup(loop, executor, agent_spec, kwargs, pending_tasks, secrets)
        if retry_errors:  # only now that the agent and envs are known to build
            store.delete_errors(suite.name, name)
        semaphore = asyncio.Semaphore(concurrency)
        with _progress_bar(progress, suite.name, name, total, total - len(jobs)) as advance:

            async def play_and_record(job: _Job) -> None:
                async with semaphore:
                    row = await _play_episode(
                        loop, executor, suite, job, agent_spec, kwargs, name, secrets
                    )
                store.add(row)  # on the event-loop thread, one transaction per episode
                stop_reasons[row.stop_reason] += 1
                advance(row.is_error)

            episodes = [asyncio.create_task(play_and_record(job)) for job in jobs]
            try:
                await asyncio.gather(*episodes)
            except BaseException:  # a store failure or cancellation: stop the other episodes
                for episode in episodes:
                    episode.cancel()
                await asyncio.gather(*episodes, return_exceptions=True)
                raise
    finally:
        executor.shutdown(wait=False, cancel_futures=True)
    return RunSummary(
        suite=suite.name,
        agent=name,
        total=total,
        skipped=total - len(jobs),
        ran=len(jobs),
        failed=stop_reasons["agent_error"] + stop_reasons["env_error"],
        duration_s=time.perf_counter() - started,
        stop_reasons=dict(stop_reasons),
    )


async def _check_setup(
    loop: asyncio.AbstractEventLoop,
    executor: ThreadPoolExecutor,
    agent_spec: str,
    agent_kwargs: dict[str, Any],
    tasks: list[Task],
    secrets: frozenset[str] = frozenset(),
) -> None:
    """Build the agent and each task's env once, raising :class:`RunSetupError` if one fails."""
    try:
        await loop.run_in_executor(executor, lambda: load_agent(agent_spec, **agent_kwargs))
    except Exception as error:
        raise RunSetupError(
            redact_secrets(
                f"cannot build agent {agent_display_name(agent_spec, agent_kwargs)}: "
                f"{type(error).__name__}: {error}",
                secrets,
            )
        ) from None
    for task in tasks:
        try:
            env = await loop.run_in_executor(executor, lambda t=task: gym.make(t.env, **t.kwargs))
        except Exception as error:
            raise RunSetupError(
                redact_secrets(
                    f"task {task.name!r}: gym.make({task.env!r}, "
                    f"**{redact_secrets(task.kwargs)!r}) failed: {type(error).__name__}: {error}",
                    secrets,
                )
            ) from None
        await loop.run_in_executor(executor, _close_quietly, env)


async def _play_episode(
    loop: asyncio.AbstractEventLoop,
    executor: ThreadPoolExecutor,
    suite: Suite,
    job: _Job,
    agent_spec: str,
    agent_kwargs: dict[str, Any],
    agent_name: str,
    secrets: frozenset[str] = frozenset(),
) -> EpisodeRow:
    """Play one episode to its end (or its first exception) and return its row (with every
    secret of the agent's spec and kwargs hidden)."""

    def blocking(function: Callable[..., T], *args: Any, **kwargs: Any) -> Awaitable[T]:
        return loop.run_in_executor(executor, lambda: function(*args, **kwargs))

    async def guarded(stop_reason: str, awaitable: Awaitable[T]) -> T:
        try:
            return await awaitable
        except EpisodeStop:  # the agent ends the episode on purpose (e.g. context_overflow)
            raise
        except Exception as error:
            raise _EpisodeFailure(stop_reason, error) from error

    task = job.task
    reset_seed = episode_reset_seed(job.seed, job.episode)
    started_at, clock = time.time(), time.perf_counter()
    reward = clean_reward = 0.0
    turns = invalid_actions = 0
    stop_reason = ""
    details: dict[str, Any] = {}
    env: gym.Env[Any, Any] | None = None
    try:
        env = await guarded("env_error", blocking(gym.make, task.env, **task.kwargs))
        observation, info = await guarded("env_error", blocking(env.reset, seed=reset_seed))
        details["task_id"] = info.get("task_id")
        agent: Agent = await guarded(
            "agent_error", blocking(load_agent, agent_spec, **agent_kwargs)
        )
        act, reset = _agent_calls(agent, blocking)
        await guarded("agent_error", reset(str(info.get("system_prompt", ""))))
        while True:
            if turns >= task.max_steps:
                stop_reason = "max_steps"
                break
            action = await guarded("agent_error", act(observation))
            observation, step_reward, terminated, truncated, info = await guarded(
                "env_error", blocking(env.step, action)
            )
            turns += 1
            reward += float(step_reward)
            clean_reward += float(info.get("clean_reward", step_reward))
            invalid_actions += bool(info.get("invalid_action", False))
            if "reward_components" in info:
                details["reward_components"] = info["reward_components"]
            if terminated or truncated:
                stop_reason = str(
                    info.get("stop_reason") or ("terminated" if terminated else "truncated")
                )
                if stop_reason == "env_error" and "error" in info:  # the env's own fault report
                    details["error"] = info["error"]
                break
    except EpisodeStop as stop:
        stop_reason = stop.stop_reason
        details["stop"] = {"message": str(stop), **stop.info}
    except _EpisodeFailure as failure:
        stop_reason = failure.stop_reason
        details["error"] = f"{type(failure.error).__name__}: {failure.error}"
        details["traceback"] = "".join(traceback.format_exception(failure.error))
    finally:
        if env is not None:
            close_error = await loop.run_in_executor(executor, _close_quietly, env)
            if close_error:
                details["close_error"] = close_error
    details["invalid_actions"] = invalid_actions
    return EpisodeRow(
        suite=suite.name,
        task=task.name,
        env_id=task.env,
        env_kwargs=redact_secrets(task.kwargs, secrets),
        agent=agent_name,
        seed=job.seed,
        episode=job.episode,
        reset_seed=reset_seed,
        metric=task.metric,
        score=_score(task.metric, reward, clean_reward, stop_reason),
        reward=reward,
        clean_reward=clean_reward,
        turns=turns,
        stop_reason=stop_reason,
        info=redact_secrets(details, secrets),
        agent_spec=redact_secrets(agent_spec, secrets),
        agent_kwargs=redact_secrets(agent_kwargs, secrets),
        started_at=started_at,
        finished_at=time.time(),
        duration_s=time.perf_counter() - clock,
    )


def _agent_calls(
    agent: Agent, blocking: Callable[..., Awaitable[Any]]
) -> tuple[Callable[[str], Awaitable[str]], Callable[[str], Awaitable[None]]]:
    """``(act, reset)`` as awaitables: the agent's own coroutines if it has them, else threads."""
    aact = getattr(agent, "aact", None)
    areset = getattr(agent, "areset", None)
    act = aact if inspect.iscoroutinefunction(aact) else (lambda obs: blocking(agent.act, obs))
    reset = areset if inspect.iscoroutinefunction(areset) else (lambda p: blocking(agent.reset, p))
    return act, reset


def _score(metric: str, reward: float, clean_reward: float, stop_reason: str) -> float:
    if metric == "success":
        return float(stop_reason == "solved")
    return reward if metric == "reward" else clean_reward


def _close_quietly(env: gym.Env[Any, Any]) -> str | None:
    """Close ``env``; the error text if closing raised (an episode's result stands regardless)."""
    try:
        env.close()
    except Exception as error:
        return f"{type(error).__name__}: {error}"
    return None


@contextmanager
def _progress_bar(
    enabled: bool, suite: str, agent: str, total: int, done: int
) -> Iterator[Callable[[bool], None]]:
    """A rich progress bar on stderr over the whole suite; yields ``advance(failed)``."""
    if not enabled:
        yield lambda failed: None
        return
    label = f"{suite} · {agent if len(agent) <= 40 else agent[:39] + '…'}"
    failures = 0
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
    ) as progress:
        bar = progress.add_task(label, total=total, completed=done)

        def advance(failed: bool) -> None:
            nonlocal failures
            failures += failed
            suffix = f" [red]({failures} failed)" if failures else ""
            progress.update(bar, advance=1, description=label + suffix)

        yield advance
