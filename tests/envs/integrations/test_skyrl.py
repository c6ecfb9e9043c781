"""arenagym ids as SkyRL-Gym envs, driven through skyrl_gym's own registry and ``make``.

skyrl-train (SkyRL's trainer and generator) is not installed here, so :func:`run_generator_calls`
emulates exactly the calls its ``SkyRLGymGenerator`` makes on an env, from its source: the row's
columns besides ``prompt`` and ``env_class`` are the ``extras`` (``PromptDataset``),
``extras["max_turns"]`` is set to ``generator.max_turns``, ``env_config`` is the class's omegaconf
section of the ``skyrl_gym`` config, then ``init(prompt)`` and one ``step(reply)`` per turn until
``done``, ``get_metrics()`` and ``close()``. Everything else (the registry, ``make``,
``BaseTextEnv``, metric aggregation, omegaconf, the parquet round trip through ``datasets``) is
the real package.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import datasets
import gymnasium as gym
import pytest
import skyrl_gym
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from omegaconf import DictConfig
from skyrl_gym.envs.base_text_env import BaseTextEnv
from skyrl_gym.metrics import aggregate_for_environment

from arenagym.envs.integrations.session import EpisodeRef, TextSession
from arenagym.envs.integrations.skyrl import ArenagymTextEnv, dataset_rows, register

GUESS = "TextArena/GuessTheNumber-v0"


@pytest.fixture(scope="module")
def env_class() -> str:
    return register()


def extras_of(row: dict[str, Any], max_turns: int | None) -> dict[str, Any]:
    """What the generator passes as ``extras``: the row minus prompt and env_class, plus
    ``max_turns``."""
    extras = {k: copy.deepcopy(v) for k, v in row.items() if k not in ("prompt", "env_class")}
    extras["max_turns"] = max_turns
    return extras


def make(row: dict[str, Any], max_turns: int | None = 20, config: Any = None) -> ArenagymTextEnv:
    env = skyrl_gym.make(
        row["env_class"], env_config=DictConfig(config or {}), extras=extras_of(row, max_turns)
    )
    assert isinstance(env, ArenagymTextEnv) and isinstance(env, BaseTextEnv)
    return env


def run_generator_calls(
    row: dict[str, Any], policy: Callable[[list[dict[str, str]]], str], max_turns: int = 20
) -> tuple[list[dict[str, str]], list[dict[str, Any]], dict[str, Any]]:
    """The generator's agent loop, without the model: the chat, the step outputs, the metrics."""
    env = make(row, max_turns)
    chat, _ = env.init(copy.deepcopy(row["prompt"]))
    outputs = []
    done = False
    while not done:
        reply = policy(chat)
        out = env.step(reply)
        outputs.append(out)
        chat = [*chat, {"role": "assistant", "content": reply}, *out["observations"]]
        done = out["done"]
    metrics = env.get_metrics()
    env.close()
    return chat, outputs, metrics


def parquet_rows(rows: list[dict[str, Any]], path: Path) -> list[dict[str, Any]]:
    """The rows as SkyRL's PromptDataset reads them back from a parquet file."""
    datasets.Dataset.from_list(rows).to_parquet(str(path))
    loaded = datasets.load_dataset("parquet", data_files=str(path), keep_in_memory=True)["train"]
    return [loaded[i] for i in range(len(loaded))]


def gold_answer(seed: int) -> str:
    env = gym.make("Math-v0")
    env.reset(seed=seed)
    answer = env.step("The answer is -987654321")[4]["gold_answer"]  # a wrong, valid answer
    env.close()
    return str(answer)


def direct_steps(env_id: str, seed: int, actions: list[Any], **kwargs: Any) -> Iterator[tuple]:
    env = gym.make(env_id, **kwargs)
    env.reset(seed=seed)
    try:
        for action in actions:
            yield env.step(action)
    finally:
        env.close()


# ------------------------------------------------------------------------------ rows and make


def test_rows_survive_parquet_and_rebuild_their_episodes(env_class: str, tmp_path: Path) -> None:
    rows = dataset_rows("Math-v0", [0, 5], {"difficulty": 2}) + dataset_rows(GUESS, [1])
    assert {row["env_class"] for row in rows} == {env_class}
    assert [row["data_source"] for row in rows] == ["arenagym/Math-v0"] * 2 + [f"arenagym/{GUESS}"]
    loaded = parquet_rows(rows, tmp_path / "train.parquet")  # two envs, one schema
    for row in loaded:
        info = row["extra_info"]
        expected = TextSession(
            EpisodeRef.from_columns(info["env_id"], info["env_kwargs"], info["seed"])
        )
        env = make(row)
        chat, metadata = env.init(copy.deepcopy(row["prompt"]))
        assert chat == row["prompt"] == expected.messages
        assert metadata["env_id"] == info["env_id"] and metadata["seed"] == info["seed"]
        assert metadata["task_id"] == expected.reset_info["task_id"]
        expected.close()
        env.close()


