"""The env contract, checked on every registered id at once.

The contract is the design's env contract, summed up in the README's opening section: ``reset``
returns the system prompt and a task id; ``step`` returns reward components that sum to the
reward, the clean reward (single-agent envs) and, when an episode ends, a stop reason from the
shared set (:data:`~arenagym.envs.core.text_env.STOP_REASONS`) or one the env documents in its
class docstring's "Episode End"; garbage actions are penalised steps with a helpful observation,
never exceptions nor ``env_error``; the same seed gives the same episode byte for byte; ``close``
is idempotent. Single-agent ids (Gymnasium) and multi-agent ids (PettingZoo AEC and Parallel
envs) are held to the same checks.
"""

from __future__ import annotations

import inspect
import json
import math
import re
import subprocess
import sys
import warnings
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pettingzoo import AECEnv, ParallelEnv

import arenagym.envs
from arenagym.envs.core.registration import list_envs, make_multi_agent
from arenagym.envs.core.spaces import UnicodeText
from arenagym.envs.core.text_env import STOP_REASONS

SINGLE_AGENT_IDS = sorted(list_envs(multi_agent=False))
MULTI_AGENT_IDS = sorted(list_envs(multi_agent=True))

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
            str(w.message) for w in caught if not issubclass(w.category, (DeprecationWarning, ResourceWarning))
        ]
        assert not messages, messages
    finally:
        env.close()


def documented_stop_reasons(env: Any) -> frozenset[str]:
    """The stop reasons ``env`` may end with: the shared ones, and the ````names```` its class
    docstring's "Episode End" section lists (a family's own, e.g. ``won`` or ``completed``)."""
    unwrapped = getattr(env, "unwrapped", env)
    doc = inspect.getdoc(type(unwrapped)) or ""
    section = doc.partition("## Episode End")[2].partition("\n## ")[0]
    return STOP_REASONS | frozenset(re.findall(r"``([a-z_]+)``", section))


def _assert_step_contract(env: gym.Env, step: tuple[Any, ...]) -> None:
    observation, reward, terminated, truncated, info = step
    assert env.observation_space.contains(observation)
    assert isinstance(reward, float) and math.isfinite(reward)
    assert math.isclose(sum(info["reward_components"].values()), reward, abs_tol=1e-9)
    clean = info["clean_reward"]  # on every step (the step's reward unless the env says otherwise)
    assert isinstance(clean, float) and math.isfinite(clean)
    if terminated or truncated:
        assert isinstance(info["stop_reason"], str) and info["stop_reason"]
        assert info["stop_reason"] in documented_stop_reasons(env), info["stop_reason"]
    if info.get("invalid_action"):
        assert observation_text(observation).startswith("Invalid action:")


def observation_text(observation: Any) -> str:
    """The text of an observation: itself, or a ``Dict`` observation's ``"text"`` entry (an env
    with images, such as ImageEdit-v0, keeps there what a text env would show)."""
    return observation["text"] if isinstance(observation, dict) else observation


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
    from pettingzoo.test import api_test, parallel_api_test

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


# ----------------------------------------------------------------------------- multi-agent ids
# The single-agent checks above, for PettingZoo envs: AEC envs act one agent at a time
# (``step(action)``, then ``rewards``/``infos``/``observe``), Parallel envs all at once
# (``step({agent: action})`` returns them).

#: Text over every env's ``max_action_length`` (the largest is 65,536).
HUGE_ACTIONS = ("x" * 300_000, "🙂" * 300_000)
#: Actions no env can use: not text at all, or too long.
UNUSABLE_ACTIONS = st.one_of(
    st.none(),
    st.integers(),
    st.floats(allow_nan=True),
    st.binary(max_size=16),
    st.lists(st.text(max_size=4), max_size=3),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
    st.sampled_from(HUGE_ACTIONS),
)
#: Text that says nothing: empty, whitespace, control characters (escape sequences), emoji.
EMPTY_TEXT = st.one_of(
    st.text(" \t\n\r\x0b\x0c", max_size=8),
    st.text(st.characters(categories=["Cc"]), min_size=1, max_size=16),
    st.text(st.sampled_from("🙂∑中\u200b\ufeff"), min_size=1, max_size=8),
)
GARBAGE_ACTIONS = st.one_of(UNUSABLE_ACTIONS, EMPTY_TEXT)
#: TextArena games whose moves include free chat: any text, even empty, is a valid message there
#: (TextArena's rule, not garbage), so only unusable actions must be invalid in them.
FREE_TEXT_GAMES = frozenset({"SimpleNegotiation", "IteratedPrisonersDilemma"})


def _multi_agent(env_id: str) -> Any:
    env = make_multi_agent(env_id)
    assert isinstance(env, AECEnv | ParallelEnv), f"{env_id} is neither an AECEnv nor a ParallelEnv"
    return env


def _assert_agent_step(
    env: Any,
    agent: str,
    observation: str,
    reward: float,
    done: bool,
    info: dict[str, Any],
) -> None:
    """One agent's share of a multi-agent step, held to the single-agent contract."""
    assert env.observation_space(agent).contains(str(observation))
    assert isinstance(reward, float) and math.isfinite(reward)
    components = info["reward_components"]
    assert math.isclose(sum(components.values()), reward, abs_tol=1e-9), (agent, components)
    if done:
        reason = info["stop_reason"]
        assert reason in documented_stop_reasons(env), (agent, reason)
    if info.get("invalid_action"):
        assert components.get("invalid_action", 1.0) <= 0.0, (agent, components)
        assert isinstance(info.get("error"), str) and info["error"], (agent, info)
        assert "invalid" in str(observation).lower(), (agent, observation[:300])


