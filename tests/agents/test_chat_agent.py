"""Tests for arenagym.agents.chat: the conversation, token records, budgets, sync and async."""

from __future__ import annotations

import asyncio
import sys
from dataclasses import replace
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from arenagym_agents_testkit import END, FakeBackend, encode, render

from arenagym.agents.agent import EpisodeStop
from arenagym.agents.backends.interface import SamplingParams
from arenagym.agents.batching import BatchingQueue
from arenagym.agents.chat import (
    ChatAgent,
    PromptTemplate,
    prefix_consistency,
    template_for_env,
)

GREEDY = SamplingParams(max_tokens=32, temperature=0.0)


def numbered(conversation):
    """Reply with how many user messages the conversation has."""
    return f"reply {sum(m['role'] == 'user' for m in conversation)}"


def test_keeps_the_conversation_and_records_every_turn() -> None:
    backend = FakeBackend(reply=numbered)
    agent = ChatAgent(backend, GREEDY)
    agent.reset("Be brief.")
    assert agent.act("first") == "reply 1"
    assert agent.act("second") == "reply 2"
    assert agent.messages == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "reply 1"},
        {"role": "user", "content": "second"},
        {"role": "assistant", "content": "reply 2"},
    ]
    first, second = agent.turns
    assert first.observation == "first" and second.text == "reply 2"
    assert first.prompt_token_ids == encode(render(agent.messages[:2]))
    assert first.completion_token_ids == [*encode("reply 1"), END]
    assert len(first.logprobs) == len(first.completion_token_ids)
    assert agent.completion_tokens == 16

    agent.reset("Again.")
    assert agent.messages == [{"role": "system", "content": "Again."}] and agent.turns == []


def test_records_are_prefix_consistent_with_a_verbatim_template() -> None:
    agent = ChatAgent(FakeBackend(reply=numbered), GREEDY)
    agent.reset("S")
    for observation in ("a", "b", "c"):
        agent.act(observation)
    full = encode(render(agent.messages, generation_prompt=False))
    assert prefix_consistency(agent.turns, full_ids=full, end_of_turn=END) == []


def test_prefix_consistency_reports_a_template_that_rewrites_history() -> None:
    """A template that strips earlier replies (like Qwen3's <think> removal) breaks the join."""

    def stripping(conversation):
        kept = [
            {**m, "content": m["content"].split("</think>")[-1]} if m["role"] == "assistant" else m
            for m in conversation
        ]
        return encode(render(kept))

    backend = FakeBackend(reply=lambda c: "<think>hmm</think>42")
    agent = ChatAgent(backend, GREEDY)
    agent.reset("S")
    turns = []
    for observation in ("a", "b"):
        conversation = [*agent.messages, {"role": "user", "content": observation}]
        agent.act(observation)
        # the prompt a rewriting template would have sent for this turn
        turns.append(replace(agent.turns[-1], prompt_token_ids=stripping(conversation)))
    assert prefix_consistency(agent.turns, end_of_turn=END) == []
    problems = prefix_consistency(turns, end_of_turn=END)
    assert len(problems) == 1 and problems[0].startswith("turn 0: prompt + completion")


def test_context_overflow_ends_the_episode_and_leaves_the_conversation_clean() -> None:
    backend = FakeBackend(max_context=60)
    agent = ChatAgent(backend, SamplingParams(max_tokens=8, temperature=0.0))
    assert agent.max_context == 60
    agent.reset("S")
    agent.act("short")  # prompt 31 tokens + 8 fit in 60
    before = list(agent.messages)
    with pytest.raises(EpisodeStop) as stop:
        agent.act("a longer observation")
    assert stop.value.stop_reason == "context_overflow"
    assert stop.value.info["max_context"] == 60 and stop.value.info["max_tokens"] == 8
    assert agent.messages == before and len(agent.turns) == 1
    assert backend.batches == [1]  # the overflowing request never reached the backend


def test_max_context_argument_overrides_the_backend() -> None:
    agent = ChatAgent(FakeBackend(max_context=10_000), GREEDY, max_context=40)
    agent.reset("S")
    with pytest.raises(EpisodeStop, match="over the context of 40"):
        agent.act("hello")


