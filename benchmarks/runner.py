"""The benchmark runner: play every episode of a suite with an agent, resumably and concurrently.

:func:`run_suite` plays each ``(task, seed, episode)`` of a suite that the results store does
not hold yet for this agent, and writes one row per episode as soon as it ends, so a killed run
resumes where it stopped.

How it runs: asyncio, ``concurrency`` worker coroutines that take episodes from one lazy
iterator (a suite of a million episodes costs no more memory than one of ten). The env's
blocking calls (``gym.make``, ``env.reset``/``step``/``close``) run in a thread pool of
``concurrency`` threads. The agent's code runs apart from it: a plain synchronous agent is built,
reset and asked to act on an :class:`AgentThread` of its episode (a daemon thread), and an agent
with ``async def aact(observation)`` (and optionally ``async def areset(system_prompt)``) is
awaited on the event loop, so waiting for a model server holds no thread. Each episode gets a
fresh agent from ``load_agent(spec, **kwargs)``.

How an episode ends besides the env's own ending: an exception from the agent or the env ends
only that episode, recorded with ``stop_reason`` ``"agent_error"`` / ``"env_error"`` and the error
in ``info`` (``SystemExit`` and ``KeyboardInterrupt`` raised by agent code too: only a real
Ctrl-C stops the run, which keeps every episode already recorded); an episode that reaches the
task's ``max_steps`` is stopped with ``"max_steps"``; an agent that raises
:class:`~arenagym.agents.base.EpisodeStop` (an LLM agent out of context or tokens) ends its
episode with that stop reason, not as an error. An agent call that runs past the suite's
``agent_call_timeout_s``, or past what is left of ``episode_timeout_s`` (the agent's calls of one
episode together), ends the episode with ``"agent_timeout"``: the runner stops waiting and goes
on, and ``info["traceback"]`` shows where the agent was. Python cannot stop a thread, so a hung
agent keeps its daemon thread until its call returns; it holds no thread of the pool, and the
process does not wait for it at exit.

Before the first episode, the agent and each task's env are built once, so a typo in kwargs is
one clear :class:`RunSetupError` rather than a store full of error rows (that first build has no
time limit: it may load a model).

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
import math
import queue
import sys
import threading
import time
import traceback
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial
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
from arenagym.benchmarks.store import AGENT_TIMEOUT, EpisodeRow, ResultsStore
from arenagym.benchmarks.suite import Suite, Task, episode_reset_seed

T = TypeVar("T")

#: Episodes played at once when the caller does not say.
DEFAULT_CONCURRENCY = 8


class RunSetupError(ValueError):
    """The agent or a task's env cannot be built at all, so no episode was played."""


class AgentTimeout(Exception):
    """An agent call ran past a time limit of the suite (recorded, never raised to callers)."""


#: Stop reasons that count as failed episodes in a run's summary and progress bar.
FAILED_STOP_REASONS: frozenset[str] = frozenset({"agent_error", "env_error", AGENT_TIMEOUT})