def _must_be_invalid(env: Any, agent: str, action: Any) -> bool:
    """Whether ``action`` is garbage that ``agent`` must see rejected (not a free-text move)."""
    if not isinstance(action, str) or len(action) > env.action_space(agent).max_length:
        return True
    return getattr(env, "game_name", None) not in FREE_TEXT_GAMES


def _garbage_aec(env: AECEnv, data: st.DataObject) -> None:
    env.reset(seed=data.draw(st.integers(0, 2**16), label="seed"))
    for _ in range(6):
        if not env.agents:
            return
        agent = env.agent_selection
        if env.terminations[agent] or env.truncations[agent]:
            env.step(None)  # (PettingZoo: a finished agent is removed with a None step)
            continue
        action = data.draw(GARBAGE_ACTIONS, label=f"action of {agent}")
        env.step(action)
        for name in env.agents:
            done = env.terminations[name] or env.truncations[name]
            info = env.infos[name]
            _assert_agent_step(env, name, env.observe(name), env.rewards[name], done, info)
            assert info.get("stop_reason") != "env_error", (name, info)
        if _must_be_invalid(env, agent, action):
            assert env.infos[agent]["invalid_action"], (agent, action)


def _garbage_parallel(env: ParallelEnv, data: st.DataObject) -> None:
    env.reset(seed=data.draw(st.integers(0, 2**16), label="seed"))
    for _ in range(2):
        if not env.agents:
            return
        actions = {agent: data.draw(GARBAGE_ACTIONS, label=agent) for agent in env.agents}
        observations, rewards, terminations, truncations, infos = env.step(actions)
        for agent, action in actions.items():
            done = terminations[agent] or truncations[agent]
            info = infos[agent]
            _assert_agent_step(env, agent, observations[agent], rewards[agent], done, info)
            assert info.get("stop_reason") != "env_error", (agent, info)
            if _must_be_invalid(env, agent, action):
                assert info["invalid_action"], (agent, action)


@pytest.mark.parametrize("env_id", MULTI_AGENT_IDS)
@settings(
    max_examples=20,
    deadline=None,
    derandomize=True,  # the same examples on every run: a failure here is never a fluke
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(data=st.data())
def test_multi_agent_garbage_actions_are_penalised_steps(env_id: str, data: st.DataObject) -> None:
    """Empty, huge, non-text and control-character actions are invalid moves: penalised (an
    ``invalid_action`` reward component), explained (``info["error"]`` and the observation),
    never an exception nor ``env_error``; every agent's reward components sum to its reward, and
    an ending agent's stop reason is a shared or documented one."""
    env = _multi_agent(env_id)
    try:
        if isinstance(env, ParallelEnv):
            _garbage_parallel(env, data)
        else:
            _garbage_aec(env, data)
    finally:
        env.close()
        env.close()  # close is idempotent


#: A fixed script of moves and garbage (some valid somewhere, most invalid everywhere).
SCRIPT: tuple[Any, ...] = (
    "[0]", "", "[4]", None, "[1 1]", "i001, i002, i003", "[e2e4]", "none", "x" * 5000, "[2]",
    "\x00\x1b[31m", "[r1] Thank you, sorry about that.", "[3]", "[A1]", 7, "[bet]", "[1]",
)  # fmt: skip


def _play_multi_agent(env_id: str, seed: int, env: Any = None) -> list[str]:
    """Everything a multi-agent episode shows its agents, serialised (byte-for-byte checks),
    with every step held to the contract on the way."""
    env = env if env is not None else _multi_agent(env_id)
    record: list[str] = []
    if isinstance(env, ParallelEnv):
        observations, infos = env.reset(seed=seed)
        record.append(json.dumps([observations, infos], sort_keys=True, default=str))
        for index in range(10):
            if not env.agents:
                break
            actions = {
                agent: SCRIPT[(index + offset) % len(SCRIPT)]
                for offset, agent in enumerate(env.agents)
            }
            step = env.step(actions)
            for agent in actions:
                done = step[2][agent] or step[3][agent]
                _assert_agent_step(env, agent, step[0][agent], step[1][agent], done, step[4][agent])
            record.append(json.dumps(step, sort_keys=True, default=str))
        return record
    env.reset(seed=seed)
    for index, agent in enumerate(env.agent_iter(max_iter=60)):
        observation, reward, terminated, truncated, info = env.last()
        record.append(
            json.dumps([agent, str(observation), reward, terminated, truncated, info], default=str)
        )
        if terminated or truncated:
            env.step(None)
            continue
        env.step(SCRIPT[index % len(SCRIPT)])
        for name in env.agents:
            done = env.terminations[name] or env.truncations[name]
            info = env.infos[name]
            _assert_agent_step(env, name, env.observe(name), env.rewards[name], done, info)
    return record


@pytest.mark.parametrize("env_id", MULTI_AGENT_IDS)
def test_multi_agent_same_seed_gives_the_same_episode(env_id: str) -> None:
    env = _multi_agent(env_id)
    first = _play_multi_agent(env_id, 123, env)
    assert first == _play_multi_agent(env_id, 123), "a fresh env with the same seed differs"
    assert first == _play_multi_agent(env_id, 123, env), "a reset with the same seed differs"
    env.close()
    env.close()  # close is idempotent
