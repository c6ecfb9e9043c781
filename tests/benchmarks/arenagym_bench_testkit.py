"""Small envs and agents for the benchmark tests (importable as ``arenagym_bench_testkit``).

``conftest.py`` puts this folder on ``sys.path`` so that the runner can load these agents by
``"arenagym_bench_testkit:Class"`` and make the env by ``"ArenagymTest/Countdown-v0"``.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any, ClassVar

import gymnasium as gym

from arenagym.envs.core.spaces import UnicodeText

ENV_ID = "ArenagymTest/Countdown-v0"


class CountdownEnv(gym.Env[str, str]):
    """``turns`` steps; each step's clean reward is 1 if the action is ``"right"``, else 0.

    The observation names the reset seed (``"seed=<n> turn=<t>"``) so agents can be told to
    crash in one chosen episode. ``noise`` is added to the reward (the clean reward stays in
    ``info["clean_reward"]``); ``crash_on_reset`` / ``crash_on_step`` list reset seeds whose
    ``reset`` / first ``step`` raise, and ``fault_on_step`` those whose first step reports an
    infrastructure fault the way the env contract says (``stop_reason="env_error"``).
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": []}

    def __init__(
        self,
        turns: int = 1,
        noise: float = 0.0,
        crash_on_reset: list[int] | None = None,
        crash_on_step: list[int] | None = None,
        fault_on_step: list[int] | None = None,
    ) -> None:
        if turns < 1:
            raise ValueError(f"turns must be >= 1, got {turns}")
        self.turns = turns
        self.noise = noise
        self.crash_on_reset = set(crash_on_reset or [])
        self.crash_on_step = set(crash_on_step or [])
        self.fault_on_step = set(fault_on_step or [])
        self.observation_space = UnicodeText(200)
        self.action_space = UnicodeText(200)
        self._seed = -1
        self._turn = 0
        self._right = 0

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[str, dict[str, Any]]:
        super().reset(seed=seed)
        if seed in self.crash_on_reset:
            raise RuntimeError(f"reset exploded for seed {seed}")
        self._seed = -1 if seed is None else seed
        self._turn = self._right = 0
        info = {"system_prompt": "Say right.", "task_id": f"countdown-{self._seed}"}
        return f"seed={self._seed} turn=0", info

    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        if self._seed in self.crash_on_step:
            raise RuntimeError(f"step exploded for seed {self._seed}")
        if self._seed in self.fault_on_step:
            info = {"reward_components": {}, "stop_reason": "env_error", "error": "sandbox died"}
            return "the sandbox died", 0.0, False, True, info
        self._turn += 1
        clean = float(action == "right")
        self._right += int(clean)
        info: dict[str, Any] = {
            "reward_components": {"right": clean, "noise": self.noise},
            "clean_reward": clean,
        }
        terminated = self._turn >= self.turns
        if terminated:
            info["stop_reason"] = "solved" if self._right == self.turns else "failed"
        return f"seed={self._seed} turn={self._turn}", clean + self.noise, terminated, False, info


if ENV_ID not in gym.registry:
    gym.register(id=ENV_ID, entry_point=CountdownEnv)


class ConstAgent:
    """Always says ``action``."""

    def __init__(self, action: str = "right") -> None:
        self.action = action

    def reset(self, system_prompt: str) -> None:
        self.system_prompt = system_prompt

    def act(self, observation: str) -> str:
        return self.action


class SleepAgent(ConstAgent):
    """Sleeps ``delay`` seconds in every ``act`` (a blocking call, so it runs in a thread)."""

    def __init__(self, delay: float = 0.2, action: str = "right") -> None:
        super().__init__(action)
        self.delay = delay

    def act(self, observation: str) -> str:
        time.sleep(self.delay)
        return self.action


class AsyncAgent:
    """An agent with ``aact``/``areset`` coroutines; its sync methods must not be used."""

    def __init__(self, delay: float = 0.2) -> None:
        self.delay = delay

    def reset(self, system_prompt: str) -> None:
        raise AssertionError("the runner called reset() although areset() exists")

    def act(self, observation: str) -> str:
        raise AssertionError("the runner called act() although aact() exists")

    async def areset(self, system_prompt: str) -> None:
        await asyncio.sleep(0)

    async def aact(self, observation: str) -> str:
        await asyncio.sleep(self.delay)
        return "right"


class CrashAgent(ConstAgent):
    """Raises in ``act`` when the observation starts with ``seed=<crash_on>``."""

    def __init__(self, crash_on: int = -2) -> None:
        super().__init__("right")
        self.crash_on = crash_on

    def act(self, observation: str) -> str:
        if observation.startswith(f"seed={self.crash_on} "):
            raise ValueError(f"agent gave up on seed {self.crash_on}")
        return self.action


class CountingAgent(ConstAgent):
    """Counts its instances and their ``reset`` calls (class-wide, thread-safe)."""

    instances: ClassVar[int] = 0
    resets: ClassVar[int] = 0
    _lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self) -> None:
        super().__init__("right")
        with CountingAgent._lock:
            CountingAgent.instances += 1

    def reset(self, system_prompt: str) -> None:
        with CountingAgent._lock:
            CountingAgent.resets += 1

    @classmethod
    def zero(cls) -> None:
        cls.instances = cls.resets = 0


class OutOfContextPlayer:
    """Plays one game move, then ends its episode on purpose the way an LLM agent whose next
    prompt would not fit its context does (``EpisodeStop("context_overflow")``)."""

    def __init__(self) -> None:
        self.moves = 0

    def reset(self, system_prompt: str) -> None:
        self.moves = 0

    def act(self, observation: str) -> str:
        from arenagym.agents.agent import EpisodeStop

        if self.moves >= 1:
            raise EpisodeStop(
                "context_overflow", "the next prompt has 9000 tokens", prompt_tokens=9000
            )
        self.moves += 1
        return "[0 1]"
