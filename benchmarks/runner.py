"""The benchmark runner: play every episode of a suite with an agent, resumably and concurrently.

:func:`run_suite` plays each ``(task, seed, episode)`` of a suite that the results store does
not hold yet for this agent, and writes one row per episode as soon as it ends, so a killed run
resumes where it stopped.

How it runs: asyncio, ``concurrency`` worker coroutines that take episodes from one lazy
iterator (a suite of a million episodes costs no more memory than one of ten). The env's
blocking calls (``gym.make``, ``env.reset``/``step``/``close``) run in a thread pool of
``concurrency`` threads. The agent's code runs apart from both: a plain synchronous agent is
built, reset and asked to act on an :class:`AgentThread` of its episode (a daemon thread), and an
agent with ``async def aact(observation)`` (and optionally ``async def areset(system_prompt)``)
runs its coroutines on the run's :class:`AgentLoop`, an event loop on a daemon thread of its own
that all the run's episodes share (so waiting for a model server holds no thread, and concurrent
episodes' requests are batched). The runner's own event loop never runs agent code: an async
agent that blocks its loop (``time.sleep`` in ``aact``) or ignores cancellation delays only the
agent's own calls (its other episodes' calls wait on the same loop, and that wait counts against
their time), is timed out like a hung synchronous agent, and never keeps the run from returning.
Each episode gets a fresh agent (as ``load_agent(spec, **kwargs)`` builds it; the spec is
resolved once per run), and is played by
:func:`~arenagym.agents.episode.aplay_episode`, the one episode loop (the rollout engine plays
with it too); the runner gives it its agent calls (the agent thread or loop, the time limits,
the stop reasons an agent may not give).

How an episode ends besides the env's own ending: an exception from the agent or the env ends
only that episode, recorded with ``stop_reason`` ``"agent_error"`` / ``"env_error"`` and the error
in ``info`` (``SystemExit`` and ``KeyboardInterrupt`` raised by agent code too: only a real
Ctrl-C stops the run, which keeps every episode already recorded); an episode that reaches the
task's ``max_steps`` is stopped with ``"max_steps"``; an agent that raises
:class:`~arenagym.agents.agent.EpisodeStop` (an LLM agent out of context or tokens) ends its
episode with that stop reason, not as an error, if the reason is the agent's to give (see
:func:`check_agent_stop`: a snake_case name outside :data:`RESERVED_STOP_REASONS`, the reasons
the envs and the runners record themselves); any other ``EpisodeStop`` is recorded as
``"agent_error"`` saying what was refused. An episode's score is always what the env gave: an
episode the agent or the runner ended (a stop, an error, a timeout) scores its rewards so far, and
counts as solved (metric ``success``) only if the env itself ended it as solved. StopIteration
raised by agent or env code is recorded as a RuntimeError caused by it. An agent call that runs
past the suite's
``agent_call_timeout_s``, or past what is left of ``episode_timeout_s`` (the agent's calls of one
episode together), ends the episode with ``"agent_timeout"``: the runner stops waiting and goes
on, and ``info["traceback"]`` shows where the agent was. Python cannot stop a thread, so a hung
agent keeps its daemon thread until its call returns; it holds no thread of the pool, and the
process does not wait for it at exit (an async agent's timed-out call is cancelled; one that
ignores the cancellation keeps the agent loop's daemon thread the same way). Time limits beyond
``threading.TIMEOUT_MAX`` (about 292 years) mean no limit.

What is kept of each episode: its row, and in the same transaction its transcript (every turn's
observation, action, reward, reward components, clean reward, invalid-action flag, the agent
call's latency and, where the agent reports them, its token counts; see
:mod:`arenagym.benchmarks.transcripts`), read back with
:meth:`~arenagym.benchmarks.store.ResultsStore.transcript`.

What a run says: progress on stderr (a rich bar on a terminal; otherwise a plain line every
:data:`PROGRESS_INTERVAL_S` seconds and one at the end, so that a piped or logged run shows it
too), and a :class:`RunSummary` whose ``failures`` group the failed episodes by their error's
first line. ``limit`` plays only the first N episodes of each task, in the suite's seed order.

Before the first episode, the agent and each task's env are built once, so a typo in kwargs is
one clear :class:`RunSetupError` rather than a store full of error rows (that first build has no
time limit: it may load a model).

Secrets never reach the store, the progress bar or an error message: an API key given in the
agent spec (``api_key=...``) or its kwargs is stored and shown as ``***``
(:func:`~arenagym.agents.specs.redact_secrets`), and every occurrence of such a key (or of the key an
``openai:`` spec reads from the environment) in recorded errors, tracebacks and transcripts is
replaced too.

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
import itertools
import json
import math
import queue
import re
import sys
import threading
import time
import traceback
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import aclosing, contextmanager, suppress
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

from arenagym.agents.agent import Agent, EpisodeStop
from arenagym.agents.episode import (
    AgentCalls,
    EnvStep,
    EpisodeFailure,
    aplay_episode,
    close_quietly,
    describe,
    in_executor,
    no_stop_iteration,
)
from arenagym.agents.specs import (
    build_agent,
    redact_secrets,
    redact_spec,
    resolve_agent_factory,
    secret_values,
)
from arenagym.benchmarks.store import AGENT_TIMEOUT, ERROR_STOP_REASONS, EpisodeRow, ResultsStore
from arenagym.benchmarks.suite import MAX_SEED, Suite, Task, episode_reset_seed
from arenagym.benchmarks.transcripts import (
    EncodedTranscript,
    TurnRecorder,
    agent_token_counts,
    agent_turn_count,
    encode_transcript,
)

T = TypeVar("T")

#: Episodes played at once when the caller does not say.
DEFAULT_CONCURRENCY = 8

#: Seconds between two plain progress lines when stderr is not a terminal.
PROGRESS_INTERVAL_S = 5.0

#: Failed episodes (games) a :class:`FailureGroup` names; the rest are only counted.
MAX_FAILURE_EXAMPLES = 20


class RunSetupError(ValueError):
    """The agent or a task's env cannot be built at all, so no episode was played."""


