"""End to end on the tiny model: Math-v0 through transformers, `arenagym serve` and the CLI.

Uses the session fixtures of ``conftest.py`` (``tiny_model_dir``, ``tiny_backend``,
``tiny_server_url``, ``tiny_server_model_name``); skips cleanly without the hf/serve extras.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gymnasium as gym
import pytest

import arenagym.envs  # noqa: F401  (registers Math-v0)
from arenagym.agents.backends.interface import Completion, SamplingParams
from arenagym.agents.chat import AgentTurn, ChatAgent, prefix_consistency
from arenagym.agents.rollout import (
    EpisodeSpec,
    RolloutConfig,
    RolloutEngine,
    Trajectory,
    read_jsonl,
    write_jsonl,
)
from arenagym.agents.specs import clear_backend_cache
from arenagym.benchmarks.store import ResultsStore
from arenagym.cli import main

GREEDY = SamplingParams(max_tokens=12, temperature=0.0)
#: Three turns per episode: the random model never boxes an answer, and two misses are allowed.
MULTI_TURN = {"difficulty": 1, "max_turns": 3, "max_invalid_actions": 2}
MATH_ENDINGS = {"solved", "failed", "no_answer", "max_turns"}


def math_episodes(n: int, kwargs: dict[str, Any] | None = None) -> list[EpisodeSpec]:
    return [EpisodeSpec("Math-v0", kwargs or MULTI_TURN, seed=seed) for seed in range(n)]


def agent_turns(trajectory: Trajectory) -> list[AgentTurn]:
    return [
        AgentTurn(s.observation, s.action, s.prompt_token_ids, s.completion_token_ids, s.logprobs)
        for s in trajectory.steps
    ]


def strip(trajectory: Trajectory, logprobs: bool = True) -> dict[str, Any]:
    data = trajectory.to_dict()
    data.pop("duration_s")
    if not logprobs:
        for step in data["steps"]:
            step.pop("logprobs")
    return data


# --------------------------------------------------------------------------- transformers


@pytest.fixture(scope="module")
def tiny_rollouts(tiny_backend: Any) -> tuple[list[Trajectory], list[int]]:
    engine = RolloutEngine(tiny_backend, RolloutConfig(GREEDY, max_wait_s=1.0))
    return engine.run(math_episodes(4)), engine.batch_sizes


def test_transformers_rollouts_play_math_with_tokens(tiny_rollouts, tmp_path: Path) -> None:
    trajectories, batch_sizes = tiny_rollouts
    assert {t.stop_reason for t in trajectories} <= MATH_ENDINGS
    assert max(batch_sizes) == 4  # all four episodes' turns went to the model together
    for trajectory in trajectories:
        assert trajectory.steps and trajectory.task_id
        for step in trajectory.steps:
            assert 0 < len(step.completion_token_ids) == len(step.logprobs) <= GREEDY.max_tokens
            assert all(lp <= 0 for lp in step.logprobs) and step.prompt_token_ids
    write_jsonl(trajectories, tmp_path / "tiny.jsonl")
    assert read_jsonl(tmp_path / "tiny.jsonl") == trajectories


def test_greedy_rollouts_are_deterministic_batched_or_not(tiny_backend, tiny_rollouts) -> None:
    trajectories, _ = tiny_rollouts
    one_by_one = RolloutEngine(tiny_backend, RolloutConfig(GREEDY, max_batch_size=1))
    again = one_by_one.run(math_episodes(4))
    assert set(one_by_one.batch_sizes) == {1}
    # the same tokens; log-probabilities equal up to float32 noise from padding
    assert [strip(t, logprobs=False) for t in again] == [
        strip(t, logprobs=False) for t in trajectories
    ]
    for mine, theirs in zip(again, trajectories, strict=True):
        for a, b in zip(mine.steps, theirs.steps, strict=True):
            assert a.logprobs == pytest.approx(b.logprobs, abs=1e-4)


def test_retokenising_the_conversation_reproduces_the_recorded_ids(
    tiny_backend, tiny_rollouts
) -> None:
    """ChatML: each turn's prompt ids are the re-rendered conversation so far, and each prompt is
    a prefix of the next. The completion ids reappear in the next prompt exactly when the sampled
    tokens are the tokenizer's own encoding of their text — a random model often samples other
    tokenisations (and byte pieces of characters), which no re-tokenisation can reproduce."""
    tokenizer = tiny_backend.tokenizer
    end = tokenizer.convert_tokens_to_ids("<|im_end|>")

    def encode(text: str) -> list[int]:
        return tokenizer(text, add_special_tokens=False)["input_ids"]

    trajectories, _ = tiny_rollouts
    for trajectory in trajectories:
        messages = trajectory.messages
        for index, step in enumerate(trajectory.steps):
            upto = messages[: 2 + 2 * index]  # system, then user/assistant pairs, this user
            assert upto[-1]["role"] == "user"
            rendered = tokenizer.apply_chat_template(
                upto, tokenize=False, add_generation_prompt=True
            )
            assert step.prompt_token_ids == encode(rendered)
            if index + 1 < len(trajectory.steps):
                following = trajectory.steps[index + 1].prompt_token_ids
                assert following[: len(step.prompt_token_ids)] == step.prompt_token_ids
                sampled = step.completion_token_ids
                sampled = sampled[:-1] if sampled[-1] == end else sampled
                canonical = encode(tokenizer.decode(sampled)) == sampled
                joined = following[: len(step.prompt_token_ids) + len(sampled)]
                assert (joined == step.prompt_token_ids + sampled) == canonical


class ScriptedBackend:
    """The tiny model's real tokenizer and chat template, with scripted replies encoded
    canonically (what a trained model usually samples)."""

    def __init__(self, tokenizer: Any, replies: list[str], template: str | None = None) -> None:
        self.tokenizer, self.replies, self.template = tokenizer, list(replies), template
        self.end = tokenizer.convert_tokens_to_ids("<|im_end|>")
        self.max_context = 2048

    def prompt_ids(self, conversation, generation_prompt: bool = True) -> list[int]:
        text = self.tokenizer.apply_chat_template(
            conversation,
            tokenize=False,
            add_generation_prompt=generation_prompt,
            chat_template=self.template,
        )
        return self.tokenizer(text, add_special_tokens=False)["input_ids"]

    def count_tokens(self, conversation) -> int:
        return len(self.prompt_ids(conversation))

    def generate(self, conversations, params) -> list[Completion]:
        out = []
        for conversation in conversations:
            text = self.replies.pop(0)
            ids = self.tokenizer(text, add_special_tokens=False)["input_ids"] + [self.end]
            out.append(Completion(text, self.prompt_ids(conversation), ids, [-1.0] * len(ids)))
        return out


#: Qwen3's rule, reduced to ChatML: assistant turns before the last user message lose their
#: <think>...</think> reasoning when the conversation is rendered again.
QWEN3_LIKE = (
    "{%- set ns = namespace(last_user=0) %}"
    "{%- for m in messages %}{%- if m.role == 'user' %}{%- set ns.last_user = loop.index0 %}"
    "{%- endif %}{%- endfor %}"
    "{%- for m in messages %}{%- set content = m.content %}"
    "{%- if m.role == 'assistant' and loop.index0 < ns.last_user and '</think>' in content %}"
    "{%- set content = content.split('</think>')[-1].lstrip('\\n') %}{%- endif %}"
    "{{- '<|im_start|>' + m.role + '\\n' + content + '<|im_end|>\\n' }}{%- endfor %}"
    "{%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}"
)


@pytest.mark.parametrize(
    ("template", "consistent"), [(None, True), (QWEN3_LIKE, False)], ids=["chatml", "qwen3-like"]
)
def test_prefix_consistency_depends_on_the_template(tiny_backend, template, consistent) -> None:
    replies = ["<think>\nadd them</think>\nThe sum is 5.", "<think>\nhmm</think>\nStill 5."]
    backend = ScriptedBackend(tiny_backend.tokenizer, replies, template)
    agent = ChatAgent(backend, GREEDY)
    agent.reset("Answer briefly.")
    agent.act("What is 2 + 3?")
    agent.act("Are you sure?")
    full = backend.prompt_ids(agent.messages, generation_prompt=False)
    problems = prefix_consistency(agent.turns, full_ids=full, end_of_turn=backend.end)
    assert (problems == []) == consistent


# --------------------------------------------------------------------------- over HTTP


def test_chat_agent_on_the_openai_compatible_backend(
    tiny_server_url: str, tiny_server_model_name: str
) -> None:
    from arenagym.agents.backends.openai_compat import OpenAICompatibleBackend

    backend = OpenAICompatibleBackend(
        tiny_server_url, tiny_server_model_name, return_token_ids=True, timeout_s=120
    )
    engine = RolloutEngine(backend, RolloutConfig(GREEDY))
    trajectories = engine.run(math_episodes(3))
    assert {t.stop_reason for t in trajectories} <= MATH_ENDINGS
    for trajectory in trajectories:
        for step in trajectory.steps:
            assert 0 < len(step.completion_token_ids) == len(step.logprobs) <= GREEDY.max_tokens
            assert step.prompt_token_ids
    # the sync path of the same agent class, with the server's tokenizer counting the context
    agent = ChatAgent(backend, GREEDY, max_context=60)
    env = gym.make("Math-v0", difficulty=1)
    observation, info = env.reset(seed=0)
    agent.reset(info["system_prompt"])
    with pytest.raises(Exception, match="context") as stop:
        agent.act(observation)
    assert getattr(stop.value, "stop_reason", None) == "context_overflow"
    env.close()


class OpenAIClientAgent:
    """A third-party agent written against the official ``openai`` client."""

    def __init__(self, base_url: str, model: str) -> None:
        import openai

        self.client = openai.OpenAI(base_url=base_url, api_key="EMPTY", timeout=120)
        self.model = model
        self.messages: list[dict[str, str]] = []

    def reset(self, system_prompt: str) -> None:
        self.messages = [{"role": "system", "content": system_prompt}]

    def act(self, observation: str) -> str:
        self.messages.append({"role": "user", "content": observation})
        response = self.client.chat.completions.create(
            model=self.model, messages=self.messages, max_tokens=12, temperature=0.0
        )
        reply = response.choices[0].message.content or ""
        self.messages.append({"role": "assistant", "content": reply})
        return reply


def test_official_openai_client_agent_plays_math(
    tiny_server_url: str, tiny_server_model_name: str
) -> None:
    agent = OpenAIClientAgent(tiny_server_url, tiny_server_model_name)
    env = gym.make("Math-v0", **MULTI_TURN)
    observation, info = env.reset(seed=1)
    agent.reset(info["system_prompt"])
    done, turns = False, 0
    while not done:
        observation, _, terminated, truncated, info = env.step(agent.act(observation))
        done, turns = terminated or truncated, turns + 1
    env.close()
    assert info["stop_reason"] in MATH_ENDINGS and turns >= 1
    assert [m["role"] for m in agent.messages[:3]] == ["system", "user", "assistant"]


# --------------------------------------------------------------------------- the CLI


def run_cli(tmp_path: Path, agent: str) -> list[Any]:
    store = tmp_path / "runs.sqlite"
    args = ["run", "--suite", "smoke", "--agent", agent, "--store", str(store), "--no-progress"]
    assert main(args) == 0
    with ResultsStore(store) as opened:
        return opened.rows(suite="smoke")


def test_cli_runs_an_hf_agent(tiny_model_dir: Path, tmp_path: Path) -> None:
    clear_backend_cache()
    try:
        rows = run_cli(tmp_path, f"hf:{tiny_model_dir},device=cpu,temperature=0,max_tokens=12")
    finally:
        clear_backend_cache()
    assert len(rows) == 4 and {row.stop_reason for row in rows} <= MATH_ENDINGS
    assert all(row.turns >= 1 for row in rows)


def test_cli_runs_an_openai_agent(
    tiny_server_url: str, tiny_server_model_name: str, tmp_path: Path
) -> None:
    clear_backend_cache()
    try:
        spec = (
            f"openai:{tiny_server_url},model={tiny_server_model_name},temperature=0,max_tokens=12"
        )
        rows = run_cli(tmp_path, spec)
    finally:
        clear_backend_cache()
    assert len(rows) == 4 and {row.stop_reason for row in rows} <= MATH_ENDINGS
