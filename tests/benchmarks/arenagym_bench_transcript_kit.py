"""Agents for the transcript tests (importable as ``arenagym_bench_transcript_kit``).

``LeakyAgent`` holds an API key and leaks it everywhere a transcript could keep it: in its
actions, in the error it raises, and (through the env's echo) in the next observation.
"""

from __future__ import annotations

from typing import Any, ClassVar

import gymnasium as gym

from arenagym.envs.core.spaces import UnicodeText

ECHO_ENV_ID = "ArenagymTest/Echo-v0"


class EchoEnv(gym.Env[str, str]):
    """Each observation repeats the last action; ``turns`` steps; reward 1 per step."""

    metadata: ClassVar[dict[str, Any]] = {"render_modes": []}

    def __init__(self, turns: int = 3) -> None:
        self.turns = turns
        self.observation_space = UnicodeText(100_000_000)
        self.action_space = UnicodeText(100_000_000)
        self._turn = 0

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[str, dict[str, Any]]:
        super().reset(seed=seed)
        self._turn = 0
        return "say something", {"system_prompt": "Talk.", "task_id": f"echo-{seed}"}

    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        self._turn += 1
        done = self._turn >= self.turns
        info: dict[str, Any] = {"reward_components": {"talk": 1.0}, "clean_reward": 1.0}
        if done:
            info["stop_reason"] = "completed"
        return f"you said: {action}", 1.0, done, False, info


if ECHO_ENV_ID not in gym.registry:
    gym.register(id=ECHO_ENV_ID, entry_point=EchoEnv)


class LeakyAgent:
    """Writes its ``api_key`` in every action; raises an error holding it on turn ``fail_on``."""

    def __init__(self, api_key: str = "", fail_on: int = 0) -> None:
        self.api_key = api_key
        self.fail_on = fail_on
        self.turn = 0

    def reset(self, system_prompt: str) -> None:
        self.turn = 0

    def act(self, observation: str) -> str:
        self.turn += 1
        if self.turn == self.fail_on:
            raise ValueError(f"the server refused key {self.api_key}")
        return f"my key is {self.api_key}; you told me {observation[-40:]}"


class VerboseAgent:
    """Answers with ``size`` characters (to go over the transcript's size cap)."""

    def __init__(self, size: int = 10) -> None:
        self.size = size

    def reset(self, system_prompt: str) -> None:
        pass

    def act(self, observation: str) -> str:
        return "v" * self.size
