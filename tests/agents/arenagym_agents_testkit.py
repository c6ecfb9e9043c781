"""Backends, envs and agents for the agent tests (importable as ``arenagym_agents_testkit``).

The test modules put this folder on ``sys.path`` so that agents here load by
``"arenagym_agents_testkit:Class"`` and the env by ``"ArenagymAgentsTest/Turns-v0"``.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, ClassVar

import gymnasium as gym

from arenagym.agents.agent import EpisodeStop
from arenagym.agents.backends.interface import Completion, Conversation, SamplingParams
from arenagym.agents.chat import ChatAgent
from arenagym.envs.core.spaces import UnicodeText

ENV_ID = "ArenagymAgentsTest/Turns-v0"
END = 0  # the fake tokenizer's end-of-turn id


def render(conversation: Conversation, generation_prompt: bool = True) -> str:
    """A ChatML-like template: every message verbatim, in order."""
    text = "".join(f"<{m['role']}>{m['content']}</>" for m in conversation)
    return text + "<assistant>" if generation_prompt else text


def encode(text: str) -> list[int]:
    """One id per character (so every text has exactly one tokenisation)."""
    return [ord(char) for char in text]


class FakeBackend:
    """A deterministic backend: ``reply(conversation)`` decides the text; tokens are characters.

    It records every batch it was asked for, fails for conversations whose last message contains
    ``fail_on``, and samples a suffix letter with ``random.Random(seed)`` when temperature > 0, so
    greedy and seeded runs are reproducible. ``on_generate`` runs inside every call (tests use it
    to block or to count).
    """

    def __init__(
        self,
        reply: Callable[[Conversation], str] | None = None,
        max_context: int = 10_000,
        fail_on: str | None = None,
        on_generate: Callable[[int], None] | None = None,
    ) -> None:
        self.reply = reply or (lambda conversation: "right")
        self._max_context = max_context
        self.fail_on = fail_on
        self.on_generate = on_generate
        self.batches: list[int] = []
        self.params: list[SamplingParams] = []
        self._lock = threading.Lock()

    @property
    def max_context(self) -> int:
        return self._max_context

    def count_tokens(self, conversation: Conversation) -> int:
        return len(encode(render(conversation)))

    def generate(
        self, conversations: Sequence[Conversation], params: SamplingParams
    ) -> list[Completion]:
        with self._lock:
            self.batches.append(len(conversations))
            self.params.append(params)
        if self.on_generate is not None:
            self.on_generate(len(conversations))
        completions = []
        for conversation in conversations:
            last = conversation[-1]["content"]
            if self.fail_on is not None and self.fail_on in last:
                raise RuntimeError(f"backend failed on {last!r}")
            text = self.reply(conversation)
            if not params.greedy:
                rng = random.Random(f"{params.seed}|{render(conversation)}")
                text += rng.choice("abcdefgh")
            ids = [*encode(text), END]
            finish = "stop"
            if len(ids) > params.max_tokens:
                ids, finish = ids[: params.max_tokens], "length"
                text = text[: params.max_tokens]
            completions.append(
                Completion(
                    text=text,
                    prompt_token_ids=encode(render(conversation)),
                    completion_token_ids=ids,
                    logprobs=[-0.01 * (i + 1) for i in range(len(ids))],
                    finish_reason=finish,  # type: ignore[arg-type]
                )
            )
        return completions


class TurnsEnv(gym.Env[str, str]):
    """``turns`` turns; each earns 1 if the action is ``"right"``. Test hooks by reset seed:
    ``crash_on_step`` seeds raise in ``step``; ``crash_once`` seeds raise in the first env
    built for them only (shared across instances); ``step_hook(seed)`` runs in every step."""

    metadata: ClassVar[dict[str, Any]] = {"render_modes": []}
    crashed: ClassVar[set[int]] = set()

    def __init__(
        self,
        turns: int = 1,
        crash_on_step: list[int] | None = None,
        crash_once: list[int] | None = None,
        step_hook: Callable[[int], None] | None = None,
        endless: bool = False,
    ) -> None:
        self.turns = turns
        self.crash_on_step = set(crash_on_step or [])
        self.crash_once = set(crash_once or [])
        self.step_hook = step_hook
        self.endless = endless
        self.observation_space = UnicodeText(10_000)
        self.action_space = UnicodeText(10_000)
        self._seed = -1
        self._turn = 0

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[str, dict[str, Any]]:
        super().reset(seed=seed)
        self._seed = -1 if seed is None else seed
        self._turn = 0
        info = {"system_prompt": "Say right.", "task_id": f"turns-{self._seed}"}
        return f"seed={self._seed} turn=0", info

    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        if self.step_hook is not None:
            self.step_hook(self._seed)
        if self._seed in self.crash_on_step:
            raise RuntimeError(f"step exploded for seed {self._seed}")
        if self._seed in self.crash_once and self._seed not in TurnsEnv.crashed:
            TurnsEnv.crashed.add(self._seed)
            raise RuntimeError(f"step exploded once for seed {self._seed}")
        self._turn += 1
        right = float(action == "right")
        terminated = not self.endless and self._turn >= self.turns
        info: dict[str, Any] = {"reward_components": {"right": right}}
        if terminated:
            info["stop_reason"] = "solved" if right else "failed"
        return f"seed={self._seed} turn={self._turn}", right, terminated, False, info


if ENV_ID not in gym.registry:
    gym.register(id=ENV_ID, entry_point=TurnsEnv)


# --------------------------------------------------------------------------- agents


class EchoAgent:
    """A third-party agent with reset/act: echoes the observation's first word."""

    def __init__(self, prefix: str = "") -> None:
        self.prefix = prefix
        self.system_prompt: str | None = None

    def reset(self, system_prompt: str) -> None:
        self.system_prompt = system_prompt

    def act(self, observation: str) -> str:
        return self.prefix + observation.split()[0]


