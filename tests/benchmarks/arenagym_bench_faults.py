"""Agents (and an env) that misbehave the ways a benchmark run must survive: they hang, block
or ignore cancellation, raise ``SystemExit`` / ``KeyboardInterrupt`` / ``StopIteration``, or stop
their episode with a reason that is not theirs (importable as ``arenagym_bench_faults``, like the
testkit).

A hung agent blocks on :data:`RELEASE`; tests call :func:`release` when they are done so that the
threads they left behind can end.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from typing import Any

import gymnasium as gym
from arenagym_bench_testkit import CountdownEnv

#: Set to let every hung agent return.
RELEASE = threading.Event()


def release() -> None:
    """Let every hung agent's call return (its result is ignored: its episode is over)."""
    RELEASE.set()


def rearm() -> None:
    """Make agents hang again (before a test that wants them to)."""
    RELEASE.clear()


def _targeted(observation: str, on_seed: int | None) -> bool:
    return on_seed is None or observation.startswith(f"seed={on_seed} ")


class HangAgent:
    """Never returns from ``where`` (``"act"`` or ``"reset"``) until :func:`release`; with
    ``on_seed``, ``act`` hangs only in the episode of that reset seed."""

    def __init__(self, where: str = "act", on_seed: int | None = None) -> None:
        self.where = where
        self.on_seed = on_seed

    def reset(self, system_prompt: str) -> None:
        if self.where == "reset":
            RELEASE.wait()

    def act(self, observation: str) -> str:
        if self.where == "act" and _targeted(observation, self.on_seed):
            RELEASE.wait()
        return "right"


class AsyncHangAgent:
    """An ``aact`` coroutine that never finishes (until :func:`release`)."""

    async def areset(self, system_prompt: str) -> None:
        await asyncio.sleep(0)

    async def aact(self, observation: str) -> str:
        while not RELEASE.is_set():
            await asyncio.sleep(0.05)
        return "right"

    def reset(self, system_prompt: str) -> None:
        raise AssertionError("the runner called reset() although areset() exists")

    def act(self, observation: str) -> str:
        raise AssertionError("the runner called act() although aact() exists")


def _raise(kind: str) -> None:
    if kind == "exit":
        raise SystemExit(3)
    if kind == "interrupt":
        raise KeyboardInterrupt
    raise ValueError(f"unknown kind {kind!r}")


class RaiseAgent:
    """Raises ``SystemExit(3)`` (``kind="exit"``) or ``KeyboardInterrupt`` (``"interrupt"``) in
    ``act`` (only in the episode of reset seed ``on_seed``, if given), in ``reset``
    (``where="reset"``), or when built (``where="init"``)."""

    def __init__(self, kind: str = "exit", where: str = "act", on_seed: int | None = None) -> None:
        self.kind = kind
        self.where = where
        self.on_seed = on_seed
        if where == "init":
            _raise(kind)

    def reset(self, system_prompt: str) -> None:
        if self.where == "reset":
            _raise(self.kind)

    def act(self, observation: str) -> str:
        if self.where == "act" and _targeted(observation, self.on_seed):
            _raise(self.kind)
        return "right"


class AsyncRaiseAgent:
    """Raises ``SystemExit(3)`` or ``KeyboardInterrupt`` inside its ``aact`` coroutine."""

    def __init__(self, kind: str = "exit") -> None:
        self.kind = kind

    async def areset(self, system_prompt: str) -> None:
        await asyncio.sleep(0)

    async def aact(self, observation: str) -> str:
        await asyncio.sleep(0)
        _raise(self.kind)
        return "right"

    def reset(self, system_prompt: str) -> None:
        raise AssertionError("the runner called reset() although areset() exists")

    def act(self, observation: str) -> str:
        raise AssertionError("the runner called act() although aact() exists")


class StopAgent:
    """Plays ``"right"`` for ``moves`` turns, then raises ``EpisodeStop(stop_reason, message)``
    (whatever ``stop_reason`` is: a reserved reason, a list, ...)."""

    def __init__(self, stop_reason: Any = "solved", message: str = "I win", moves: int = 0) -> None:
        self.stop_reason = stop_reason
        self.message = message
        self.moves = moves
        self.played = 0

    def reset(self, system_prompt: str) -> None:
        self.played = 0

    def act(self, observation: str) -> str:
        from arenagym.agents.agent import EpisodeStop

        if self.played >= self.moves:
            raise EpisodeStop(self.stop_reason, self.message)
        self.played += 1
        return "right"


class StubbornAsyncAgent:
    """An ``aact`` coroutine that swallows every cancellation and keeps waiting until
    :func:`release`."""

    async def aact(self, observation: str) -> str:
        while not RELEASE.is_set():
            with contextlib.suppress(asyncio.CancelledError):  # cancelled? keep waiting
                await asyncio.sleep(0.05)
        return "right"

    def reset(self, system_prompt: str) -> None:
        pass

    def act(self, observation: str) -> str:
        raise AssertionError("the runner called act() although aact() exists")


class BlockingAsyncAgent:
    """An ``aact`` coroutine that blocks its event loop with ``time.sleep(seconds)``."""

    def __init__(self, seconds: float = 2.0) -> None:
        self.seconds = seconds

    async def aact(self, observation: str) -> str:
        time.sleep(self.seconds)
        return "right"

    def reset(self, system_prompt: str) -> None:
        pass

    def act(self, observation: str) -> str:
        raise AssertionError("the runner called act() although aact() exists")


class StopIterationAgent:
    """Raises ``StopIteration`` in ``act`` (``where="act"``), ``reset`` or ``__init__``."""

    def __init__(self, where: str = "act") -> None:
        self.where = where
        if where == "init":
            raise StopIteration("no more agents")

    def reset(self, system_prompt: str) -> None:
        if self.where == "reset":
            raise StopIteration("no more prompts")

    def act(self, observation: str) -> str:
        if self.where == "act":
            raise StopIteration("no more moves")
        return "right"


class StopIterationEnv(CountdownEnv):
    """The countdown env whose ``step`` (``where="step"``) or ``reset`` raises StopIteration."""

    def __init__(self, where: str = "step", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.where = where

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[str, dict[str, Any]]:
        if self.where == "reset":
            raise StopIteration("no more episodes")
        return super().reset(seed=seed, options=options)

    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        if self.where == "step":
            raise StopIteration("no more steps")
        return super().step(action)


STOP_ITERATION_ENV_ID = "ArenagymTest/StopIterationCountdown-v0"
if STOP_ITERATION_ENV_ID not in gym.registry:
    gym.register(STOP_ITERATION_ENV_ID, entry_point=StopIterationEnv)
