"""Tiny learnable envs for the trainer tests (importable as ``arenagym_trainers_testkit``).

``conftest.py`` puts this folder on ``sys.path``; a training config names the module in
``imports = ["arenagym_trainers_testkit"]`` so that a subprocess run registers the env too.

``TrainerTest-Chars-v0`` (one turn): the reward is the share of the response's characters that
are in ``chars`` (default the vowels). A dense reward that the 0.4M-parameter random tiny model
learns within a few dozen updates on CPU — what "training raises the reward" needs.
"""

from __future__ import annotations

from typing import Any, ClassVar

import gymnasium as gym

from arenagym.envs.core.spaces import UnicodeText

CHARS_ENV_ID = "TrainerTest-Chars-v0"


class CharsEnv(gym.Env[str, str]):
    """One turn: reward = share of the response's characters that are in ``chars``."""

    metadata: ClassVar[dict[str, Any]] = {"render_modes": []}

    def __init__(self, chars: str = "aeiou", prompt: str = "Write something.") -> None:
        self.chars = set(chars)
        self.prompt = prompt
        self.observation_space = UnicodeText(max_length=10_000)
        self.action_space = UnicodeText(max_length=10_000)

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[str, dict[str, Any]]:
        super().reset(seed=seed)
        task_id = "chars-" + "".join(sorted(self.chars))
        return self.prompt, {"system_prompt": "", "task_id": task_id}

    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        text = action if isinstance(action, str) else ""
        reward = sum(c in self.chars for c in text) / len(text) if text else 0.0
        info = {"reward_components": {"chars": reward}, "stop_reason": "solved"}
        return "done", reward, True, False, info


if CHARS_ENV_ID not in gym.registry:
    gym.register(CHARS_ENV_ID, entry_point=CharsEnv)