class AgentTimeout(Exception):
    """An agent call ran past a time limit of the suite (recorded, never raised to callers)."""


#: Stop reasons that count as failed episodes in a run's summary and progress bar.
FAILED_STOP_REASONS: frozenset[str] = frozenset({"agent_error", "env_error", AGENT_TIMEOUT})

#: Stop reasons an agent may not give with :class:`~arenagym.agents.agent.EpisodeStop`: those the
#: envs record (the shared ones of ``arenagym.envs.core.text_env.STOP_REASONS``, the families'
#: own, the games' won/lost/draw) and those the runners record themselves.
RESERVED_STOP_REASONS: frozenset[str] = frozenset(
    {
        # the envs' shared reasons
        "solved",
        "failed",
        "max_turns",
        "invalid_action",
        "timeout",
        "env_error",
        # the families' own, and the games'
        "no_answer",
        "completed",
        "won",
        "lost",
        "draw",
        # the runners'
        "agent_error",
        AGENT_TIMEOUT,
        "max_steps",
        "terminated",
        "truncated",
        "unfinished",
    }
)

_AGENT_STOP_REASON = re.compile(r"[a-z][a-z0-9_]{0,63}")


class RefusedEpisodeStop(Exception):
    """An agent raised an :class:`~arenagym.agents.agent.EpisodeStop` whose stop reason is not
    the agent's to give (recorded as the episode's ``agent_error``)."""


def check_agent_stop(stop: EpisodeStop) -> None:
    """Raise :class:`RefusedEpisodeStop` unless ``stop`` names a stop reason an agent may give:
    a snake_case name (at most 64 characters) outside :data:`RESERVED_STOP_REASONS`, such as the
    chat agent's ``"context_overflow"`` and ``"max_tokens"``.

    Example:
        >>> check_agent_stop(EpisodeStop("context_overflow"))
        >>> check_agent_stop(EpisodeStop("solved", "I win"))
        Traceback (most recent call last):
        ...
        arenagym.benchmarks.runner.RefusedEpisodeStop: the agent raised EpisodeStop('solved'),
        but 'solved' is a stop reason only the env or the runner records; ...
    """
    reason = getattr(stop, "stop_reason", None)
    if not isinstance(reason, str) or not _AGENT_STOP_REASON.fullmatch(reason):
        shown = _safe_repr(reason)
        raise RefusedEpisodeStop(
            f"the agent raised EpisodeStop({shown}), but a stop reason must be a snake_case "
            "string of at most 64 characters, such as 'context_overflow' or 'max_tokens'"
        )
    if reason in RESERVED_STOP_REASONS:
        raise RefusedEpisodeStop(
            f"the agent raised EpisodeStop({reason!r}), but {reason!r} is a stop reason only the "
            "env or the runner records; an agent ends its episode with a reason of its own, "
            "such as 'context_overflow' or 'max_tokens'"
        )


def stop_details(stop: EpisodeStop) -> dict[str, Any]:
    """What an accepted :class:`~arenagym.agents.agent.EpisodeStop` tells about itself, for a
    row's ``info``: its message and its ``info`` (when that is a dict)."""
    info = getattr(stop, "info", None)
    extra = dict(info) if isinstance(info, dict) else {}
    if info is not None and not isinstance(info, dict):
        extra["info"] = _safe_repr(info)
    return {**extra, "message": _safe_str(stop)}


def _safe_str(value: object) -> str:
    try:
        return str(value)
    except Exception as error:  # an agent's exception whose __str__ raises
        return f"<str() failed: {type(error).__name__}>"


def _safe_repr(value: object) -> str:
    try:
        text = repr(value)
    except Exception as error:
        return f"<repr() failed: {type(error).__name__}>"
    return text if len(text) <= 200 else text[:199] + "…"


def wait_timeout(seconds: float) -> float | None:
    """``seconds`` as a timeout for a wait: ``None`` (no limit) for ``inf`` and for anything
    beyond ``threading.TIMEOUT_MAX``, which the waits of ``threading`` and
    ``concurrent.futures`` refuse with an OverflowError.

    >>> wait_timeout(2.5), wait_timeout(math.inf), wait_timeout(1e10)
    (2.5, None, None)
    """
    return None if seconds > threading.TIMEOUT_MAX else seconds


