"""arenagym ids served as OpenEnv servers and OpenEnv servers played as arenagym ids, over real
HTTP/WebSocket on 127.0.0.1 (uvicorn in a thread, or the module's command in a subprocess)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import gymnasium as gym
import pytest
from gymnasium.utils.env_checker import check_env
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openenv.core.env_server.http_server import create_fastapi_app
from openenv.core.env_server.interfaces import Environment
from openenv.core.env_server.types import Action, Observation, State
from openenv.core.generic_client import GenericEnvClient

import arenagym.envs  # noqa: F401  (registers the ids)
from arenagym.envs.integrations.openenv import (
    ArenaAction,
    ArenaEnvClient,
    ArenaEnvironment,
    OpenEnvTextEnv,
    _plain,
    create_app,
    main,
    register_openenv,
    running_server,
)

ROOT = Path(__file__).resolve().parents[3]
MATH = ("Math-v0", {"difficulty": 1})
GUESS = ("TextArena/GuessTheNumber-v0", {"invalid_action_penalty": 0.25})


@pytest.fixture(scope="module")
def math_url() -> Iterator[str]:
    with running_server(MATH[0], **MATH[1]) as url:
        yield url


@pytest.fixture(scope="module")
def guess_url() -> Iterator[str]:
    with running_server(GUESS[0], **GUESS[1]) as url:
        yield url


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class BinarySearch:
    """Plays GuessTheNumber (1..20) from the text alone: halves the range on each hint."""

    def __init__(self) -> None:
        self.low, self.high, self.guess = 1, 20, 0

    def act(self, observation: str) -> str:
        if "higher" in observation:
            self.low = self.guess + 1
        elif "lower" in observation:
            self.high = self.guess - 1
        self.guess = (self.low + self.high) // 2
        return f"[{self.guess}]"


Transition = tuple[str, float, bool, bool, dict[str, Any]]


def play_direct(env_id: str, kwargs: dict[str, Any], seed: int, replies: Callable[[str], str]):
    """One episode of ``gymnasium.make``: the reset and every step (info made JSON-safe)."""
    env = gym.make(env_id, **kwargs)
    try:
        observation, info = env.reset(seed=seed)
        start = (observation, _plain(info))
        steps: list[Transition] = []
        done = False
        while not done:
            observation, reward, terminated, truncated, info = env.step(replies(observation))
            steps.append((observation, reward, terminated, truncated, _plain(info)))
            done = terminated or truncated
        return start, steps
    finally:
        env.close()


def play_gym(env: gym.Env[str, str], seed: int, replies: Callable[[str], str]):
    observation, info = env.reset(seed=seed)
    start = (observation, info)
    steps: list[Transition] = []
    done = False
    while not done:
        observation, reward, terminated, truncated, info = env.step(replies(observation))
        steps.append((observation, reward, terminated, truncated, info))
        done = terminated or truncated
    return start, steps


def play_openenv(url: str, seed: int, replies: Callable[[str], str]):
    """The same episode through openenv-core's client, as (observation, reward, ...) tuples."""
    with ArenaEnvClient(base_url=url).sync() as client:
        result = client.reset(seed=seed)
        first = result.observation
        assert result.reward is None and not result.done
        start = (first.text, first.info)
        steps: list[Transition] = []
        while not result.done:
            result = client.step(ArenaAction(message=replies(result.observation.text)))
            obs = result.observation
            terminated = result.done and not obs.truncated
            steps.append((obs.text, result.reward, terminated, obs.truncated, obs.info))
            # The typed fields agree with the info they come from.
            assert obs.invalid_action == obs.info.get("invalid_action", False)
            assert obs.stop_reason == (obs.info.get("stop_reason") if result.done else None)
            assert obs.clean_reward == obs.info["clean_reward"]
            assert sum(obs.reward_components.values()) == pytest.approx(result.reward)
        state = client.state()
        assert state.step_count == len(steps) and state.done
        assert state.total_reward == pytest.approx(sum(s[1] for s in steps))
        return start, steps


# ------------------------------------------------------------------------------- serving
@pytest.mark.parametrize("seed", [0, 7])
def test_openenv_client_plays_math_like_gym_make(math_url: str, seed: int) -> None:
    for reply in (r"\boxed{42}", "I have no idea."):
        direct = play_direct(*MATH, seed, lambda _obs, reply=reply: reply)
        served = play_openenv(math_url, seed, lambda _obs, reply=reply: reply)
        assert served == direct
    first = direct[0][1]
    assert first["system_prompt"] and first["task_id"]


@pytest.mark.parametrize("seed", [1, 2])
def test_openenv_client_plays_textarena_multi_turn_like_gym_make(guess_url: str, seed: int) -> None:
    direct = play_direct(*GUESS, seed, BinarySearch().act)
    served = play_openenv(guess_url, seed, BinarySearch().act)
    assert served == direct
    assert len(served[1]) > 1  # several turns over one WebSocket session
    assert served[1][-1][4]["stop_reason"] in {"solved", "failed", "max_turns"}


