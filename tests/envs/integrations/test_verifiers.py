"""The verifiers adapter, run by verifiers' own eval runner over real HTTP on 127.0.0.1.

- Against ``arenagym serve`` (the tiny model, a subprocess): the rewards verifiers records equal
  (a) the rewards of replaying verifiers' completions through ``gymnasium.make`` directly, and
  (b) the rewards arenagym's own episode loop gets with its ``openai:`` agent on the same server,
  greedy, for the same seeds; (b) also checks both sent the model the same conversation.
- Against a scripted OpenAI-compatible server (a few lines of ``http.server``): a player that
  wins (reward 1.0 flows through), garbage replies (the env's penalty, never a crash), the
  ``max_turns`` cap, an unreachable model (a failed episode, sessions still closed).
- Bad arguments give errors that name the argument.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import gymnasium as gym
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

vf = pytest.importorskip("verifiers.v1", reason="the verifiers extra is not installed")

from verifiers.v1.cli.eval.runner import run_eval  # noqa: E402
from verifiers.v1.configs.cli.eval import EvalConfig  # noqa: E402
from verifiers.v1.types import content_text  # noqa: E402

import arenagym.envs  # noqa: E402,F401
from arenagym.agents.episode import EnvStep, play_episode  # noqa: E402
from arenagym.agents.specs import load_agent  # noqa: E402
from arenagym.envs.integrations import verifiers as adapter  # noqa: E402
from arenagym.envs.integrations.verifiers import load_environment  # noqa: E402

MAX_TOKENS = 16
MATH = ("Math-v0", {"mode": "correct+rpr", "invalid_action_penalty": 0.5}, None)
GUESS = (
    "TextArena/GuessTheNumber-v0",
    {"max_invalid_actions": 3, "invalid_action_penalty": 0.25},
    3,
)


# --- servers ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_url(tiny_model_dir: Path, serve_printed_url: Any) -> Iterator[str]:
    """``arenagym serve`` on the tiny model in a subprocess; its ``/v1`` URL."""
    pytest.importorskip("uvicorn", reason="the serve extra is not installed")
    command = [
        sys.executable, "-m", "arenagym", "serve", "--model", str(tiny_model_dir),
        "--host", "127.0.0.1", "--port", "0", "--model-name", "tiny",
    ]  # fmt: skip
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    server = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        url, _ = serve_printed_url(server, 120)
        health = url.removesuffix("/v1") + "/health"
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(health, timeout=2) as reply:
                    if reply.status == 200:
                        break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("arenagym serve did not come up")
                time.sleep(0.2)
        yield url
    finally:
        server.terminate()
        server.wait(30)


def _binary_search(messages: list[dict[str, Any]]) -> str:
    """A GuessTheNumber player that reads the game's hints from the conversation."""
    low, high = 1, 20
    for said, heard in itertools.pairwise(messages):
        guess = re.search(r"\[(\d+)\]", str(said.get("content")))
        if said["role"] != "assistant" or guess is None:
            continue
        if "higher" in str(heard.get("content")):
            low = int(guess.group(1)) + 1
        elif "lower" in str(heard.get("content")):
            high = int(guess.group(1)) - 1
    return f"I guess [{(low + high) // 2}]"


