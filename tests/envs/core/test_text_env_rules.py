"""The base env's public rules: the clean reward on every step, invalid actions counted in a row,
and families that see every action (``TextEnv.invalid_actions_in_a_row``,
``TextEnv.accepts_any_action``, ``Turn.clean_reward``, ``InvalidAction.clean_reward``)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from arenagym.envs.core.text_env import Episode, InvalidAction, TextEnv, Turn


class Noisy(TextEnv):
    """Say "yes": a noisy reward (always 0.5 off) whose clean score is 1 or 0."""

    def _start_episode(self, options: dict[str, Any] | None) -> Episode:
        return Episode(task_id="noisy", system_prompt="Say yes.", prompt="?")

    def _respond(self, action: str) -> Turn | InvalidAction:
        if action == "crash":
            raise OSError("sandbox died")
        if action == "plain":
            return Turn("ok", {"score": 0.25})  # no clean_reward: the reward itself
        if action != "yes":
            return InvalidAction("say yes", clean_reward=0.0, final_reward_components={"n": 0.5})
        return Turn("right", {"noisy": 0.5}, terminated=True, stop_reason="solved", clean_reward=1)


class InARow(Noisy):
    invalid_actions_in_a_row = True


class SeesEverything(Noisy):
    accepts_any_action = True

    def _respond(self, action: Any) -> Turn | InvalidAction:
        if not isinstance(action, str):
            return InvalidAction(f"my own words: {type(action).__name__} is not a reply")
        return super()._respond(action)


def test_clean_reward_is_the_reward_unless_the_family_gives_its_own() -> None:
    env = Noisy(max_turns=5, max_invalid_actions=1, invalid_action_penalty=0.25)
    env.reset(seed=0)
    _, reward, *_, info = env.step("plain")
    assert reward == info["clean_reward"] == 0.25
    _, reward, *_, info = env.step(7)  # rejected by the base: the penalty is the clean reward too
    assert reward == info["clean_reward"] == -0.25
    _, reward, *_, info = env.step("no")  # the family's own: the allowance is used up
    assert (reward, info["clean_reward"], info["stop_reason"]) == (0.25, 0.0, "invalid_action")
    env.reset(seed=0)
    _, reward, *_, info = env.step("yes")
    assert (reward, info["clean_reward"]) == (0.5, 1.0) and type(info["clean_reward"]) is float
    env.reset(seed=0)
    _, reward, *_, info = env.step("crash")
    assert info["stop_reason"] == "env_error" and reward == info["clean_reward"] == 0.0


@settings(max_examples=30, deadline=None)
@given(actions=st.lists(st.one_of(st.sampled_from(["plain", "no", "yes"]), st.none()), max_size=8))
def test_every_step_reports_a_clean_reward(actions: list[Any]) -> None:
    env = Noisy(max_turns=4, max_invalid_actions=2)
    env.reset(seed=0)
    for action in actions:
        *_, terminated, truncated, info = env.step(action)
        assert isinstance(info["clean_reward"], float)
        if terminated or truncated:
            break


@pytest.mark.parametrize(("env_class", "ends_on"), [(Noisy, 2), (InARow, None)])
def test_the_allowance_counts_the_episode_or_invalid_actions_in_a_row(
    env_class: type[Noisy], ends_on: int | None
) -> None:
    env = env_class(max_turns=10, max_invalid_actions=1)
    env.reset(seed=0)
    for round_ in range(3):  # invalid, valid, invalid, valid, ...
        observation, _, terminated, _, info = env.step("no")
        assert info["invalid_action"]
        if round_ + 1 == ends_on:
            assert terminated and info["stop_reason"] == "invalid_action"
            return
        in_a_row = " in a row" if env_class.invalid_actions_in_a_row else ""
        assert observation.endswith(f"1 more invalid action(s){in_a_row} will end the episode.")
        assert not terminated
        env.step("plain")
    assert ends_on is None
    env.step("no")
    _, _, terminated, _, info = env.step("no")  # two in a row
    assert terminated and info["stop_reason"] == "invalid_action"


def test_a_family_that_accepts_any_action_sees_non_text_and_long_actions() -> None:
    env = SeesEverything(max_turns=5, max_invalid_actions=5, max_action_length=8)
    env.reset(seed=0)
    observation = env.step(None)[0]
    assert observation.startswith("Invalid action: my own words: NoneType is not a reply")
    observation, *_, info = env.step("x" * 100)  # too long: still the family's to judge
    assert "say yes" in observation and info["invalid_action"]
    plain = Noisy(max_turns=5, max_invalid_actions=5, max_action_length=8)
    plain.reset(seed=0)
    assert "actions are text" in plain.step(None)[0]
    assert "over the limit of 8" in plain.step("x" * 100)[0]


def test_the_rules_are_documented_class_attributes() -> None:
    import arenagym.envs.core.text_env as module

    for name in ("invalid_actions_in_a_row", "accepts_any_action"):
        assert getattr(TextEnv, name) is False
        assert f"TextEnv.{name}" in (module.__doc__ or "")