class AgentThread:
    """Runs one episode's agent calls, one at a time, on a daemon thread of its own.

    Why a thread per episode and not the runner's pool: Python cannot stop a thread, so an agent
    whose call never returns keeps the thread it runs on. On a pool thread it would hold a slot
    for good (as many hung agents as the concurrency stall the run) and the process would wait
    for it at exit; on its own daemon thread it holds only that thread, and the caller just stops
    waiting for the call's future. Every exception of the call, ``SystemExit`` and
    ``KeyboardInterrupt`` included, goes to its future, never up the thread (``StopIteration`` as
    a ``RuntimeError`` caused by it, see :func:`no_stop_iteration`). The thread starts with the
    first call and ends after :meth:`close` (once the call it is in, if any, returns).

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
                    result = no_stop_iteration(call)
                except BaseException as error:  # the agent's SystemExit too: the caller judges
                    future.set_exception(error)
                else:
                    future.set_result(result)
                finally:
                    self._busy = False
            del item, future, call  # hold nothing of a finished call while waiting


class AgentLoop:
    """An event loop on a daemon thread of its own, where async agents' coroutines run.

    Why not the caller's loop: an agent's coroutine that blocks (``time.sleep`` in ``aact``)
    would stall every wait of the runner, and one that ignores cancellation would keep
    ``asyncio.run`` from returning. Here the caller only waits for a call's future: a timed-out
    call is cancelled (its future is cancelled), and one that ignores the cancellation is left
    running. The loop starts with the first call; :meth:`close` lets it cancel what is left and
    end, which a coroutine that ignores cancellation delays for good, on a daemon thread that
    the process does not wait for at exit.

    Example:
        >>> async def double(x: int) -> int:
        ...     return 2 * x
        >>> agents = AgentLoop("demo")
        >>> agents.submit(lambda: double(21)).result()
        42
        >>> agents.close()
    """

    def __init__(self, name: str = "arenagym-agent-loop") -> None:
        self.name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._closed = False
        self._tasks: dict[Future[Any], list[asyncio.Task[Any]]] = {}

    def submit(self, start: Callable[[], Awaitable[T]]) -> Future[T]:
        """Run ``await start()`` on the loop; the future holds its result or exception
        (``SystemExit``/``KeyboardInterrupt`` of the agent's code as :class:`_AgentRaised`).
        Cancelling the future cancels the coroutine."""
        holder: list[asyncio.Task[Any]] = []
        future = asyncio.run_coroutine_threadsafe(self._run(start, holder), self._started())
        with self._lock:
            self._tasks[future] = holder
        future.add_done_callback(self._forget)  # at once if it is done already
        return future

    def stack(self, future: Future[Any]) -> str:
        """Where the coroutine of ``future``'s call is now ("" once it has finished): the loop
        thread's stack while the coroutine runs (e.g. blocks the loop), else where it awaits."""
        with self._lock:
            holder = self._tasks.get(future)
            thread = self._thread
        if not holder:
            return ""
        if getattr(holder[0].get_coro(), "cr_running", False) and thread is not None:
            frame = sys._current_frames().get(thread.ident or -1)
            if frame is not None:
                return "".join(traceback.format_stack(frame))
        return _task_stack(holder[0])

    def close(self) -> None:
        """Let the loop cancel the calls still running and end once they have (idempotent)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            loop = self._loop
        if loop is not None:
            loop.call_soon_threadsafe(loop.stop)

    def _started(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._closed:
                raise RuntimeError(f"{self.name} is closed")
            if self._loop is None:
                loop = asyncio.new_event_loop()
                self._thread = threading.Thread(
                    target=self._serve, args=(loop,), name=self.name, daemon=True
                )
                self._thread.start()
                self._loop = loop
            return self._loop

    def _forget(self, future: Future[Any]) -> None:
        with self._lock:
            self._tasks.pop(future, None)

    @staticmethod
    async def _run(start: Callable[[], Awaitable[T]], holder: list[asyncio.Task[Any]]) -> T:
        task = asyncio.current_task()
        if task is not None:
            holder.append(task)
        return await _contained(no_stop_iteration(start))

    def _serve(self, loop: asyncio.AbstractEventLoop) -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_forever()  # until close()
            left = asyncio.all_tasks(loop)
            for task in left:
                task.cancel()
            if left:  # a coroutine that ignores cancellation keeps this daemon thread
                loop.run_until_complete(asyncio.gather(*left, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.run_until_complete(loop.shutdown_default_executor())
        finally:
            loop.close()


class AgentClock:
    """The time limits of one agent in one episode: each call gets the lesser of the per-call
    limit and what is left of the per-episode one (seconds; ``inf``: no limit)."""

    def __init__(self, call_limit_s: float, episode_limit_s: float) -> None:
        self.call_limit_s = call_limit_s
        self.episode_limit_s = episode_limit_s
        self.used_s = 0.0

    @classmethod
    def for_suite(
        cls, suite: Suite, call_limit_s: float | None, episode_limit_s: float | None
    ) -> AgentClock:
        """The suite's limits, each overridden where the caller gives one (validated)."""
        return cls(
            check_time_limit(
                "agent_call_timeout_s",
                suite.agent_call_timeout_s if call_limit_s is None else call_limit_s,
            ),
            check_time_limit(
                "episode_timeout_s",
                suite.episode_timeout_s if episode_limit_s is None else episode_limit_s,
            ),
        )

    def next_limit(self) -> float:
        """Seconds the next call may take (``inf`` for no limit)."""
        return max(0.0, min(self.call_limit_s, self.episode_limit_s - self.used_s))

    def spend(self, seconds: float) -> None:
        """Count ``seconds`` of a finished (or abandoned) call against the episode's limit."""
        self.used_s += seconds

    def expired(self, what: str, limit_s: float, stack: str = "") -> EpisodeFailure:
        """What ends an episode (or a game) whose agent call ``what`` ran out of its ``limit_s``
        seconds: an ``agent_timeout`` with :meth:`message`, and, if ``stack`` says where the
        agent was, that as its traceback."""
        trace = f"{what} was here when its time ran out:\n{stack}" if stack else None
        return EpisodeFailure(AGENT_TIMEOUT, AgentTimeout(self.message(what, limit_s)), trace)

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
    """``value`` as a float if it is a time limit (seconds > 0, ``inf``: none), else ValueError.

    An integer too large for a float is ``inf``: beyond ``threading.TIMEOUT_MAX`` every limit
    means none (:func:`wait_timeout`).
    """
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise ValueError(f"{name} must be a number of seconds > 0 (inf: no limit), got {value!r}")
    try:
        return float(value)
    except OverflowError:
        return math.inf


@dataclass(frozen=True)
class FailureGroup:
    """Failed episodes (or games) of a run that ended with the same stop reason and the same
    first line of error: how many, and up to :data:`MAX_FAILURE_EXAMPLES` of them (each a dict
    with ``task``, ``seed``, ``episode``, and for games ``lineup``)."""

    stop_reason: str
    message: str
    count: int
    examples: tuple[dict[str, Any], ...] = ()

    def as_dict(self) -> dict[str, Any]:
        """The group as JSON-ready data."""
        return {
            "stop_reason": self.stop_reason,
            "message": self.message,
            "count": self.count,
            "examples": [dict(example) for example in self.examples],
        }


class FailureLog:
    r"""Groups a run's failed episodes by stop reason and the first line of their error.

    Example:
        >>> log = FailureLog()
        >>> for seed in (0, 1):
        ...     log.add("agent_error", "ConnectionError: refused\nmore", task="t", seed=seed)
        >>> [(g.count, g.message) for g in log.groups()]
        [(2, 'ConnectionError: refused')]
    """

    def __init__(self) -> None:
        self._groups: dict[tuple[str, str], list[Any]] = {}

    @staticmethod
    def first_line(error: Any) -> str:
        """The first non-empty line of ``error`` (at most 500 characters)."""
        text = error if isinstance(error, str) else _safe_str(error)
        line = next((part.strip() for part in text.splitlines() if part.strip()), "")
        return line if len(line) <= 500 else line[:499] + "…"

    def add(self, stop_reason: str, error: Any, **where: Any) -> None:
        """Count one failed episode; ``where`` says which (``task=``, ``seed=``, ...)."""
        key = (stop_reason, self.first_line(error) if error is not None else "")
        entry = self._groups.setdefault(key, [0, []])
        entry[0] += 1
        if len(entry[1]) < MAX_FAILURE_EXAMPLES:
            entry[1].append(where)

    def add_row(self, row: Any) -> None:
        """Count ``row`` (an episode or game row) if it failed (:data:`FAILED_STOP_REASONS`)."""
        if row.stop_reason not in FAILED_STOP_REASONS:
            return
        info = row.info if isinstance(row.info, dict) else {}
        error = info.get("error")
        if error is None and isinstance(info.get("stop"), dict):
            error = info["stop"].get("message")
        where: dict[str, Any] = {"task": row.task}
        if hasattr(row, "lineup"):
            where["lineup"] = list(row.lineup)
        where.update(seed=row.seed, episode=row.episode)
        self.add(row.stop_reason, error, **where)

    def groups(self) -> tuple[FailureGroup, ...]:
        """The groups, the largest first (then in the order they were first seen)."""
        ordered = sorted(self._groups.items(), key=lambda item: -item[1][0])
        return tuple(
            FailureGroup(reason, message, count, tuple(examples))
            for (reason, message), (count, examples) in ordered
        )


@dataclass(frozen=True)
class RunSummary:
    """What :func:`run_suite` or :func:`~arenagym.benchmarks.matches.run_matches` did: of
    ``total`` episodes (games), ``skipped`` were in the store already and ``ran`` were played,
    ``failed`` of them ending in agent/env errors or agent timeouts (:data:`FAILED_STOP_REASONS`);
    ``stop_reasons`` counts the played ones by stop reason. ``agent`` is the agent's name in the
    store (for games: how many players met). ``failures`` groups the failed ones by their
    error's first line (:class:`FailureGroup`).

    Example:
        >>> summary = RunSummary.count("demo", "random", 3, 1, Counter(solved=1, env_error=1), 0.0)
        >>> summary.ran, summary.failed, summary.errors
        (2, 1, 1)
    """

    suite: str
    agent: str
    total: int
    skipped: int
    ran: int
    failed: int
    duration_s: float
    stop_reasons: dict[str, int] = field(default_factory=dict)
    failures: tuple[FailureGroup, ...] = ()

    @property
    def errors(self) -> int:
        """Played episodes that ended in an agent or env error (``agent_error``/``env_error``;
        not timeouts, which are the agent's result): what makes ``arenagym run`` exit with 1."""
        return sum(self.stop_reasons.get(reason, 0) for reason in ERROR_STOP_REASONS)

    def as_dict(self) -> dict[str, Any]:
        """The summary as JSON-ready data (``arenagym run --json``).

        >>> RunSummary("demo", "random", 2, 0, 2, 0, 1.5, {"solved": 2}).as_dict()["errors"]
        0
        """
        return {
            "suite": self.suite,
            "agent": self.agent,
            "total": self.total,
            "skipped": self.skipped,
            "ran": self.ran,
            "failed": self.failed,
            "errors": self.errors,
            "duration_s": round(self.duration_s, 3),
            "stop_reasons": dict(sorted(self.stop_reasons.items())),
            "failures": [group.as_dict() for group in self.failures],
        }

    @classmethod
    def count(
        cls,
        suite: str,
        agent: str,
        total: int,
        skipped: int,
        stop_reasons: Counter[str],
        started: float,
        failures: FailureLog | None = None,
    ) -> RunSummary:
        """The summary of a run that began at ``time.perf_counter() == started`` and played
        episodes ending with ``stop_reasons`` (the failed ones grouped in ``failures``)."""
        return cls(
            suite=suite,
            agent=agent,
            total=total,
            skipped=skipped,
            ran=sum(stop_reasons.values()),
            failed=sum(stop_reasons[reason] for reason in FAILED_STOP_REASONS),
            duration_s=time.perf_counter() - started,
            stop_reasons=dict(stop_reasons),
            failures=failures.groups() if failures is not None else (),
        )


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
    limit: int | None = None,
    remote: RemotePlay | None = None,
) -> RunSummary:
    """Play the episodes of ``suite`` that ``store`` lacks for this agent; see the module doc.

    Args:
        suite: what to play.
        agent_spec: an agent name for :func:`~arenagym.agents.specs.load_agent`.
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
        limit: play (and count) only the first ``limit`` episodes of each task, in the order
            of :meth:`~arenagym.benchmarks.suite.Task.episode_keys` (seed by seed); ``None``:
            all of them.
        remote: play the episodes elsewhere (:data:`RemotePlay`, e.g. on a Ray cluster:
            :func:`arenagym.benchmarks.distributed.ray_episodes`) instead of on this process's
            threads; this process still checks the setup, skips finished episodes and alone
            writes the store. ``concurrency`` is then unused.

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
            limit=limit,
            remote=remote,
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
    limit: int | None = None,
    remote: RemotePlay | None = None,
) -> RunSummary:
    """:func:`run_suite` as a coroutine, for callers that already run an event loop.

    ``SystemExit`` or ``KeyboardInterrupt`` raised by an ``async`` agent's own code is recorded
    as its episode's error; under ``asyncio.run`` a real Ctrl-C cancels the run instead.
    """
    clock = AgentClock.for_suite(suite, agent_call_timeout_s, episode_timeout_s)
    arguments = (suite, agent_spec, agent_kwargs)
    check_limit(limit)
    options = (concurrency, progress, agent_name, retry_errors, clock, limit, remote)
    if isinstance(store, ResultsStore):
        return await _run(*arguments, store, *options)
    with ResultsStore(store) as opened:
        return await _run(*arguments, opened, *options)


@dataclass(frozen=True)
class _Job:
    task: Task
    seed: int
    episode: int


@dataclass(frozen=True)
class EpisodePlan:
    """What another process needs to play any episode of a run (besides its key): the suite,
    the agent's spec and kwargs (the suite's ``[generation]`` merged in), its name in the store,
    the agent's time limits and the secrets to hide. Picklable: a remote runner
    (:data:`RemotePlay`) ships it to its workers, which call :func:`play_planned_episode`.

    Example:
        >>> from arenagym.benchmarks.suite import load_suite
        >>> plan = EpisodePlan(load_suite("smoke"), "math-solver", {}, "math-solver", 600, 3600)
        >>> row, transcript = play_planned_episode(plan, "math-d1", 0, 0)
        >>> row.key, row.stop_reason
        (('smoke', 'math-d1', 'math-solver', 0, 0), 'solved')
    """

    suite: Suite
    agent_spec: str
    agent_kwargs: dict[str, Any]
    agent_name: str
    call_limit_s: float
    episode_limit_s: float
    secrets: frozenset[str] = frozenset()


#: How :func:`run_suite` plays episodes elsewhere (``remote=``): called once per run with the
#: plan and the keys ``(task, seed, episode)`` to play (in the suite's order), it yields each
#: played episode's row and encoded transcript as they come back, in any order. It may yield an
#: episode twice (a re-run after a lost worker): the runner records the first and drops the rest.
RemotePlay = Callable[
    [EpisodePlan, list[tuple[str, int, int]]],
    AsyncIterator[tuple[EpisodeRow, EncodedTranscript]],
]


def play_planned_episode(
    plan: EpisodePlan, task: str, seed: int, episode: int
) -> tuple[EpisodeRow, EncodedTranscript]:
    """Play one episode of ``plan`` in this process, exactly as :func:`run_suite` plays it
    locally (fresh agent, the same time limits, errors recorded in the row), and return its row
    and its encoded transcript, ready for :meth:`~arenagym.benchmarks.store.ResultsStore.add`.
    What a remote worker runs (see :class:`EpisodePlan` for an example); never called from
    inside a running event loop."""
    factory = resolve_agent_factory(plan.agent_spec)
    build = partial(build_agent, factory, plan.agent_spec, **plan.agent_kwargs)
    job = _Job(plan.suite.task(task), seed, episode)
    clock = AgentClock(plan.call_limit_s, plan.episode_limit_s)
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="arenagym-remote")
    agent_loop = AgentLoop(f"arenagym-agent-loop:{plan.suite.name}")
    try:
        row, turns = asyncio.run(
            _play_episode(
                executor,
                agent_loop,
                plan.suite,
                job,
                build,
                plan.agent_spec,
                plan.agent_kwargs,
                plan.agent_name,
                clock,
                plan.secrets,
            )
        )
    finally:
        agent_loop.close()
        executor.shutdown(wait=False, cancel_futures=True)
    return row, encode_transcript(turns)


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
    limit: int | None = None,
    remote: RemotePlay | None = None,
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
    try:  # resolved once: each episode builds its agent with this factory
        factory = resolve_agent_factory(agent_spec)
    except ValueError as error:
        raise RunSetupError(redact_secrets(str(error), secrets)) from None
    build = partial(build_agent, factory, agent_spec, **kwargs)
    for task in suite.tasks:
        check_seeds(f"task {task.name!r}", task.seeds)

    finished = store.finished_keys(suite.name, name)
    if retry_errors:
        finished -= {
            (row.task, row.seed, row.episode)
            for row in store.rows(suite=suite.name, agent=name)
            if row.is_error
        }
    done = _count_done(suite.tasks, finished, limit)
    total = sum(limited(task.n_episodes, limit) for task in suite.tasks)
    left = total - sum(done.values())
    started = time.perf_counter()
    stop_reasons: Counter[str] = Counter()
    failures = FailureLog()
    loop = asyncio.get_running_loop()
    executor = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="arenagym-run")
    agent_loop = AgentLoop(f"arenagym-agent-loop:{suite.name}")
    try:
        if left:
            pending_tasks = [
                task for task in suite.tasks if done[task.name] < limited(task.n_episodes, limit)
            ]
            await _check_setup(loop, executor, build, agent_spec, kwargs, pending_tasks, secrets)
        if retry_errors:  # only now that the agent and envs are known to build
            store.delete_errors(suite.name, name)
        if suite.tasks:
            store.set_leaderboard_settings(suite.name, suite.leaderboard_settings())
        jobs = (  # lazily: never a list of every episode
            _Job(task, seed, episode)
            for task in suite.tasks
            for seed, episode in itertools.islice(task.episode_keys(), limit)
            if (task.name, seed, episode) not in finished
        )
        with _progress_bar(progress, suite.name, name, total, total - left) as advance:

            async def play_and_record() -> None:
                for job in jobs:  # each worker takes the next episode when it is free
                    row, turns = await _play_episode(
                        executor,
                        agent_loop,
                        suite,
                        job,
                        build,
                        agent_spec,
                        kwargs,
                        name,
                        clock,
                        secrets,
                    )
                    # compressing the transcript may take a moment: on a pool thread; the row and
                    # it go in on the event-loop thread, one transaction per episode
                    encoded = await loop.run_in_executor(executor, encode_transcript, turns)
                    store.add(row, encoded)
                    stop_reasons[row.stop_reason] += 1
                    failures.add_row(row)
                    advance(row.stop_reason in FAILED_STOP_REASONS)

            async def record_remote(play: RemotePlay) -> None:
                plan = EpisodePlan(
                    suite, agent_spec, kwargs, name, clock.call_limit_s, clock.episode_limit_s,
                    secrets,
                )  # fmt: skip
                keys = [(job.task.name, job.seed, job.episode) for job in jobs]
                wanted = set(keys)
                async with aclosing(play(plan, keys)) as results:  # its finally runs at once
                    async for row, encoded in results:
                        key = (row.task, row.seed, row.episode)
                        if key not in wanted:  # a second copy of a re-run episode: never twice
                            continue
                        wanted.discard(key)
                        store.add(row, encoded)
                        stop_reasons[row.stop_reason] += 1
                        failures.add_row(row)
                        advance(row.stop_reason in FAILED_STOP_REASONS)
                if wanted:
                    raise RuntimeError(
                        f"{len(wanted)} episodes never came back from the remote workers "
                        "(the others are recorded; run the same command again to play them)"
                    )

            workers = (
                [asyncio.create_task(record_remote(remote))]
                if remote is not None and left
                else [asyncio.create_task(play_and_record()) for _ in range(min(concurrency, left))]
            )
            try:
                await asyncio.gather(*workers)
            except BaseException:  # a store failure or cancellation: stop the other episodes
                for worker in workers:
                    worker.cancel()
                await asyncio.gather(*workers, return_exceptions=True)
                raise
    finally:
        agent_loop.close()  # never waited for: a hung async agent keeps only its daemon thread
        executor.shutdown(wait=False, cancel_futures=True)
    return RunSummary.count(suite.name, name, total, total - left, stop_reasons, started, failures)


def check_limit(limit: int | None) -> None:
    """Raise ``ValueError`` unless ``limit`` is ``None`` or an int >= 1."""
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ValueError(f"limit must be an int >= 1 or None, got {limit!r}")


def limited(count: int, limit: int | None) -> int:
    """``count`` episodes (games) cut to ``limit`` (``None``: no cut).

    >>> limited(8, 3), limited(2, 3), limited(8, None)
    (3, 2, 8)
    """
    return count if limit is None else min(count, limit)


def check_seeds(where: str, seeds: tuple[int, ...]) -> None:
    """Raise :class:`RunSetupError` unless every seed is an int in ``0..MAX_SEED`` (the store
    keeps seeds as signed 64-bit integers)."""
    for seed in seeds:
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= MAX_SEED:
            raise RunSetupError(
                f"{where}: seed {_safe_repr(seed)} is not an integer from 0 to {MAX_SEED} "
                "(2**63 - 1)"
            )


def _count_done(
    tasks: tuple[Task, ...], finished: set[tuple[str, int, int]], limit: int | None = None
) -> Counter[str]:
    """How many episodes of each task (of its first ``limit`` ones) are among ``finished``
    (keys of other tasks, seeds or episode numbers, e.g. from an older version of the suite, do
    not count)."""
    done: Counter[str] = Counter({task.name: 0 for task in tasks})
    if limit is not None:
        for task in tasks:
            done[task.name] = sum(
                (task.name, seed, episode) in finished
                for seed, episode in itertools.islice(task.episode_keys(), limit)
            )
        return done
    shape = {task.name: (frozenset(task.seeds), task.episodes) for task in tasks}
    for task, seed, episode in finished:
        if task in shape and seed in shape[task][0] and 0 <= episode < shape[task][1]:
            done[task] += 1
    return done


async def _check_setup(
    loop: asyncio.AbstractEventLoop,
    executor: ThreadPoolExecutor,
    build: Callable[[], Agent],
    agent_spec: str,
    agent_kwargs: dict[str, Any],
    tasks: list[Task],
    secrets: frozenset[str] = frozenset(),
) -> None:
    """Build the agent and each task's env once, raising :class:`RunSetupError` if one fails
    (``SystemExit`` from their code too: it came from a worker thread, not from the user)."""
    builder = AgentThread("arenagym-agent-setup")  # a daemon: a hung build does not block exit
    try:
        await asyncio.wrap_future(builder.submit(build))
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
            env = await loop.run_in_executor(
                executor, lambda t=task: no_stop_iteration(gym.make, t.env, **t.kwargs)
            )
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
        await loop.run_in_executor(executor, close_quietly, env)


async def _play_episode(
    executor: ThreadPoolExecutor,
    agent_loop: AgentLoop,
    suite: Suite,
    job: _Job,
    build: Callable[[], Agent],
    agent_spec: str,
    agent_kwargs: dict[str, Any],
    agent_name: str,
    limits: AgentClock,
    secrets: frozenset[str] = frozenset(),
) -> tuple[EpisodeRow, list[dict[str, Any]]]:
    """Play one episode with :func:`~arenagym.agents.episode.aplay_episode` (to its end, its
    first exception, or the agent's time limit) and return its row and its transcript (with
    every secret of the agent's spec and kwargs hidden in both)."""
    task = job.task
    reset_seed = episode_reset_seed(job.seed, job.episode)
    started_at, timer = time.time(), time.perf_counter()
    calls = _TimedAgentCalls(
        build,
        AgentThread(f"arenagym-agent:{task.name}:{job.seed}:{job.episode}"),
        agent_loop,
        AgentClock(limits.call_limit_s, limits.episode_limit_s),
    )
    recorder = calls.recorder

    def on_step(step: EnvStep) -> None:
        recorder.stepped(step.reward, step.info)

    try:
        result = await aplay_episode(
            partial(gym.make, task.env, **task.kwargs),
            calls,
            seed=reset_seed,
            max_steps=task.max_steps,
            run_env=in_executor(executor),
            on_step=on_step,
        )
    finally:
        calls.thread.close()
    details: dict[str, Any] = {}
    if result.reset_info is not None:
        details["task_id"] = result.task_id
    if result.reward_components is not None:
        details["reward_components"] = result.reward_components
    if result.env_error is not None:  # the env's own fault report
        details["error"] = result.env_error
    if result.stop is not None:  # accepted by the agent calls: a reason of the agent's own
        details["stop"] = stop_details(result.stop)
    if result.failure is not None:
        details["error"] = describe(result.failure.error)
        details["traceback"] = result.failure.trace_text
    if result.close_error is not None:
        details["close_error"] = result.close_error
    details["invalid_actions"] = result.invalid_actions
    if result.stop_reason == AGENT_TIMEOUT:
        details["agent_time_s"] = round(calls.clock.used_s, 3)
    ended_by: str | None = None  # what ended the episode at its last turn, for the transcript
    if result.failure is not None:
        ended_by = details["error"]
    elif result.stop is not None:
        ended_by = f"{result.stop_reason}: {details['stop']['message']}"
    turns = redact_secrets(recorder.finish(ended_by), secrets)
    row = EpisodeRow(
        suite=suite.name,
        task=task.name,
        env_id=task.env,
        env_kwargs=redact_secrets(task.kwargs, secrets),
        agent=agent_name,
        seed=job.seed,
        episode=job.episode,
        reset_seed=reset_seed,
        metric=task.metric,
        score=_score(task.metric, result.reward, result.clean_reward, result.env_stop_reason),
        reward=result.reward,
        clean_reward=result.clean_reward,
        turns=result.turns,
        stop_reason=result.stop_reason,
        info=redact_secrets(details, secrets),
        agent_spec=redact_secrets(agent_spec, secrets),
        agent_kwargs=redact_secrets(agent_kwargs, secrets),
        started_at=started_at,
        finished_at=time.time(),
        duration_s=time.perf_counter() - timer,
    )
    return row, turns


class _TimedAgentCalls(AgentCalls):
    """The runner's agent calls: a synchronous agent's on the episode's :class:`AgentThread`, an
    async agent's coroutines (``aact``/``areset``) on the run's :class:`AgentLoop`, each within
    the time the agent has left (:class:`AgentClock`); every way a call fails ends the episode
    as the agent's (:func:`agent_call_result`; a timeout as ``agent_timeout`` with where the agent
    was). Agent code never runs on the runner's own event loop, so an agent cannot block it.
    Every ``act`` goes into :attr:`recorder` (the episode's transcript): what the agent saw, what
    it wrote, how long it took and the token counts it reports."""

    def __init__(
        self,
        build: Callable[[], Agent],
        thread: AgentThread,
        agent_loop: AgentLoop,
        clock: AgentClock,
    ) -> None:
        super().__init__(build)
        self.thread = thread
        self.agent_loop = agent_loop
        self.clock = clock
        self.recorder = TurnRecorder()

    async def build(self) -> Agent:
        return await self._timed("building the agent", lambda: self.thread.submit(self._build))

    async def reset(self, agent: Any, system_prompt: str) -> None:
        await self._timed("reset()", lambda: self._submit(agent, "reset", system_prompt))

    async def act(self, agent: Any, observation: Any, turn: int) -> str:
        self.recorder.begin(turn, observation)
        before = agent_turn_count(agent)
        try:
            action = await self._timed(
                f"act() of turn {turn}", lambda: self._submit(agent, "act", observation)
            )
        finally:
            self.recorder.ended()
        prompt_tokens, completion_tokens = agent_token_counts(agent, before)
        self.recorder.acted(
            action, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens
        )
        return action

    def _submit(self, agent: Any, name: str, argument: Any) -> Future[Any]:
        """Start ``agent``'s ``a<name>`` coroutine on the agent loop if it has one, else its
        ``<name>`` on the agent thread."""
        method = self.method(agent, name)
        if inspect.iscoroutinefunction(method):
            return self.agent_loop.submit(partial(method, argument))
        return self.thread.submit(method, argument)

    async def _timed(self, what: str, start: Callable[[], Future[T]]) -> T:
        """Await the call ``start()`` starts within the time the agent has left."""
        limit = self.clock.next_limit()
        if limit <= 0:
            raise self.clock.expired(what, limit)
        try:
            future = start()
        except BaseException as error:  # e.g. an attribute of the agent that raises
            raise EpisodeFailure("agent_error", error) from error
        pending = asyncio.wrap_future(future)  # cancelling it cancels the call's future
        began = time.perf_counter()
        try:
            finished, _ = await asyncio.wait({pending}, timeout=wait_timeout(limit))
        except BaseException:  # the run is cancelled: stop the agent's coroutine too
            pending.cancel()
            raise
        finally:
            self.clock.spend(time.perf_counter() - began)
        if not finished:
            stack = self.thread.stack() or self.agent_loop.stack(future)
            pending.cancel()
            raise self.clock.expired(what, limit, stack)
        if not pending.cancelled():
            pending.exception()  # judged below from the call's own future; asyncio's copy is
            # marked as seen, so that it is never reported as "exception was never retrieved"
        return agent_call_result(future)


def agent_call_result[R](future: Future[R]) -> R:
    """The result of a finished agent call, or what ends the episode: an
    :class:`~arenagym.agents.agent.EpisodeStop` whose reason is the agent's to give
    (:func:`check_agent_stop`) is re-raised as it is; anything else the call raised
    (``SystemExit`` and ``KeyboardInterrupt`` of agent code too, a refused stop saying why)
    becomes an :class:`~arenagym.agents.episode.EpisodeFailure` with ``"agent_error"``. Shared by
    the runner (awaited calls) and the match runner (waited-for calls).

    Example:
        >>> done = Future()
        >>> done.set_exception(ValueError("no move"))
        >>> agent_call_result(done)
        Traceback (most recent call last):
        ...
        arenagym.agents.episode.EpisodeFailure: agent_error
    """
    try:
        return future.result()
    except EpisodeStop as stop:  # the agent ends the episode on purpose (context_overflow)
        try:
            check_agent_stop(stop)
        except RefusedEpisodeStop as refused:
            trace = "".join(traceback.format_exception(stop))
            raise EpisodeFailure("agent_error", refused, trace=trace) from stop
        raise
    except _AgentRaised as raised:
        raise EpisodeFailure("agent_error", raised.error) from raised.error
    except BaseException as error:  # SystemExit/KeyboardInterrupt of an agent's thread: its own
        raise EpisodeFailure("agent_error", error) from error


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


def _score(metric: str, reward: float, clean_reward: float, env_stop_reason: str) -> float:
    """The episode's score: its summed (clean) reward, or for ``success`` 1.0 if the env ended
    it as ``solved`` (``env_stop_reason`` is "" when the agent or the runner ended it)."""
    if metric == "success":
        return float(env_stop_reason == "solved")
    return reward if metric == "reward" else clean_reward


@contextmanager
def _progress_bar(
    enabled: bool, suite: str, agent: str, total: int, done: int, unit: str = "episodes"
) -> Iterator[Callable[[bool], None]]:
    """Progress on stderr over the whole suite; yields ``advance(failed)``. On a terminal a rich
    progress bar; otherwise (piped, logged, CI) plain lines (:class:`PlainProgress`)."""
    if not enabled:
        yield lambda failed: None
        return
    label = f"{suite} · {agent if len(agent) <= 40 else agent[:39] + '…'}"
    console = Console(stderr=True)
    if not console.is_terminal:
        with PlainProgress(label, total, done, unit) as plain:
            yield plain.advance
        return
    failures = 0
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
    ) as progress:
        bar = progress.add_task(label, total=total, completed=done)

        def advance(failed: bool) -> None:
            nonlocal failures
            failures += failed
            suffix = f" [red]({failures} failed)" if failures else ""
            progress.update(bar, advance=1, description=label + suffix)

        yield advance