class AgentThread:
    """Runs one episode's agent calls, one at a time, on a daemon thread of its own.

    Why a thread per episode and not the runner's pool: Python cannot stop a thread, so an agent
    whose call never returns keeps the thread it runs on. On a pool thread it would hold a slot
    for good (as many hung agents as the concurrency stall the run) and the process would wait
    for it at exit; on its own daemon thread it holds only that thread, and the caller just stops
    waiting for the call's future. Every exception of the call, ``SystemExit`` and
    ``KeyboardInterrupt`` included, goes to its future, never up the thread. The thread starts
    with the first call and ends after :meth:`close` (once the call it is in, if any, returns).

    Example:
        >>> calls = AgentThread("demo")
        >>> calls.submit(sum, [1, 2]).result()
        3
        >>> calls.submit(sys.exit, 3).exception()
        SystemExit(3)
        >>> calls.close()
    """

    def __init__(self, name: str = "arenagym-agent") -> None:
        self.name = name
        self._calls: queue.SimpleQueue[tuple[Future[Any], Callable[[], Any]] | None] = (
            queue.SimpleQueue()
        )
        self._thread: threading.Thread | None = None
        self._busy = False

    def submit(self, function: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        """Queue ``function(*args, **kwargs)``; its future holds the result or the exception."""
        future: Future[T] = Future()
        self._calls.put((future, partial(function, *args, **kwargs)))
        if self._thread is None:
            self._thread = threading.Thread(target=self._serve, name=self.name, daemon=True)
            self._thread.start()
        return future

    def stack(self) -> str:
        """Where the call the thread is in is now, as a formatted stack ("" if it is idle)."""
        ident = self._thread.ident if self._thread is not None and self._busy else None
        frame = sys._current_frames().get(ident) if ident is not None else None
        return "".join(traceback.format_stack(frame)) if frame is not None else ""

    def close(self) -> None:
        """Let the thread end once it has run the calls queued so far."""
        self._calls.put(None)

    def _serve(self) -> None:
        while (item := self._calls.get()) is not None:
            future, call = item
            if future.set_running_or_notify_cancel():
                self._busy = True
                try:
                    result = call()
                except BaseException as error:  # the agent's SystemExit too: the caller judges
                    future.set_exception(error)
                else:
                    future.set_result(result)
                finally:
                    self._busy = False
            del item, future, call  # hold nothing of a finished call while waiting


class AgentClock:
    """The time limits of one agent in one episode: each call gets the lesser of the per-call
    limit and what is left of the per-episode one (seconds; ``inf``: no limit)."""

    def __init__(self, call_limit_s: float, episode_limit_s: float) -> None:
        self.call_limit_s = call_limit_s
        self.episode_limit_s = episode_limit_s
        self.used_s = 0.0

    def next_limit(self) -> float:
        """Seconds the next call may take (``inf`` for no limit)."""
        return max(0.0, min(self.call_limit_s, self.episode_limit_s - self.used_s))

    def spend(self, seconds: float) -> None:
        """Count ``seconds`` of a finished (or abandoned) call against the episode's limit."""
        self.used_s += seconds

    def message(self, what: str, limit_s: float) -> str:
        """Why ``what`` was stopped after ``limit_s`` seconds, naming the setting to change."""
        if limit_s >= self.call_limit_s:
            return (
                f"{what} did not return within agent_call_timeout_s = {self.call_limit_s:g} s "
                "(the suite's [settings]); the agent's thread was left running"
            )
        return (
            f"{what} did not return within the {limit_s:.3g} s left of episode_timeout_s = "
            f"{self.episode_limit_s:g} s (the agent's calls in one episode together; the suite's "
            "[settings]); the agent's thread was left running"
        )


def check_time_limit(name: str, value: float) -> float:
    """``value`` as a float if it is a time limit (seconds > 0, ``inf``: none), else ValueError."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ValueError(f"{name} must be a number of seconds > 0 (inf: no limit), got {value!r}")
    return float(value)


@dataclass(frozen=True)
class RunSummary:
    """What :func:`run_suite` did. ``failed`` counts episodes that ended in agent/env errors or
    agent timeouts."""

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
    agent_call_timeout_s: float | None = None,
    episode_timeout_s: float | None = None,
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
            so that those episodes are played again (``agent_timeout`` rows stay: a timeout is
            the agent's result).
        agent_call_timeout_s: seconds one agent call may take; default the suite's setting.
        episode_timeout_s: seconds the agent's calls of one episode may take together; default
            the suite's setting.

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
            agent_call_timeout_s=agent_call_timeout_s,
            episode_timeout_s=episode_timeout_s,
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
    agent_call_timeout_s: float | None = None,
    episode_timeout_s: float | None = None,
) -> RunSummary:
    """:func:`run_suite` as a coroutine, for callers that already run an event loop.

    ``SystemExit`` or ``KeyboardInterrupt`` raised by an ``async`` agent's own code is recorded
    as its episode's error; under ``asyncio.run`` a real Ctrl-C cancels the run instead.
    """
    clock = AgentClock(
        check_time_limit(
            "agent_call_timeout_s",
            suite.agent_call_timeout_s if agent_call_timeout_s is None else agent_call_timeout_s,
        ),
        check_time_limit(
            "episode_timeout_s",
            suite.episode_timeout_s if episode_timeout_s is None else episode_timeout_s,
        ),
    )
    arguments = (suite, agent_spec, agent_kwargs)
    options = (concurrency, progress, agent_name, retry_errors, clock)
    if isinstance(store, ResultsStore):
        return await _run(*arguments, store, *options)
    with ResultsStore(store) as opened:
        return await _run(*arguments, opened, *options)


@dataclass(frozen=True)
class _Job:
    task: Task
    seed: int
    episode: int


class _EpisodeFailure(Exception):
    """Raised inside an episode to end it with ``stop_reason`` (agent_error / env_error /
    agent_timeout); ``trace`` replaces the error's own traceback in the row when given."""

    def __init__(self, stop_reason: str, error: BaseException, trace: str | None = None) -> None:
        super().__init__(stop_reason)
        self.stop_reason = stop_reason
        self.error = error
        self.trace = trace


class _AgentRaised(Exception):
    """Carries a ``SystemExit``/``KeyboardInterrupt`` raised by an async agent's coroutine out of
    its task (asyncio re-raises those two through the event loop, which would end the run)."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(repr(error))
        self.error = error


async def _contained[R](awaitable: Awaitable[R]) -> R:
    try:
        return await awaitable
    except (KeyboardInterrupt, SystemExit) as error:
        raise _AgentRaised(error) from error


async def _run(
    suite: Suite,
    agent_spec: str,
    agent_kwargs: dict[str, Any] | None,
    store: ResultsStore,
    concurrency: int,
    progress: bool,
    agent_name: str | None,
    retry_errors: bool,
    clock: AgentClock,
) -> RunSummary:
    if not isinstance(concurrency, int) or concurrency < 1:
        raise ValueError(f"concurrency must be an int >= 1, got {concurrency!r}")
    kwargs = dict(agent_kwargs or {})
    try:
        json.dumps(kwargs)
    except (TypeError, ValueError, RecursionError) as error:
        raise RunSetupError(f"agent kwargs must be JSON-serialisable ({error!r})") from None
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
    done = _count_done(suite.tasks, finished)
    total = suite.n_episodes
    left = total - sum(done.values())
    started = time.perf_counter()
    stop_reasons: Counter[str] = Counter()
    loop = asyncio.get_running_loop()
    executor = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="arenagym-run")
    try:
        if left:
            pending_tasks = [task for task in suite.tasks if done[task.name] < task.n_episodes]
            await _check_setup(loop, executor, agent_spec, kwargs, pending_tasks, secrets)
        if retry_errors:  # only now that the agent and envs are known to build
            store.delete_errors(suite.name, name)
        if suite.tasks:
            store.set_leaderboard_settings(suite.name, suite.leaderboard_settings())
        jobs = (  # lazily: never a list of every episode
            _Job(task, seed, episode)
            for task in suite.tasks
            for seed, episode in task.episode_keys()
            if (task.name, seed, episode) not in finished
        )
        with _progress_bar(progress, suite.name, name, total, total - left) as advance:

            async def play_and_record() -> None:
                for job in jobs:  # each worker takes the next episode when it is free
                    row = await _play_episode(
                        loop, executor, suite, job, agent_spec, kwargs, name, clock, secrets
                    )
                    store.add(row)  # on the event-loop thread, one transaction per episode
                    stop_reasons[row.stop_reason] += 1
                    advance(row.stop_reason in FAILED_STOP_REASONS)

            workers = [
                asyncio.create_task(play_and_record()) for _ in range(min(concurrency, left))
            ]
            try:
                await asyncio.gather(*workers)
            except BaseException:  # a store failure or cancellation: stop the other episodes
                for worker in workers:
                    worker.cancel()
                await asyncio.gather(*workers, return_exceptions=True)
                raise
    finally:
        executor.shutdown(wait=False, cancel_futures=True)
    ran = sum(stop_reasons.values())
    return RunSummary(
        suite=suite.name,
        agent=name,
        total=total,
        skipped=total - left,
        ran=ran,
        failed=sum(stop_reasons[reason] for reason in FAILED_STOP_REASONS),
        duration_s=time.perf_counter() - started,
        stop_reasons=dict(stop_reasons),
    )


def _count_done(tasks: tuple[Task, ...], finished: set[tuple[str, int, int]]) -> Counter[str]:
    """How many episodes of each task are among ``finished`` (keys of other tasks, seeds or
    episode numbers, e.g. from an older version of the suite, do not count)."""
    shape = {task.name: (frozenset(task.seeds), task.episodes) for task in tasks}
    done: Counter[str] = Counter({task.name: 0 for task in tasks})
    for task, seed, episode in finished:
        if task in shape and seed in shape[task][0] and 0 <= episode < shape[task][1]:
            done[task] += 1
    return done


async def _check_setup(
    loop: asyncio.AbstractEventLoop,
    executor: ThreadPoolExecutor,
    agent_spec: str,
    agent_kwargs: dict[str, Any],
    tasks: list[Task],
    secrets: frozenset[str] = frozenset(),
) -> None:
    """Build the agent and each task's env once, raising :class:`RunSetupError` if one fails
    (``SystemExit`` from their code too: it came from a worker thread, not from the user)."""
    builder = AgentThread("arenagym-agent-setup")  # a daemon: a hung build does not block exit
    try:
        await asyncio.wrap_future(builder.submit(load_agent, agent_spec, **agent_kwargs))
    except asyncio.CancelledError:
        raise
    except BaseException as error:
        raise RunSetupError(
            redact_secrets(
                f"cannot build agent {agent_display_name(agent_spec, agent_kwargs)}: "
                f"{type(error).__name__}: {error}",
                secrets,
            )
        ) from None
    finally:
        builder.close()
    for task in tasks:
        try:
            env = await loop.run_in_executor(executor, lambda t=task: gym.make(t.env, **t.kwargs))
        except asyncio.CancelledError:
            raise
        except BaseException as error:
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
    limits: AgentClock,
    secrets: frozenset[str] = frozenset(),
) -> EpisodeRow:
    """Play one episode to its end (or its first exception, or the agent's time limit) and
    return its row (with every secret of the agent's spec and kwargs hidden)."""

    def blocking(function: Callable[..., T], *args: Any, **kwargs: Any) -> Awaitable[T]:
        return loop.run_in_executor(executor, lambda: function(*args, **kwargs))

    async def env_call(awaitable: Awaitable[T]) -> T:
        try:
            return await awaitable
        except asyncio.CancelledError:
            raise
        except BaseException as error:  # raised on a pool thread: the env's, not the user's
            raise _EpisodeFailure("env_error", error) from error

    calls = AgentThread(f"arenagym-agent:{job.task.name}:{job.seed}:{job.episode}")
    clock = AgentClock(limits.call_limit_s, limits.episode_limit_s)

    async def agent_call(what: str, start: Callable[[], Awaitable[T]]) -> T:
        """Await an agent call within the time it has left; every way it fails ends the
        episode as the agent's (an EpisodeStop as the stop it asks for)."""
        limit = clock.next_limit()
        if limit <= 0:
            raise _EpisodeFailure(AGENT_TIMEOUT, AgentTimeout(clock.message(what, limit)))
        pending = asyncio.ensure_future(_contained(start()))
        began = time.perf_counter()
        try:
            finished, _ = await asyncio.wait(
                {pending}, timeout=None if math.isinf(limit) else limit
            )
        except BaseException:  # the run is cancelled: stop the agent's coroutine too
            pending.cancel()
            raise
        finally:
            clock.spend(time.perf_counter() - began)
        if not finished:
            trace = calls.stack() or _task_stack(pending)
            pending.cancel()
            raise _EpisodeFailure(
                AGENT_TIMEOUT,
                AgentTimeout(clock.message(what, limit)),
                trace=f"{what} was here when its time ran out:\n{trace}" if trace else None,
            )
        try:
            return pending.result()
        except EpisodeStop:  # the agent ends the episode on purpose (e.g. context_overflow)
            raise
        except _AgentRaised as raised:
            raise _EpisodeFailure("agent_error", raised.error) from raised.error
        except BaseException as error:  # SystemExit/KeyboardInterrupt of a thread: its own
            raise _EpisodeFailure("agent_error", error) from error

    task = job.task
    reset_seed = episode_reset_seed(job.seed, job.episode)
    started_at, timer = time.time(), time.perf_counter()
    reward = clean_reward = 0.0
    turns = invalid_actions = 0
    stop_reason = ""
    details: dict[str, Any] = {}
    env: gym.Env[Any, Any] | None = None
    try:
        env = await env_call(blocking(gym.make, task.env, **task.kwargs))
        observation, info = await env_call(blocking(env.reset, seed=reset_seed))
        details["task_id"] = info.get("task_id")
        agent: Agent = await agent_call(
            "building the agent",
            lambda: asyncio.wrap_future(calls.submit(load_agent, agent_spec, **agent_kwargs)),
        )
        act, reset = _agent_calls(agent, calls)
        system_prompt = str(info.get("system_prompt", ""))
        await agent_call("reset()", lambda: reset(system_prompt))
        while True:
            if turns >= task.max_steps:
                stop_reason = "max_steps"
                break
            action = await agent_call(f"act() of turn {turns + 1}", partial(act, observation))
            observation, step_reward, terminated, truncated, info = await env_call(
                blocking(env.step, action)
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
        details["traceback"] = failure.trace or "".join(traceback.format_exception(failure.error))
    finally:
        calls.close()
        if env is not None:
            close_error = await loop.run_in_executor(executor, _close_quietly, env)
            if close_error:
                details["close_error"] = close_error
    details["invalid_actions"] = invalid_actions
    if stop_reason == AGENT_TIMEOUT:
        details["agent_time_s"] = round(clock.used_s, 3)
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
        duration_s=time.perf_counter() - timer,
    )


def _agent_calls(
    agent: Agent, calls: AgentThread
) -> tuple[Callable[[str], Awaitable[str]], Callable[[str], Awaitable[None]]]:
    """``(act, reset)`` as awaitables: the agent's own coroutines if it has them, else calls on
    the episode's agent thread."""
    aact = getattr(agent, "aact", None)
    areset = getattr(agent, "areset", None)
    act = (
        aact
        if inspect.iscoroutinefunction(aact)
        else (lambda obs: asyncio.wrap_future(calls.submit(agent.act, obs)))
    )
    reset = (
        areset
        if inspect.iscoroutinefunction(areset)
        else (lambda prompt: asyncio.wrap_future(calls.submit(agent.reset, prompt)))
    )
    return act, reset


def _task_stack(task: asyncio.Future[Any]) -> str:
    """Where an asyncio task (an async agent's call) is waiting now, innermost call last."""
    if not isinstance(task, asyncio.Task):
        return ""
    frames = []
    coroutine: Any = task.get_coro()
    while coroutine is not None:
        frame = getattr(coroutine, "cr_frame", None) or getattr(coroutine, "gi_frame", None)
        if frame is not None:
            frames.append((frame, frame.f_lineno))
        coroutine = getattr(coroutine, "cr_await", None) or getattr(coroutine, "gi_yieldfrom", None)
    return "".join(traceback.format_list(traceback.StackSummary.extract(iter(frames))))


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
