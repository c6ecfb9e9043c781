"""Gymnasium vector envs over arenagym's text envs, with their default arguments.

``AsyncVectorEnv`` returns observations through shared memory by default; arenagym's
``UnicodeText`` space registers a fixed-size buffer for that (``envs/core/spaces.py``). These tests
check that the strings that come back are exactly the ones the envs produced — non-ASCII, long
within the bound, and empty — and that one over the bound is a clear error.
"""

from __future__ import annotations

import copy
import pickle
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector.utils import (
    create_shared_memory,
    read_from_shared_memory,
    write_to_shared_memory,
)
from hypothesis import given, settings
from hypothesis import strategies as st

import arenagym.envs  # noqa: F401  (registers the ids)
from arenagym.envs.core.spaces import SharedTexts, UnicodeText
from arenagym.envs.core.text_env import Episode, InvalidAction, TextEnv, Turn

ECHO_LIMIT = 5000
TEXTS = [
    "½ + ¼ = ¾ ✓ — αβγ 中文漢字 한국어 🙂🚀 \u200b\u00a0 é",
    "a\x00b",  # a NUL inside the text is text, not an end marker
    "\ud800 lone surrogate",
    "",
    "L" * ECHO_LIMIT,
]


class Echo(TextEnv):
    """Observes what it was sent: the action becomes the next observation, verbatim."""

    def __init__(self, max_observation_length: int = ECHO_LIMIT, lie: bool = False) -> None:
        super().__init__(max_turns=100, max_observation_length=max_observation_length)
        self.lie = lie  # declare a small space but send a longer text (a broken env)

    def _start_episode(self, options: dict[str, Any] | None) -> Episode:
        return Episode(task_id="echo", system_prompt="Echo.", prompt="start ½")

    def _respond(self, action: str) -> Turn | InvalidAction:
        return Turn(action, {"echo": 0.0})

    def step(self, action: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
        observation, *rest = super().step(action)
        return (action if self.lie else observation, *rest)  # type: ignore[return-value]


def _vector(cls: type, fns: list[Callable[[], gym.Env]]) -> Any:
    return cls(fns)


@pytest.mark.parametrize("cls", [gym.vector.AsyncVectorEnv, gym.vector.SyncVectorEnv])
@pytest.mark.parametrize(
    ("env_id", "actions"),
    [
        ("Math-v0", ["\\boxed{1}", "no answer here"]),
        ("TextArena/GuessTheNumber-v0", ["[7]", "[x]"]),
        ("TextArena/TicTacToe-v0", ["[4]", "[99]"]),
    ],
)
def test_vector_env_with_default_arguments(cls: type, env_id: str, actions: list[str]) -> None:
    """Regression: AsyncVectorEnv's default shared_memory=True raised CustomSpaceError."""
    singles = [gym.make(env_id) for _ in range(2)]
    expected_reset = [env.reset(seed=i)[0] for i, env in enumerate(singles)]
    expected_step = [env.step(a) for env, a in zip(singles, actions, strict=True)]
    envs = _vector(cls, [lambda: gym.make(env_id)] * 2)
    try:
        observations, infos = envs.reset(seed=0)
        assert observations == tuple(expected_reset)
        assert all(type(o) is str for o in observations)
        assert envs.observation_space.contains(observations)
        assert list(infos["task_id"]) == [
            env.reset(seed=i)[1]["task_id"] for i, env in enumerate(singles)
        ]
        observations, rewards, terminations, truncations, _ = envs.step(actions)
        assert observations == tuple(step[0] for step in expected_step)
        assert list(rewards) == [step[1] for step in expected_step]
        assert list(terminations) == [step[2] for step in expected_step]
        assert list(truncations) == [step[3] for step in expected_step]
    finally:
        envs.close()


@pytest.mark.parametrize("cls", [gym.vector.AsyncVectorEnv, gym.vector.SyncVectorEnv])
def test_vector_env_returns_the_exact_strings(cls: type) -> None:
    envs = _vector(cls, [Echo, Echo])
    try:
        observations, _ = envs.reset(seed=0)
        assert observations == ("start ½", "start ½")
        for first, second in zip(TEXTS, reversed(TEXTS), strict=True):
            observations, *_ = envs.step((first, second))
            assert observations == (first, second)
            assert [len(o) for o in observations] == [len(first), len(second)]
    finally:
        envs.close()


@pytest.mark.filterwarnings("ignore:.*(error|exception).*:UserWarning")  # (Gymnasium's log)
def test_async_observation_over_the_bound_is_a_clear_error() -> None:
    envs = gym.vector.AsyncVectorEnv([lambda: Echo(64, lie=True)] * 2)
    try:
        envs.reset(seed=0)
        envs.step(("1" * 64, "ok"))  # at the bound: fine
        with pytest.raises(ValueError, match=r"65 characters, over its space's max_length of 64"):
            envs.step(("1" * 65, "ok"))
    finally:
        envs.close(terminate=True)


def test_async_copy_false_gives_a_live_view() -> None:
    envs = gym.vector.AsyncVectorEnv([Echo, Echo], copy=False)
    try:
        envs.reset(seed=0)
        view, *_ = envs.step(("a", "b"))
        assert isinstance(view, SharedTexts) and view == ("a", "b")
        snapshot = copy.deepcopy(view)
        envs.step(("c", "d"))
        assert view == ("c", "d") and snapshot == ("a", "b") and type(snapshot) is tuple
    finally:
        envs.close()


# ------------------------------------------------------- the shared-memory functions alone
@settings(max_examples=150, deadline=None)
@given(st.lists(st.text(max_size=64), min_size=1, max_size=4))
def test_shared_memory_round_trip(texts: list[str]) -> None:
    space = UnicodeText(64)
    memory = create_shared_memory(space, n=len(texts))
    view = read_from_shared_memory(space, memory, n=len(texts))
    for index, text in enumerate(texts):
        write_to_shared_memory(space, index, text, memory)
    assert tuple(view) == tuple(texts) == copy.deepcopy(view) == pickle.loads(pickle.dumps(view))
    assert view[0] == texts[0] and view[-1] == texts[-1] and view[:2] == tuple(texts[:2])
    for index in range(len(texts)):  # a shorter text replaces a longer one completely
        write_to_shared_memory(space, index, "", memory)
    assert tuple(view) == ("",) * len(texts)


def test_shared_memory_rejects_what_is_not_in_the_space() -> None:
    space = UnicodeText(4)
    memory = create_shared_memory(space, n=1)
    with pytest.raises(ValueError, match=r"max_length of 4.*max_observation_length"):
        write_to_shared_memory(space, 0, "12345", memory)
    with pytest.raises(TypeError, match="must be a str"):
        write_to_shared_memory(space, 0, np.int64(3), memory)
    write_to_shared_memory(space, 0, "1234", memory)
    assert read_from_shared_memory(space, memory, n=1) == ("1234",)