class _Scripted(BaseHTTPRequestHandler):
    """``POST /v1/chat/completions``: model ``binary-search`` plays GuessTheNumber; model
    ``fixed`` replies ``server.reply``."""

    server: Any

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.requests.append(body)
        if body["model"] == "binary-search":
            text = _binary_search(body["messages"])
        else:
            text = self.server.reply
        answer = {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 0,
            "model": body["model"],
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": text},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        }
        data = json.dumps(answer).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def scripted() -> Iterator[ThreadingHTTPServer]:
    """A scripted OpenAI-compatible server on 127.0.0.1 (``.url``, ``.reply``, ``.requests``)."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Scripted)
    server.reply = ""  # type: ignore[attr-defined]
    server.requests = []  # type: ignore[attr-defined]
    server.url = f"http://127.0.0.1:{server.server_address[1]}/v1"  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


# --- helpers ---------------------------------------------------------------------------------


def evaluate(env: Any, url: str, model: str, output_dir: Path) -> list[Any]:
    """verifiers' own eval runner (what ``vf-eval`` runs), greedy, one episode at a time (so
    that the server never batches requests of several episodes together)."""
    config = EvalConfig(
        env=env.config,
        model=model,
        client=vf.EvalClientConfig(base_url=url, api_key_var="ARENAGYM_TEST_KEY"),
        sampling=vf.SamplingConfig(temperature=0.0, max_tokens=MAX_TOKENS),
        max_concurrent=1,
        push=False,
        rich=None,
        output_dir=output_dir,
    )
    return asyncio.run(run_eval(config))


def by_seed(episodes: list[Any]) -> dict[int, Any]:
    """Each episode's one trace, keyed by its seed."""
    assert all(len(episode.traces) == 1 for episode in episodes)
    return {episode.traces[0].task.data.seed: episode.traces[0] for episode in episodes}


def completions(trace: Any) -> list[str]:
    """The model's replies (an empty reply is recorded as ``content=None``)."""
    return [content_text(m.content) for m in trace.messages if m.role == "assistant"]


def replay(env_id: str, env_kwargs: Mapping[str, Any], seed: int, replies: list[str]) -> dict:
    """The replies stepped through ``gymnasium.make`` directly: totals and the stop reason."""
    env = gym.make(env_id, **env_kwargs)
    try:
        env.reset(seed=seed)
        total = clean = 0.0
        stop = "max_turns"
        for reply in replies:
            _, reward, terminated, truncated, info = env.step(reply)
            total += float(reward)
            clean += float(info.get("clean_reward", reward))
            if terminated or truncated:
                stop = info.get("stop_reason", "terminated")
                break
        return {"reward": total, "clean_reward": clean, "stop_reason": stop}
    finally:
        env.close()


# --- against arenagym serve ------------------------------------------------------------------


@pytest.mark.parametrize("case", [MATH, GUESS], ids=["single-turn", "multi-turn"])
def test_evaluate_gives_arenagym_rewards(case: tuple, tiny_url: str, tmp_path: Path) -> None:
    env_id, env_kwargs, max_turns = case
    seeds = [0, 1, 2]
    env = load_environment(env_id, seeds=seeds, env_kwargs=env_kwargs, max_turns=max_turns)
    traces = by_seed(evaluate(env, tiny_url, "tiny", tmp_path))
    assert sorted(traces) == seeds
    spec = f"openai:{tiny_url},model=tiny,temperature=0,max_tokens={MAX_TOKENS}"
    for seed, trace in traces.items():
        assert trace.ok and not trace.errors, trace.errors
        replies = completions(trace)
        assert replies and (max_turns is None or len(replies) <= max_turns)
        stepped = [m["content"] for m in trace.state.session.messages if m["role"] == "assistant"]
        assert stepped == replies  # the env was stepped with the replies exactly as written
        outcome = trace.info["arenagym"]
        # (a) verifiers' completions replayed through the env itself
        direct = replay(env_id, env_kwargs, seed, replies)
        assert trace.reward == pytest.approx(direct["reward"])
        assert trace.rewards["env_reward"].score == pytest.approx(direct["reward"])
        assert trace.metrics["clean_reward"] == pytest.approx(direct["clean_reward"])
        assert trace.metrics["turns"] == outcome["turns"] == len(replies)
        assert outcome["stop_reason"] == direct["stop_reason"]
        # (b) arenagym's own episode loop with its openai: agent on the same server
        actions: list[str] = []

        def on_step(step: EnvStep, actions: list[str] = actions) -> None:
            actions.append(step.action)

        result = play_episode(
            lambda: gym.make(env_id, **env_kwargs),
            lambda: load_agent(spec),
            seed=seed,
            max_steps=max_turns,
            max_steps_reason="max_turns",
            on_step=on_step,
        )
        assert actions == replies, f"seed {seed}: the two runs asked different questions"
        assert trace.reward == pytest.approx(result.reward)
        assert trace.metrics["clean_reward"] == pytest.approx(result.clean_reward)
        assert outcome["stop_reason"] == result.stop_reason
        # the system prompt and the opening observation are the env's, unchanged
        with adapter.TextSession(adapter.EpisodeRef(env_id, env_kwargs, seed)) as session:
            opening = [(m.role, m.content) for m in trace.messages[:2]]
            assert opening == [(m["role"], m["content"]) for m in session.messages]


