"""The single-agent TextArena env: TextArena's invalid-move rule through the base env's public
setting, and opponents given as objects, callables or spec strings (no ``arenagym.agents``)."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import gymnasium as gym
import pytest

import arenagym.envs  # noqa: F401  (registers the ids)
from arenagym.envs.core.loading import LoadError
from arenagym.envs.core.text_env import TextEnv
from arenagym.envs.textarena.env import CallableOpponent, TextArenaEnv, load_opponent
from arenagym.envs.textarena.games import gym_id
from arenagym.envs.textarena.opponents import FirstLegalOpponent, SearchOpponent

pytest.importorskip("textarena")


def test_the_rule_is_the_base_envs_public_setting_not_an_override() -> None:
    assert TextArenaEnv.invalid_actions_in_a_row and TextArenaEnv.accepts_any_action
    assert not TextEnv.invalid_actions_in_a_row and not TextEnv.accepts_any_action
    assert "_checked_respond" not in vars(TextArenaEnv)  # no private base method overridden


def test_invalid_moves_count_in_a_row_and_a_valid_move_starts_again() -> None:
    env = gym.make(gym_id("TicTacToe"), seat=0, opponent=FirstLegalOpponent())
    env.reset(seed=0)
    for move in ("[4]", "[8]"):  # invalid, valid, invalid, valid: never two in a row
        observation, reward, terminated, _, info = env.step("no idea")
        assert info["invalid_action"] and not terminated and reward == 0.0
        assert observation.endswith("1 more invalid action(s) in a row will end the episode.")
        _, _, terminated, _, info = env.step(move)
        assert not info["invalid_action"] and not terminated
    env.step(None)  # not text: an invalid move of the game too (its count and the env's agree)
    observation, _, terminated, _, info = env.step("x" * 5000)  # too long: the second in a row
    assert terminated and info["stop_reason"] == "invalid_action"
    assert info["reward_components"]["outcome"] == -1.0 and info["clean_reward"] == -1.0
    env.close()


def test_opponent_objects_callables_and_specs() -> None:
    search = SearchOpponent(depth=2)
    assert load_opponent(search) is search
    built = load_opponent("arenagym.envs.textarena.opponents:SearchOpponent", {"depth": 3})
    assert isinstance(built, SearchOpponent) and built.depth == 3

    class TextArenaStyleAgent:  # a textarena.Agent: a callable observation -> str, no reset
        def __call__(self, observation: str) -> Any:
            return 4  # not even text: the wrapper makes it "4"

    wrapped = load_opponent(TextArenaStyleAgent())
    assert isinstance(wrapped, CallableOpponent)
    wrapped.reset("You play Nim.")
    assert wrapped.act("[GAME] your move") == "4"

    with pytest.raises(LoadError, match="opponent 'no_such_module:Agent'"):
        load_opponent("no_such_module:Agent")
    with pytest.raises(ValueError, match="opponent_kwargs"):
        load_opponent(search, {"depth": 3})
    with pytest.raises(TypeError, match="lacks reset"):
        load_opponent(42)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="lacks reset"):
        load_opponent("builtins:object")
    with pytest.raises(TypeError, match="is a class"):
        load_opponent(SearchOpponent)  # type: ignore[arg-type]

    async def replies(observation: str) -> str:
        return "[1 1]"

    with pytest.raises(TypeError, match="async"):
        load_opponent(replies)


def test_a_callable_opponent_plays_the_other_seat() -> None:
    seen: list[str] = []

    def first_free_cell(observation: str) -> str:
        seen.append(observation)
        return next(f"[{cell}]" for cell in range(9) if f"[{cell}]" in observation)

    env = gym.make(gym_id("TicTacToe"), seat=1, opponent=first_free_cell)
    _, info = env.reset(seed=0)
    assert info["opponent_moves"] == 1 and seen and "Tic Tac Toe" in seen[0]
    env.close()


def test_the_env_module_does_not_import_the_agents_package() -> None:
    code = (
        "import sys, gymnasium as gym, arenagym.envs\n"
        "env = gym.make('TextArena/Nim-v0', seat=0)\n"
        "env.reset(seed=0)\n"
        "env.step('[0 1]')\n"
        "print(sorted(m for m in sys.modules if m.startswith('arenagym.agents')))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert result.stdout.strip() == "[]"


def test_an_llm_spec_opponent_resolves_through_the_agent_kinds_entry_points() -> None:
    pytest.importorskip("torch", reason="the hf extra (torch) is not installed")
    pytest.importorskip("transformers", reason="the hf extra (transformers) is not installed")
    env = gym.make(
        gym_id("Nim"), seat=1, opponent="hf:tiny,temperature=0,max_tokens=4,device=cpu"
    )
    opponent = env.unwrapped._opponent
    assert type(opponent).__module__.startswith("arenagym.agents")
    _, info = env.reset(seed=0)  # the tiny random model moves first: garbage, TextArena's rule
    assert info["seat"] == 1
    env.close()