def echo_kind(spec: str) -> Callable[..., EchoAgent]:
    """The factory of a third-party agent-spec kind (entry-point group ``arenagym.agent_kinds``):
    ``"echo:PREFIX"`` is an :class:`EchoAgent` with that prefix."""
    return partial(EchoAgent, spec.partition(":")[2])


class TextArenaStyleSolver:
    """A TextArena-style agent: ``__call__(observation) -> str``, no reset; solves Math-v0."""

    def __init__(self) -> None:
        from arenagym.agents.baselines import MathSolverAgent

        self.solver = MathSolverAgent()
        self.calls = 0

    def __call__(self, observation: str) -> str:
        self.calls += 1
        return self.solver.act(observation)


class StopAgent:
    """Ends every episode on its second turn with ``EpisodeStop(stop_reason)``."""

    def __init__(self, stop_reason: str = "context_overflow", action: str = "nothing") -> None:
        self.stop_reason = stop_reason
        self.action = action
        self.turns = 0

    def reset(self, system_prompt: str) -> None:
        self.turns = 0

    def act(self, observation: str) -> str:
        self.turns += 1
        if self.turns > 1:
            raise EpisodeStop(self.stop_reason, "out of room", prompt_tokens=99)
        return self.action


_SHARED_FAKE = FakeBackend(reply=lambda conversation: "\\boxed{2}")


def fake_chat_agent(max_context: int | None = None, max_total_tokens: int | None = None) -> Any:
    """A ChatAgent on one process-wide :class:`FakeBackend` (for runner tests by spec)."""
    return ChatAgent(
        _SHARED_FAKE,
        SamplingParams(max_tokens=16, temperature=0.0),
        max_context=max_context,
        max_total_tokens=max_total_tokens,
    )


def shared_fake_backend() -> FakeBackend:
    return _SHARED_FAKE


def not_an_agent() -> int:
    """A factory that builds something that is neither an agent nor callable."""
    return 42
