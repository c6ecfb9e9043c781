"""The env contract, checked on every registered id at once (see DESIGN.md, "The env contract")."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import warnings
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import arenagym.envs
from arenagym.envs.core.spaces import UnicodeText

SINGLE_AGENT_IDS = sorted(arenagym.envs.list_envs(multi_agent=False))
MULTI_AGENT_IDS = sorted(arenagym.envs.list_envs(multi_agent=True))

#: Hand-picked garbage on top of random samples: empty, whitespace, control and odd characters,
#: half-written markup, huge text, and values that are not text at all.
GARBAGE: list[Any] = [
    "",
    "   \n\t ",
    "\x00\x01\x02\x1b[31m",
    "\\boxed{",
    "\\boxed{}}}}",
    "<answer></answer>",
    "<answer>" * 50,
    "The answer is",
    "\\boxed{\\frac{1}{0}}",
    "\\boxed{\\sqrt{-1}} \\boxed{\\infty} \\boxed{[}",
    "🙂" * 1000,
    "x" * 70_000,
    None,
    123,
    b"bytes",
    ["a", "list"],
]


def test_every_family_registers_ids_with_one_line_descriptions() -> None:
    ids = arenagym.envs.list_envs()
    assert "Math-v0" in ids and "Math-Bundled-v0" in ids
    for env_id, description in ids.items():
        assert env_id.rsplit("-v", 1)[1].isdigit(), f"{env_id} is not versioned"
        assert description.strip() and "\n" not in description
        spec = gym.spec(env_id) if env_id in SINGLE_AGENT_IDS else None
        if spec is not None:
            json.dumps(spec.kwargs)  # every registered kwarg is JSON-serialisable


def test_make_with_module_prefix_works_in_a_fresh_interpreter() -> None:
    code = (
        "import gymnasium as gym\n"
        "env = gym.make('arenagym.envs:Math-v0')\n"
        "obs, info = env.reset(seed=0)\n"
        "print(info['task_id'])\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert result.stdout.strip().startswith("proc/")


@pytest.mark.parametrize("env_id", SINGLE_AGENT_IDS)
def test_check_env_passes_without_warnings(env_id: str) -> None:
    env = gym.make(env_id)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            check_env(env.unwrapped)
        messages = [
            str(w.message) for w in caught if not issubclass(w.category, DeprecationWarning)
        ]
        assert not messages, messages
    finally:
        env.close()


def _assert_step_contract(env: gym.Env, step: tuple[Any, ...]) -> None:
    observation, reward, terminated, truncated, info = step
    assert env.observation_space.contains(observation)
    assert isinstance(reward, float) and math.isfinite(reward)
    assert math.isclose(sum(info["reward_components"].values()), reward, abs_tol=1e-9)
    if terminated or truncated:
        assert isinstance(info["stop_reason"], str) and info["stop_reason"]
    if info.get("invalid_action"):
        assert observation.startswith("Invalid action:")


@pytest.mark.parametrize("env_id", SINGLE_AGENT_IDS)
def test_two_hundred_garbage_actions_never_raise(env_id: str) -> None:
    env = gym.make(env_id, max_invalid_actions=3, max_turns=4)
    env.action_space.seed(0)
    rng = np.random.default_rng(0)
    env.reset(seed=0)
    for index in range(200):
        if index % 3 == 0:
            action = GARBAGE[int(rng.integers(len(GARBAGE)))]
        else:
            action = env.action_space.sample()
        step = env.step(action)
        _assert_step_contract(env.unwrapped, step)
        if step[2] or step[3]:
            _observation, info = env.reset()
            assert {"system_prompt", "task_id"} <= set(info)
    env.close()
    env.close()  # close is idempotent


def _play(env_id: str, seed: int, actions: list[str]) -> list[str]:
    """Everything an episode shows, serialised, for byte-for-byte comparison."""
    env = gym.make(env_id, max_turns=len(actions), max_invalid_actions=len(actions))
    observation, info = env.reset(seed=seed)
    record = [json.dumps([observation, info], sort_keys=True, default=str)]
    for action in actions:
        step = env.step(action)
        record.append(json.dumps(step, sort_keys=True, default=str))
        if step[2] or step[3]:
            break
    env.close()
    return record


@pytest.mark.parametrize("env_id", SINGLE_AGENT_IDS)
def test_same_seed_gives_the_same_episode(env_id: str) -> None:
    actions = ["no idea", "\\boxed{1}", "The answer is 2.", "<answer>x</answer>"]
    first = _play(env_id, 123, actions)
    assert first == _play(env_id, 123, actions)
    others = [_play(env_id, seed, actions)[0] for seed in range(5)]
    assert len(set(others)) > 1, "different seeds should give different episodes"


def test_async_vector_env_steps_text_envs() -> None:
    envs = gym.vector.AsyncVectorEnv(
        [lambda: gym.make("arenagym.envs:Math-v0", difficulty=1) for _ in range(2)],
        shared_memory=False,
        context="spawn",  # fork is unsafe in a process with threads (the verifier pool, xdist)
    )
    try:
        observations, infos = envs.reset(seed=[1, 2])
        assert isinstance(observations, tuple) and all(isinstance(o, str) for o in observations)
        assert observations == (
            gym.make("Math-v0", difficulty=1).reset(seed=1)[0],
            gym.make("Math-v0", difficulty=1).reset(seed=2)[0],
        )
        _, rewards, terminated, _truncated, infos = envs.step(("\\boxed{0}", "no answer"))
        assert terminated.all() and rewards.shape == (2,)
        assert list(infos["stop_reason"]) in (
            ["failed", "no_answer"],
            ["solved", "no_answer"],
        )
    finally:
        envs.close()


# PettingZoo suggests NumPy observations and Box/Discrete spaces; text envs have neither, by design.
@pytest.mark.filterwarnings("ignore:Observation is not a NumPy array:UserWarning")
@pytest.mark.filterwarnings("ignore:Observation space for each agent probably:UserWarning")
@pytest.mark.filterwarnings("ignore:Action space for each agent probably:UserWarning")
def test_multi_agent_ids_pass_pettingzoo_api_test() -> None:
    """Turn-based ids are AEC envs (``api_test``), simultaneous ones Parallel envs
    (``parallel_api_test``)."""
    if not MULTI_AGENT_IDS:
        pytest.skip("no multi-agent family is registered yet")
    from pettingzoo import AECEnv, ParallelEnv
    from pettingzoo.test import api_test, parallel_api_test

    from arenagym.envs.core.registration import make_multi_agent

    for env_id in MULTI_AGENT_IDS:
        env = make_multi_agent(env_id)
        if isinstance(env, ParallelEnv):
            parallel_api_test(env, num_cycles=50)
        else:
            assert isinstance(env, AECEnv), f"{env_id} is neither an AECEnv nor a ParallelEnv"
            api_test(env, num_cycles=50)


def test_unicode_text_space() -> None:
    space = UnicodeText(max_length=10, seed=3)
    assert space.contains("") and space.contains("∑ 中文 🙂!?") and not space.contains("x" * 11)
    assert not space.contains(b"bytes") and not space.contains(None)
    assert space == UnicodeText(10) and space != UnicodeText(11) and space != gym.spaces.Text(10)
    samples = [space.sample() for _ in range(200)]
    assert all(space.contains(s) for s in samples)
    assert any(not s.isascii() for s in samples) and any(s == "" for s in samples)
    replay = UnicodeText(max_length=10, seed=3)
    assert [replay.sample() for _ in range(200)] == samples
    with pytest.raises(ValueError, match="max_length"):
        UnicodeText(-1)