def test_env_config_names_the_episode_and_gives_default_kwargs(env_class: str) -> None:
    config = {"env_id": "Math-v0", "env_kwargs": {"difficulty": 3}}
    env = skyrl_gym.make(
        env_class, env_config=DictConfig(config), extras={"extra_info": {"seed": 4}, "max_turns": 1}
    )
    assert env.ref == EpisodeRef("Math-v0", {"difficulty": 3}, 4)
    chat, _ = env.init([])
    assert chat == TextSession(EpisodeRef("Math-v0", {"difficulty": 3}, 4)).messages
    # the row's kwargs override the class's defaults, key by key
    row = {"env_id": "Math-v0", "env_kwargs": '{"max_turns": 2}', "seed": 4, "max_turns": 1}
    env = skyrl_gym.make(env_class, env_config=DictConfig(config), extras=row)
    assert env.ref.env_kwargs == {"difficulty": 3, "max_turns": 2}
    env.close()


# --------------------------------------------------------------- behaviour matches the env's own


@pytest.mark.parametrize("seed", [0, 3, 11])
def test_math_rewards_match_gymnasium(env_class: str, seed: int) -> None:
    row = dataset_rows("Math-v0", [seed])[0]
    gold = gold_answer(seed)
    rewards = {}
    for name, reply in [
        ("right", f"The answer is \\boxed{{{gold}}}."),
        ("wrong", "\\boxed{-12345}"),
    ]:
        _, outputs, metrics = run_generator_calls(row, lambda chat, reply=reply: reply, max_turns=1)
        (out,) = outputs
        _, reward, terminated, truncated, info = next(direct_steps("Math-v0", seed, [reply]))
        assert out["reward"] == reward and out["done"] == (terminated or truncated)
        assert out["metadata"]["stop_reason"] == info["stop_reason"]
        assert out["metadata"]["clean_reward"] == info["clean_reward"]
        assert out["metadata"]["final_observation"] and out["observations"] == []
        assert metrics["total_reward"] == reward and metrics["turns"] == 1
        rewards[name] = out["reward"]
    assert rewards["right"] > rewards["wrong"]


def bisect(chat: list[dict[str, str]]) -> str:
    """Guess the number by bisection over the hints seen so far (a real, adaptive policy)."""
    low, high = 1, 20
    replies = [m["content"] for m in chat if m["role"] == "assistant"]
    hints = [m["content"] for m in chat if m["role"] == "user"][1:]
    for reply, hint in zip(replies, hints, strict=False):
        guess = int(re.search(r"\d+", reply).group())
        if re.search(r"higher", hint, re.I):
            low = max(low, guess + 1)
        elif re.search(r"lower", hint, re.I):
            high = min(high, guess - 1)
    return f"My guess: [{(low + high) // 2}]"


@pytest.mark.parametrize("seed", [0, 7])
def test_guess_the_number_matches_the_env_turn_by_turn(env_class: str, seed: int) -> None:
    row = dataset_rows(GUESS, [seed])[0]
    chat, outputs, metrics = run_generator_calls(row, bisect)
    assert len(outputs) >= 3  # a real multi-turn episode
    replies = [m["content"] for m in chat if m["role"] == "assistant"]
    direct = list(direct_steps(GUESS, seed, replies))
    for out, (obs, reward, terminated, truncated, info) in zip(outputs, direct, strict=True):
        assert out["reward"] == reward and out["done"] == (terminated or truncated)
        assert out["metadata"]["invalid_action"] == info["invalid_action"]
        assert out["metadata"]["reward_components"] == info["reward_components"]
        if out["done"]:
            assert out["observations"] == [] and out["metadata"]["final_observation"] == obs
            assert out["metadata"]["stop_reason"] == info["stop_reason"] == "solved"
        else:
            assert out["observations"] == [{"role": "user", "content": obs}]
            assert out["metadata"]["stop_reason"] is None
    assert metrics["solved"] == 1.0 and metrics["turns"] == len(outputs)
    assert metrics["total_reward"] == sum(step[1] for step in direct)


def test_generator_max_turns_ends_a_running_episode(env_class: str) -> None:
    row = dataset_rows(GUESS, [0])[0]
    _, full, _ = run_generator_calls(row, bisect)
    assert len(full) > 2
    _, capped, metrics = run_generator_calls(row, bisect, max_turns=2)
    assert [o["reward"] for o in capped] == [o["reward"] for o in full[:2]]
    assert [o["done"] for o in capped] == [False, True]
    assert capped[-1]["metadata"]["stop_reason"] == "max_turns" == metrics["stop_reason"]
    assert capped[-1]["observations"] == []