def test_sessions_are_isolated_and_interleave(guess_url: str) -> None:
    """Two clients (two server-side envs) step in turn; each plays its own seed's episode."""
    expected = {seed: play_direct(*GUESS, seed, BinarySearch().act)[1] for seed in (3, 4)}
    clients = {seed: ArenaEnvClient(base_url=guess_url).sync() for seed in (3, 4)}
    policies = {seed: BinarySearch() for seed in (3, 4)}
    got: dict[int, list[str]] = {3: [], 4: []}
    try:
        texts = {seed: client.reset(seed=seed).observation.text for seed, client in clients.items()}
        for _ in range(max(len(steps) for steps in expected.values())):
            for seed, client in clients.items():
                if len(got[seed]) < len(expected[seed]):
                    reply = ArenaAction(message=policies[seed].act(texts[seed]))
                    texts[seed] = client.step(reply).observation.text
                    got[seed].append(texts[seed])
    finally:
        for client in clients.values():
            client.close()
    assert got == {seed: [step[0] for step in steps] for seed, steps in expected.items()}


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(garbage=st.text(st.characters(blacklist_characters="[]", codec="utf-8"), max_size=60))
def test_garbage_action_is_a_penalised_step(guess_url: str, garbage: str) -> None:
    """Any text without a move is the env's invalid action: -penalty, the episode goes on."""
    with GenericEnvClient(base_url=guess_url).sync() as client:
        client.reset(seed=5)
        result = client.step({"message": garbage})
    obs = result.observation
    assert result.reward == -GUESS[1]["invalid_action_penalty"]
    assert not result.done and obs["invalid_action"] and obs["info"]["error"]
    assert obs["text"].startswith("Invalid action")
    env = gym.make(GUESS[0], **GUESS[1])
    env.reset(seed=5)
    text, reward, _, _, info = env.step(garbage)
    env.close()
    assert (obs["text"], result.reward, obs["info"]) == (text, reward, _plain(info))


def test_bad_reset_fields_and_steps_are_clear_errors(math_url: str) -> None:
    with GenericEnvClient(base_url=math_url).sync() as client:
        with pytest.raises(RuntimeError, match="seed"):
            client.reset(seed=-1)
        with pytest.raises(RuntimeError, match="colour"):
            client.reset(seed=1, colour="red")
        with pytest.raises(RuntimeError, match="step before reset"):
            client.step({"message": "hi"})
        client.reset(seed=1)
        with pytest.raises(RuntimeError, match="message"):
            client.step({"text": "wrong field"})
        client.step({"message": "no answer"})
        with pytest.raises(RuntimeError, match="episode is over"):
            client.step({"message": "again"})


def test_schema_and_capacity() -> None:
    with running_server(*MATH[:1], max_sessions=1, **MATH[1]) as url:
        with urllib.request.urlopen(f"{url}/schema") as response:
            schema = json.load(response)
        assert schema["action"]["required"] == ["message"]
        assert {"text", "reward", "done", "stop_reason", "invalid_action", "clean_reward"} <= set(
            schema["observation"]["properties"]
        )
        with ArenaEnvClient(base_url=url).sync() as first:
            first.reset(seed=0)
            second = OpenEnvTextEnv(url)
            with pytest.raises(RuntimeError, match=r"(?i)at capacity"):
                second.reset(seed=0)
            second.close()
        # The session is released when its client leaves: a new one is served.
        again = OpenEnvTextEnv(url)
        assert again.reset(seed=0)[0] == gym.make(MATH[0], **MATH[1]).reset(seed=0)[0]
        again.close()


def test_create_app_rejects_bad_ids_and_options() -> None:
    with pytest.raises(ValueError, match=r"env_id.*not a registered"):
        create_app("NoSuchEnv-v0")
    with pytest.raises(ValueError, match=r"env_id.*not a text env"):
        create_app("CartPole-v1")
    with pytest.raises(ValueError, match="max_sessions"):
        create_app("Math-v0", max_sessions=0)
    with pytest.raises(TypeError):
        create_app("Math-v0", no_such_kwarg=1)


def test_main_rejects_bad_arguments(capsys: pytest.CaptureFixture[str]) -> None:
    for argv, field in (
        (["Math-v0", "--kwargs", "{nope"], "--kwargs"),
        (["Math-v0", "--kwargs", "[1]"], "--kwargs"),
        (["NoSuchEnv-v0", "--port", "1"], "env_id"),
    ):
        with pytest.raises(SystemExit):
            main(argv)
        assert field in capsys.readouterr().err