# --- against a scripted server ---------------------------------------------------------------


def test_a_winning_player_earns_the_env_reward(scripted: Any, tmp_path: Path) -> None:
    env_id = "TextArena/GuessTheNumber-v0"
    env = load_environment(env_id, seeds=[3, 4])
    for seed, trace in by_seed(evaluate(env, scripted.url, "binary-search", tmp_path)).items():
        direct = replay(env_id, {}, seed, completions(trace))
        assert direct["stop_reason"] == trace.info["arenagym"]["stop_reason"] == "solved"
        assert trace.reward == direct["reward"] > 0
        assert trace.metrics["solved"] == 1.0
        assert 1 <= trace.metrics["turns"] <= 5


def test_max_turns_caps_the_episode(scripted: Any, tmp_path: Path) -> None:
    env = load_environment("TextArena/GuessTheNumber-v0", seeds=[0], max_turns=1)
    trace = by_seed(evaluate(env, scripted.url, "binary-search", tmp_path))[0]
    assert completions(trace) == ["I guess [10]"]
    assert trace.info["arenagym"]["stop_reason"] in ("max_turns", "solved")
    assert trace.metrics["turns"] == 1


@settings(
    max_examples=6,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(reply=st.one_of(st.just(""), st.just("   "), st.text(max_size=40)))
def test_garbage_is_a_penalised_step(scripted: Any, tmp_path_factory: Any, reply: str) -> None:
    """Any reply text: the episode is played, never crashes, and scores what the env says."""
    scripted.reply = reply
    cases = [
        ("Math-v0", {"invalid_action_penalty": 0.5}),
        ("TextArena/GuessTheNumber-v0", {"invalid_action_penalty": 0.25}),
    ]
    for env_id, env_kwargs in cases:
        env = load_environment(env_id, seeds=[5], env_kwargs=env_kwargs, max_turns=4)
        trace = by_seed(evaluate(env, scripted.url, "fixed", tmp_path_factory.mktemp("e")))[5]
        assert trace.ok and not trace.errors, trace.errors
        assert set(completions(trace)) == {reply}
        direct = replay(env_id, env_kwargs, 5, completions(trace))
        assert trace.reward == pytest.approx(direct["reward"])
        assert trace.info["arenagym"]["stop_reason"] == direct["stop_reason"]


def test_garbage_gets_the_penalty(scripted: Any, tmp_path: Path) -> None:
    scripted.reply = "¯\\_(ツ)_/¯ {{{ no move here"
    env = load_environment(
        "TextArena/GuessTheNumber-v0",
        seeds=[0],
        env_kwargs={"invalid_action_penalty": 0.25, "max_invalid_actions": 2},
    )
    trace = by_seed(evaluate(env, scripted.url, "fixed", tmp_path))[0]
    assert trace.ok
    # two invalid moves are allowed; the third ends the game, each one penalised
    assert trace.info["arenagym"]["stop_reason"] == "invalid_action"
    assert trace.metrics["turns"] == 3
    assert trace.reward == pytest.approx(-0.75)
    math = load_environment("Math-v0", seeds=[0], env_kwargs={"invalid_action_penalty": 0.5})
    trace = by_seed(evaluate(math, scripted.url, "fixed", tmp_path / "math"))[0]
    assert trace.info["arenagym"]["stop_reason"] == "no_answer"
    assert trace.reward == pytest.approx(-0.5)


def test_sessions_are_closed_when_rollouts_end(
    scripted: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    closed: list[Any] = []
    close = adapter.TextSession.close

    def recording_close(self: Any) -> None:
        closed.append(self)
        close(self)

    monkeypatch.setattr(adapter.TextSession, "close", recording_close)
    scripted.reply = "[7]"
    env = load_environment("TextArena/GuessTheNumber-v0", seeds=[0, 1], max_turns=2)
    episodes = evaluate(env, scripted.url, "fixed", tmp_path / "ok")
    sessions = [episode.traces[0].state.session for episode in episodes]
    assert [session.turns for session in sessions] == [2, 2]
    assert all(any(s is session for s in closed) for session in sessions)
    # no model behind the URL: the episodes fail (recorded, not raised), sessions still closed
    with ThreadingHTTPServer(("127.0.0.1", 0), _Scripted) as dead:
        port = dead.server_address[1]
    episodes = evaluate(env, f"http://127.0.0.1:{port}/v1", "fixed", tmp_path / "down")
    assert [episode.ok for episode in episodes] == [False, False]
    assert all(episode.traces[0].errors for episode in episodes)
    sessions = [episode.traces[0].state.session for episode in episodes]
    assert [session.turns for session in sessions] == [0, 0]
    assert all(any(s is session for s in closed) for session in sessions)


# --- arguments -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"env_id": "Math-v9"}, "env_id"),
        ({"env_id": ""}, "env_id"),
        ({"seeds": []}, "seeds"),
        ({"seeds": "012"}, "seeds"),
        ({"seeds": [0, True]}, "seeds"),
        ({"seeds": [0], "num_examples": 1}, "num_examples"),
        ({"num_examples": 0}, "num_examples"),
        ({"env_kwargs": {"no_such_argument": 1}}, "env_kwargs"),
        ({"env_kwargs": {"difficulty": object()}}, "env_kwargs"),
        ({"env_kwargs": [("difficulty", 1)]}, "env_kwargs"),
        ({"max_turns": 0}, "max_turns"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs: dict[str, Any], field: str) -> None:
    call = {"env_id": "Math-v0", **kwargs}
    with pytest.raises(ValueError, match=field):
        load_environment(**call)


def test_unknown_id_suggests_a_close_one() -> None:
    with pytest.raises(ValueError, match="did you mean 'Math-v0'"):
        load_environment("Math-v1")


@given(seeds=st.lists(st.integers(min_value=-(2**40), max_value=2**40), max_size=4))
@settings(max_examples=25, deadline=None)
def test_seeds_are_checked(seeds: list[int]) -> None:
    if seeds and all(seed >= 0 for seed in seeds):
        env = load_environment("Math-v0", seeds=seeds)
        assert env.config.taskset.seeds == seeds
    else:
        with pytest.raises(ValueError, match="seeds"):
            load_environment("Math-v0", seeds=seeds)


def test_dataset_rows_rebuild_the_episodes() -> None:
    env = load_environment("Math-v0", num_examples=3, env_kwargs={"difficulty": 2})
    tasks = list(env.taskset)
    assert [task.data.seed for task in tasks] == [0, 1, 2]
    for task in tasks:
        with adapter.TextSession(task.data.ref) as session:
            assert session.prompt == task.data.prompt
            assert session.messages[0]["content"] == task.data.system_prompt


def test_verifiers_finds_the_plugin_by_id_in_a_fresh_process(tmp_path: Path) -> None:
    """What ``vf-eval`` and prime-rl configs do: name the taskset by id, nothing imported yet."""
    code = (
        "from verifiers.v1.utils.loaders import resolve_env_config, taskset_class\n"
        "raw = {'taskset': {'id': 'arenagym-verifiers', 'env_id': 'Math-v0', 'seeds': [0, 1]}}\n"
        "config = resolve_env_config(raw)\n"
        "print(type(config).__name__, taskset_class('arenagym-verifiers').__name__,"
        " config.taskset.env_id, config.taskset.seeds)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split() == ["ArenaEnvConfig", "ArenaTaskset", "Math-v0", "[0,", "1]"]