def test_total_token_budget_clips_the_last_turn_then_stops() -> None:
    backend = FakeBackend(reply=lambda c: "0123456789")  # 11 tokens with the end id
    agent = ChatAgent(backend, SamplingParams(max_tokens=20, temperature=0.0), max_total_tokens=15)
    agent.reset("S")
    agent.act("a")
    assert agent.act("b") == "0123"  # only 4 of the 15 tokens were left
    assert backend.params[-1].max_tokens == 4
    assert agent.turns[-1].finish_reason == "length"
    with pytest.raises(EpisodeStop) as stop:
        agent.act("c")
    assert stop.value.stop_reason == "max_tokens"


def test_aact_matches_act_and_batches_concurrent_episodes() -> None:
    backend = FakeBackend(reply=numbered)
    sync_agent = ChatAgent(backend, GREEDY)
    sync_agent.reset("S")
    expected = [sync_agent.act("x"), sync_agent.act("y")]

    async def episode(agent: ChatAgent) -> list[str]:
        await agent.areset("S")
        return [await agent.aact("x"), await agent.aact("y")]

    async def main() -> list[list[str]]:
        agents = [ChatAgent(backend, GREEDY) for _ in range(4)]
        return await asyncio.gather(*(episode(agent) for agent in agents))

    backend.batches.clear()
    assert asyncio.run(main()) == [expected] * 4
    assert max(backend.batches) == 4  # the shared queue sent the four requests as one batch


def test_aact_context_overflow_through_the_queue() -> None:
    backend = FakeBackend(max_context=30)

    async def main() -> None:
        queue = BatchingQueue(backend)
        agent = ChatAgent(backend, SamplingParams(max_tokens=8, temperature=0.0), queue=queue)
        agent.reset("S")
        with pytest.raises(EpisodeStop) as stop:
            await agent.aact("a long observation")
        assert stop.value.stop_reason == "context_overflow"
        assert agent.messages == [{"role": "system", "content": "S"}]
        await queue.aclose()

    asyncio.run(main())
    assert backend.batches == []


def test_prompt_templates() -> None:
    template = PromptTemplate(
        system="Rules: {system_prompt}",
        user="Now: {observation}",
        first_user="Start: {observation}",
    )
    agent = ChatAgent(FakeBackend(), GREEDY, template=template)
    agent.reset("win")
    agent.act("one")
    agent.act("two")
    assert [m["content"] for m in agent.messages] == [
        "Rules: win",
        "Start: one",
        "right",
        "Now: two",
        "right",
    ]
    folded = ChatAgent(FakeBackend(), GREEDY, template=PromptTemplate(system_in_user=True))
    folded.reset("win")
    folded.act("one")
    assert folded.messages[0] == {"role": "user", "content": "win\n\none"}
    assert template_for_env("ns/Math-v0", {"Math": template}) is template
    assert template_for_env("Math-v0", {"Math-v0": folded.template}) is folded.template


def test_rejects_bad_budgets() -> None:
    with pytest.raises(ValueError, match="max_context"):
        ChatAgent(FakeBackend(), max_context=0)
    with pytest.raises(ValueError, match="max_total_tokens"):
        ChatAgent(FakeBackend(), max_total_tokens=0)


def test_a_backend_context_error_ends_the_episode_as_context_overflow() -> None:
    from arenagym.agents.agent import EpisodeStop
    from arenagym.agents.backends.interface import ContextLengthError

    class Refuses:
        max_context = 10_000

        def count_tokens(self, conversation: list[dict[str, str]]) -> int:
            return 5

        def generate(self, conversations: list[list[dict[str, str]]], params: object) -> list:
            raise ContextLengthError(9_000, 8_192, row=0)

    agent = ChatAgent(Refuses(), SamplingParams(max_tokens=4))
    agent.reset("Play.")
    before = list(agent.messages)
    with pytest.raises(EpisodeStop) as stop:
        agent.act("a long observation")
    assert stop.value.stop_reason == "context_overflow"
    assert stop.value.info == {"prompt_tokens": 9_000, "max_context": 8_192}
    assert agent.messages == before  # the unanswered observation is not kept
