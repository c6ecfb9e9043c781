"""The base class's share of the contract, on a small env defined here."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from arenagym.envs.core.spaces import UnicodeText
from arenagym.envs.core.text_env import (
    MIN_OBSERVATION_LENGTH,
    TRUNCATION_MARKER,
    Episode,
    InvalidAction,
    TextEnv,
    Turn,
)


class Guess(TextEnv):
    """Guess the secret digit; non-digits are invalid; "crash" simulates a dead sandbox."""

    def __init__(self, max_observation_length: int = 200, **kwargs: Any) -> None:
        super().__init__(max_observation_length=max_observation_length, **kwargs)
        self.released = 0

    def _start_episode(self, options: dict[str, Any] | None) -> Episode:
        self.secret = str(int(self.np_random.integers(10)))
        return Episode(task_id=f"guess-{self.secret}", system_prompt="Guess a digit.", prompt="?")

    def _respond(self, action: str) -> Turn | InvalidAction:
        if action == "crash":
            raise OSError("sandbox died")
        if action == "long":
            return Turn("y" * 1000, {"correct": 0.0})
        if not (len(action) == 1 and action.isdigit()):
            return InvalidAction("reply with one digit, e.g. 7", final_reward_components={"x": 0.5})
        if action == self.secret:
            return Turn("right", {"correct": 1.0}, terminated=True, stop_reason="solved")
        return Turn("higher" if action < self.secret else "lower", {"correct": 0.0})

    def _release(self) -> None:
        self.released += 1


def test_reset_info_and_determinism() -> None:
    env = Guess()
    _, info = env.reset(seed=5)
    assert info["system_prompt"] == "Guess a digit." and info["task_id"].startswith("guess-")
    assert Guess().reset(seed=5) == env.reset(seed=5)


def test_invalid_actions_are_penalised_then_end_the_episode() -> None:
    env = Guess(max_turns=10, max_invalid_actions=1, invalid_action_penalty=0.25)
    env.reset(seed=0)
    observation, reward, terminated, truncated, info = env.step("seven")
    assert (reward, terminated, truncated) == (-0.25, False, False)
    assert info["invalid_action"] and "reply with one digit" in observation
    assert "1 more invalid action(s) will end the episode" in observation
    observation, reward, terminated, _, info = env.step("eight")
    assert terminated and info["stop_reason"] == "invalid_action"
    assert info["reward_components"] == {"invalid_action": -0.25, "x": 0.5} and reward == 0.25


def test_turn_limit_truncates() -> None:
    env = Guess(max_turns=2)
    env.reset(seed=1)
    secret = env.secret
    wrong = "0" if secret != "0" else "1"
    assert env.step(wrong)[3] is False
    _, _, terminated, truncated, info = env.step(wrong)
    assert (terminated, truncated, info["stop_reason"]) == (False, True, "max_turns")


def test_infrastructure_fault_ends_the_episode_with_env_error() -> None:
    env = Guess(max_turns=5)
    env.reset(seed=0)
    _observation, reward, terminated, _, info = env.step("crash")
    assert terminated and info["stop_reason"] == "env_error" and reward == 0.0
    assert "sandbox died" in info["error"] and "OSError" in info["traceback"]


def test_misuse_raises_with_the_fix_in_the_message() -> None:
    env = Guess()
    with pytest.raises(RuntimeError, match="call reset"):
        env.step("1")
    env.reset(seed=0)
    env.step(env.secret)
    with pytest.raises(RuntimeError, match="call reset"):
        env.step("1")
    for bad in ({"max_turns": 0}, {"invalid_action_penalty": -1}, {"render_mode": "human"}):
        with pytest.raises(ValueError):
            Guess(**bad)


def test_observations_are_clipped_and_rendered() -> None:
    env = Guess(max_turns=3, render_mode="ansi")
    env.reset(seed=0)
    observation = env.step("long")[0]
    assert len(observation) == 200 and observation.endswith("[truncated]")
    transcript = env.render()
    assert transcript is not None and "[system]\nGuess a digit." in transcript
    assert "[agent]\nlong" in transcript


@pytest.mark.parametrize("limit", [0, 5, len(TRUNCATION_MARKER), 63, 64.0, True, "200", None])
def test_observation_limits_below_the_minimum_are_refused(limit: Any) -> None:
    """Regression: a limit shorter than the truncation marker gave observations longer than the
    observation space allows (``max_observation_length=5``: a 740-character observation)."""
    assert MIN_OBSERVATION_LENGTH == 64
    with pytest.raises(ValueError, match=r"max_observation_length must be an int >= 64"):
        Guess(max_observation_length=limit)


def test_a_registered_env_refuses_a_too_small_observation_limit() -> None:
    import arenagym.envs  # noqa: F401  (registers the ids)

    with pytest.raises(ValueError, match=r"max_observation_length must be an int >= 64 .*, got 5$"):
        gym.make("TextArena/TicTacToe-v0", max_observation_length=5)


@settings(max_examples=50, deadline=None)
@given(st.integers(MIN_OBSERVATION_LENGTH, 1200))
def test_clipped_observations_fit_the_space(limit: int) -> None:
    env = Guess(max_turns=3, max_observation_length=limit, render_mode="ansi")
    observation, _ = env.reset(seed=0)
    assert env.observation_space.contains(observation)
    observation = env.step("long")[0]  # 1000 characters
    assert env.observation_space.contains(observation)
    if limit < 1000:
        assert len(observation) == limit and observation.endswith(TRUNCATION_MARKER)
        assert observation.startswith("y" * (limit - len(TRUNCATION_MARKER)))
    else:
        assert observation == "y" * 1000
    assert env.observation_space.contains(env.step("seven")[0])  # an invalid action's message
    transcript = env.render()
    assert transcript is not None and "[agent]\nseven" in transcript


def test_clip_never_exceeds_even_a_limit_shorter_than_the_marker() -> None:
    env = Guess()
    env.observation_space = UnicodeText(5)
    assert env._clip("x" * 100) == "xxxxx"
    assert env._clip("abc") == "abc"
    env.observation_space = UnicodeText(len(TRUNCATION_MARKER))
    assert env._clip("x" * 100) == TRUNCATION_MARKER


def test_close_is_idempotent_and_releases_once() -> None:
    env = Guess()
    env.reset(seed=0)
    env.close()
    env.close()
    assert env.released == 1


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.text(), st.none(), st.integers(), st.binary()))
def test_any_action_gives_a_valid_step(action: object) -> None:
    env = Guess(max_turns=1)
    env.reset(seed=0)
    observation, reward, terminated, truncated, info = env.step(action)  # type: ignore[arg-type]
    assert isinstance(observation, str) and (terminated or truncated)
    assert sum(info["reward_components"].values()) == reward
