"""Tests for arenagym.agents.episode: the one episode loop of the runner and the rollout engine."""

from __future__ import annotations

import asyncio
import sys
from functools import partial
from pathlib import Path
from typing import Any

import gymnasium as gym

sys.path.insert(0, str(Path(__file__).resolve().parent))

from arenagym_agents_testkit import ENV_ID, EchoAgent, StopAgent, TurnsEnv

from arenagym.agents.episode import (
    AgentCalls,
    EnvStep,
    EpisodeFailure,
    aplay_episode,
    in_executor,
    play_episode,
)


class RightAgent:
    def reset(self, system_prompt: str) -> None:
        self.system_prompt = system_prompt

    def act(self, observation: str) -> str:
        return "right"


class AsyncRightAgent:
    def __init__(self) -> None:
        self.calls: list[str] = []

    async def areset(self, system_prompt: str) -> None:
        self.calls.append("areset")

    def reset(self, system_prompt: str) -> None:  # never called: areset wins
        self.calls.append("reset")

    async def aact(self, observation: str) -> str:
        self.calls.append("aact")
        await asyncio.sleep(0)
        return "right"


def turns_env(**kwargs: Any) -> Any:
    return partial(gym.make, ENV_ID, **kwargs)


def test_an_episode_the_env_ends_records_its_totals_and_steps() -> None:
    steps: list[EnvStep] = []
    result = play_episode(turns_env(turns=3), RightAgent, seed=7, on_step=steps.append)
    assert (result.stop_reason, result.env_stop_reason, result.turns) == ("solved", "solved", 3)
    assert (result.reward, result.clean_reward, result.invalid_actions) == (3.0, 3.0, 0)
    assert result.task_id == "turns-7" and result.system_prompt == "Say right."
    assert result.reward_components == {"right": 1.0} and result.observation == "seed=7 turn=3"
    assert [s.observation for s in steps] == [f"seed=7 turn={t}" for t in range(3)]
    assert steps[-1].terminated and not steps[0].terminated
    assert result.stop is None and result.failure is None and result.close_error is None


def test_the_turn_limit_ends_an_episode_with_the_callers_reason() -> None:
    result = play_episode(
        turns_env(endless=True), RightAgent, seed=0, max_steps=4, max_steps_reason="max_turns"
    )
    assert (result.stop_reason, result.env_stop_reason, result.turns) == ("max_turns", "", 4)


def test_an_agent_stop_is_not_an_error() -> None:
    result = play_episode(turns_env(turns=5), StopAgent, seed=0)
    assert (result.stop_reason, result.turns, result.failure) == ("context_overflow", 1, None)
    assert result.stop is not None and result.stop.info == {"prompt_tokens": 99}


def test_an_agent_error_and_an_env_error_end_only_the_episode() -> None:
    class Broken(RightAgent):
        def act(self, observation: str) -> str:
            raise ValueError("no idea")

    broken = play_episode(turns_env(), Broken, seed=0)
    assert broken.stop_reason == "agent_error" and broken.failure is not None
    assert "ValueError: no idea" in broken.failure.trace_text
    crashed = play_episode(turns_env(crash_on_step=[3]), RightAgent, seed=3)
    assert (crashed.stop_reason, crashed.turns) == ("env_error", 0)
    assert "step exploded" in str(crashed.failure.error)  # type: ignore[union-attr]
    unknown = play_episode(partial(gym.make, "ArenagymAgentsTest/NoSuchEnv-v0"), RightAgent)
    assert unknown.stop_reason == "env_error" and unknown.reset_info is None


def test_async_agents_are_awaited_and_env_calls_run_in_the_pool() -> None:
    agent = AsyncRightAgent()
    result = asyncio.run(
        aplay_episode(turns_env(turns=2), AgentCalls(lambda: agent), seed=1, run_env=in_executor())
    )
    assert result.stop_reason == "solved" and agent.calls == ["areset", "aact", "aact"]


def test_system_exit_from_env_code_on_a_pool_thread_is_an_env_error() -> None:
    class ExitingEnv(TurnsEnv):
        def step(self, action: str) -> Any:
            raise SystemExit(3)

    result = asyncio.run(aplay_episode(ExitingEnv, AgentCalls(EchoAgent), seed=0))
    assert result.stop_reason == "env_error" and isinstance(result.failure.error, SystemExit)  # type: ignore[union-attr]


def test_a_failing_close_is_recorded_and_agent_calls_decide_what_a_failure_is() -> None:
    class BadClose(TurnsEnv):
        def close(self) -> None:
            raise OSError("sandbox gone")

    class BackendCalls(AgentCalls):
        failure_reason = "env_error"

    class Broken(RightAgent):
        def act(self, observation: str) -> str:
            raise RuntimeError("backend failed")

    result = asyncio.run(aplay_episode(BadClose, BackendCalls(Broken), seed=0))
    assert result.stop_reason == "env_error" and result.close_error == "OSError: sandbox gone"
    assert isinstance(result.failure, EpisodeFailure)