class PlainProgress:
    """Progress as plain lines on stderr, for output that is not a terminal: one line every
    ``interval_s`` seconds (default :data:`PROGRESS_INTERVAL_S`) while the run lasts, and one
    at its end, each saying how many are done of the total, how many failed and the rate.

    Why a line on a timer rather than per episode: a log should show a long run alive even
    when no episode finishes for minutes, and stay short when thousands finish a second.

    Example:
        >>> import io
        >>> out = io.StringIO()
        >>> with PlainProgress("demo · random", total=3, done=1, stream=out) as progress:
        ...     progress.advance(False)
        ...     progress.advance(True)
        >>> print(out.getvalue().split(", 0:")[0])
        [progress] demo · random: 3/3 episodes done, 1 failed
    """

    def __init__(
        self,
        label: str,
        total: int,
        done: int,
        unit: str = "episodes",
        interval_s: float | None = None,
        stream: Any = None,
    ) -> None:
        self.label = label
        self.total = total
        self.done = done
        self.unit = unit
        self.failed = 0
        self.interval_s = PROGRESS_INTERVAL_S if interval_s is None else interval_s
        self._stream = stream
        self._first = done
        self._started = time.perf_counter()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def advance(self, failed: bool) -> None:
        """One more finished (``failed``: one that failed)."""
        self.done += 1
        self.failed += bool(failed)

    def line(self) -> str:
        """The progress line now."""
        elapsed = time.perf_counter() - self._started
        played = self.done - self._first
        rate = played / elapsed if elapsed > 0 else 0.0
        clock = f"{int(elapsed // 3600)}:{int(elapsed % 3600 // 60):02d}:{int(elapsed % 60):02d}"
        return (
            f"[progress] {self.label}: {self.done}/{self.total} {self.unit} done, "
            f"{self.failed} failed, {clock} elapsed, {rate:.2f} {self.unit}/s"
        )

    def _print(self) -> None:
        stream = self._stream if self._stream is not None else sys.stderr
        with suppress(OSError, ValueError):  # the reader went away: not worth a crash
            print(self.line(), file=stream, flush=True)

    def _tick(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._print()

    def __enter__(self) -> PlainProgress:
        self._thread = threading.Thread(target=self._tick, name="arenagym-progress", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self._print()