def test_metrics_aggregate_through_skyrl(env_class: str) -> None:
    row = dataset_rows(GUESS, [0])[0]
    _, _, solved = run_generator_calls(row, bisect)
    _, _, capped = run_generator_calls(row, bisect, max_turns=1)
    aggregated = aggregate_for_environment(env_class, [solved, capped])
    assert aggregated["solved"] == 0.5
    assert aggregated["turns"] == (solved["turns"] + 1) / 2
    assert "stop_reason" not in aggregated  # text is dropped, numbers are averaged


# ------------------------------------------------------------------------------------ garbage

GARBAGE = st.one_of(
    st.text(max_size=300).filter(lambda s: not re.search(r"\[\s*[+-]?\d", s)),
    st.none(),
    st.integers(),
    st.binary(max_size=50),
    st.lists(st.text(max_size=5), max_size=3),
)


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(action=GARBAGE)
def test_garbage_is_a_penalised_step(env_class: str, action: Any) -> None:
    kwargs = {"invalid_action_penalty": 0.25}
    row = dataset_rows(GUESS, [2], kwargs)[0]
    env = make(row)
    env.init(row["prompt"])
    out = env.step(action)
    obs, reward, _, _, info = next(direct_steps(GUESS, 2, [action], **kwargs))
    assert out["metadata"]["invalid_action"] is True and info["invalid_action"] is True
    assert out["reward"] == reward == -0.25
    assert out["done"] is False and out["observations"] == [{"role": "user", "content": obs}]
    out = env.step(action)  # TextArena's rule: a second invalid move in a row loses
    assert out["done"] is True and out["metadata"]["stop_reason"] == "invalid_action"
    env.close()


# --------------------------------------------------------------------------------- bad input


def math_row(**extra_info: Any) -> dict[str, Any]:
    return {"extra_info": {"env_id": "Math-v0", "env_kwargs": "{}", "seed": 1, **extra_info}}


@pytest.mark.parametrize(
    ("extras", "config", "error", "field"),
    [
        (None, None, TypeError, "extras"),
        ("env_id=Math-v0", None, TypeError, "extras"),
        ({"extra_info": "Math-v0"}, None, TypeError, "extra_info"),
        ({"reward_spec": {}}, None, ValueError, "env_id"),
        (math_row(env_id=""), None, ValueError, "env_id"),
        (math_row(env_id="NoSuchEnv-v0"), None, ValueError, "env_id"),
        (math_row(env_kwargs="{not json"), None, ValueError, "env_kwargs"),
        (math_row(env_kwargs="[1, 2]"), None, ValueError, "env_kwargs"),
        (math_row(seed=-1), None, ValueError, "seed"),
        (math_row(seed="3"), None, ValueError, "seed"),
        (math_row(seed=True), None, ValueError, "seed"),
        ({**math_row(), "max_turns": 0}, None, ValueError, "max_turns"),
        ({**math_row(), "max_turns": "5"}, None, ValueError, "max_turns"),
        (math_row(), "Math-v0", TypeError, "env_config"),
        (math_row(), {"env_kwargs": "{oops"}, ValueError, "env_config"),
    ],
)
def test_bad_extras_name_the_field(
    env_class: str, extras: Any, config: Any, error: type[Exception], field: str
) -> None:
    with pytest.raises(error, match=field):
        skyrl_gym.make(env_class, env_config=config, extras=extras)


def test_kwargs_the_env_rejects_name_env_kwargs(env_class: str) -> None:
    env = skyrl_gym.make(env_class, env_config={}, extras=math_row(env_kwargs={"bogus": 1}))
    with pytest.raises(ValueError, match=r"env_kwargs.*bogus"):
        env.init([])


def test_register_twice_is_a_no_op_and_a_taken_name_is_an_error(env_class: str) -> None:
    assert register(env_class) == env_class
    with pytest.raises(ValueError, match=r"name.*gsm8k"):
        register("gsm8k")
    with pytest.raises(ValueError, match="name"):
        register("")


# ------------------------------------------------------------------------------------ lifecycle


def test_close_is_idempotent_and_releases_the_env(env_class: str) -> None:
    row = dataset_rows("Math-v0", [0])[0]
    env = make(row)
    env.close()  # before init
    with pytest.raises(RuntimeError, match="init"):
        env.step("x")
    env.init(row["prompt"])
    inner = env.session.env.unwrapped
    env.step("The answer is 0")
    with pytest.raises(RuntimeError, match="over"):
        env.step("again")
    env.close()
    env.close()
    assert inner._closed
    with pytest.raises(RuntimeError, match="init"):
        env.step("x")
    chat, _ = env.init(row["prompt"])  # init after close starts the episode afresh
    assert chat == row["prompt"] and env.turns == 0
    with env:
        pass
    assert env.session is None