def test_python_dash_m_serves_the_id() -> None:
    port = closed_port()
    command = [sys.executable, "-m", "arenagym.envs.integrations.openenv", "Math-v0"]
    command += ["--port", str(port), "--kwargs", json.dumps(MATH[1])]
    process = subprocess.Popen(command, cwd=ROOT, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1).close()
                break
            except OSError:
                assert process.poll() is None, process.stderr.read() if process.stderr else ""
                assert time.monotonic() < deadline, "the server did not start in 60 s"
                time.sleep(0.2)
        url = f"http://127.0.0.1:{port}"
        assert play_openenv(url, 11, lambda _: r"\boxed{1}") == play_direct(
            *MATH, 11, lambda _: r"\boxed{1}"
        )
    finally:
        process.terminate()
        process.wait(30)


def test_environment_in_process_state_and_metadata() -> None:
    env = ArenaEnvironment(*MATH)
    assert env.get_metadata().name == "Math-v0"
    first = env.reset(seed=2, episode_id="ep-1")
    assert env.state.episode_id == "ep-1" and env.state.seed == 2 and not env.state.done
    assert env.state.messages[-1] == {"role": "user", "content": first.text}
    env.close()
    env.close()


# ------------------------------------------------------------------------------ consuming
def test_round_trip_passes_check_env_and_matches_direct(math_url: str, guess_url: str) -> None:
    register_openenv("OpenEnvTest/Math-v0", math_url)
    register_openenv("OpenEnvTest/GuessTheNumber-v0", guess_url)
    env = gym.make("OpenEnvTest/Math-v0")
    try:
        check_env(env.unwrapped)
        for seed in (0, 9):
            for reply in (r"\boxed{3}", "garbage"):
                got = play_gym(env, seed, lambda _obs, reply=reply: reply)
                assert got == play_direct(*MATH, seed, lambda _obs, reply=reply: reply)
    finally:
        env.close()
    guess = gym.make("OpenEnvTest/GuessTheNumber-v0")
    try:
        check_env(guess.unwrapped)
        for seed in (1, 6):
            got = play_gym(guess, seed, BinarySearch().act)
            assert got == play_direct(*GUESS, seed, BinarySearch().act)
            _, info = guess.reset(seed=seed)
            assert info["system_prompt"] and info["task_id"]
        # A non-text action never reaches the server: a local invalid step.
        _, reward, terminated, truncated, info = guess.unwrapped.step(17)  # type: ignore[arg-type]
        assert info["invalid_action"] and not (terminated or truncated) and reward == 0.0
    finally:
        guess.close()
        guess.close()


def test_server_down_is_a_clear_error() -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    register_openenv("OpenEnvTest/Down-v0", url)
    with pytest.raises(ConnectionError, match=r"no OpenEnv server answers at .*start one with"):
        gym.make("OpenEnvTest/Down-v0")
    with pytest.raises(ValueError, match="base_url"):
        register_openenv("OpenEnvTest/Bad-v0", "localhost:8000")


def test_server_lost_mid_episode_ends_it_with_env_error() -> None:
    with running_server(*MATH[:1], **MATH[1]) as url:
        env = OpenEnvTextEnv(url, message_timeout_s=5)
        env.reset(seed=0)
    _, _, terminated, _, info = env.step(r"\boxed{1}")
    assert terminated and info["stop_reason"] == "env_error" and info["error"]
    with pytest.raises(RuntimeError, match="after the episode ended"):
        env.step("again")
    env.close()


class CodeAction(Action):
    code: str
    language: str


class CodeObservation(Observation):
    output: str = ""


class CodeEnvironment(Environment[CodeAction, CodeObservation, State]):
    """A real OpenEnv server whose actions are not one text field."""

    def reset(self, seed: int | None = None, episode_id: str | None = None, **_: Any):
        return CodeObservation(output="ready")

    def step(self, action: CodeAction, timeout_s: float | None = None, **_: Any):
        return CodeObservation(output=action.code, done=True, reward=1.0)

    @property
    def state(self) -> State:
        return State()


def test_a_different_action_schema_is_a_clear_error() -> None:
    import threading

    import uvicorn

    app = create_fastapi_app(CodeEnvironment, CodeAction, CodeObservation)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        while not server.started:
            thread.join(0.01)
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        with pytest.raises(ValueError, match=r"different action schema.*\['code', 'language'\]"):
            OpenEnvTextEnv(url)
        with pytest.raises(ValueError, match="action_field"):
            OpenEnvTextEnv(url, action_field="code")  # language is required too
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


@settings(max_examples=50, deadline=None)
@given(
    value=st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
        lambda inner: (
            st.lists(inner, max_size=3).map(tuple)
            | st.dictionaries(st.integers() | st.text(max_size=5), inner, max_size=3)
        ),
        max_leaves=10,
    )
)
def test_info_is_made_json_safe(value: Any) -> None:
    """What travels in an observation's info survives JSON unchanged (tuples become lists)."""
    plain = _plain(value)
    assert json.loads(json.dumps(plain)) == plain
    assert _plain(plain) == plain
