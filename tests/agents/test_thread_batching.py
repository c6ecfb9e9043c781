"""Blocking callers on one backend share batches, keep their own answers, and fail alone."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from arenagym.agents.backends.interface import Completion, Conversation, SamplingParams
from arenagym.agents.chat import ChatAgent
from arenagym.agents.thread_batching import ThreadBatcher, thread_batcher


class SlowEcho:
    """Answers each conversation's last message reversed, slowly; 'boom' fails its batch."""

    max_context = 10_000

    def __init__(self) -> None:
        self.batches: list[int] = []

    def count_tokens(self, conversation: Conversation) -> int:
        return sum(len(m["content"]) for m in conversation)

    def generate(
        self, conversations: Sequence[Conversation], params: SamplingParams
    ) -> list[Completion]:
        self.batches.append(len(conversations))
        time.sleep(0.05)
        if any(c[-1]["content"] == "boom" for c in conversations):
            raise RuntimeError("boom in the batch")
        return [Completion(c[-1]["content"][::-1]) for c in conversations]


def _in_threads(functions: list, start: threading.Barrier | None = None) -> list:
    results: list = [None] * len(functions)

    def run(i: int) -> None:
        try:
            results[i] = functions[i]()
        except Exception as error:
            results[i] = error

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(functions))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return results


def test_concurrent_actors_share_batches_and_get_their_own_replies() -> None:
    backend = SlowEcho()
    agents = [ChatAgent(backend, SamplingParams(max_tokens=4)) for _ in range(8)]
    for agent in agents:
        agent.reset("Reverse it.")
    replies = _in_threads([lambda a=a, i=i: a.act(f"word{i}") for i, a in enumerate(agents)])
    assert replies == [f"word{i}"[::-1] for i in range(8)]
    assert sum(backend.batches) == 8
    assert max(backend.batches) > 1  # at least one batch held several games' requests
    assert len(backend.batches) < 8


def test_a_lone_caller_is_never_held_back() -> None:
    backend = SlowEcho()
    batcher = ThreadBatcher(backend)
    started = time.perf_counter()
    for i in range(3):
        assert (
            batcher.generate([{"role": "user", "content": f"a{i}"}], SamplingParams()).text
            == f"{i}a"
        )
    assert backend.batches == [1, 1, 1]
    assert time.perf_counter() - started < 0.05 * 3 + 0.5


def test_a_failing_request_fails_alone() -> None:
    backend = SlowEcho()
    batcher = ThreadBatcher(backend)
    contents = ["ok1", "boom", "ok2", "ok3"]
    results = _in_threads(
        [
            lambda c=c: batcher.generate([{"role": "user", "content": c}], SamplingParams())
            for c in contents
        ]
    )
    for content, result in zip(contents, results, strict=True):
        if content == "boom":
            assert isinstance(result, RuntimeError)
        else:
            assert isinstance(result, Completion) and result.text == content[::-1]


def test_an_unhashable_backend_still_works() -> None:
    class Unhashable(SlowEcho):
        __hash__ = None  # type: ignore[assignment]

    batcher = thread_batcher(Unhashable())
    assert batcher.generate([{"role": "user", "content": "ab"}], SamplingParams()).text == "ba"


def test_seeded_sampling_is_the_same_alone_and_in_a_batch(tiny_model_dir: Path) -> None:
    from arenagym.agents.backends.hf import TransformersBackend

    backend = TransformersBackend(tiny_model_dir)
    params = SamplingParams(max_tokens=6, temperature=1.0, seed=11)

    def play(observation: str) -> list[int]:
        agent = ChatAgent(backend, params)
        agent.reset("Say something.")
        agent.act(observation)
        return agent.turns[0].completion_token_ids

    alone = play("hello there")
    batched = _in_threads([lambda o=o: play(o) for o in ["hello there", "other", "x y z", "q"]])
    assert batched[0] == alone
    assert max(thread_batcher(backend).batch_sizes) >= 1


def test_max_batch_size_is_checked() -> None:
    with pytest.raises(ValueError, match="max_batch_size must be >= 1"):
        ThreadBatcher(SlowEcho(), max_batch_size=0)


def _turn_based_games(batcher: ThreadBatcher, games: int, turns: int, think_s: float) -> None:
    """``games`` threads, each counted as an episode, asking ``turns`` times with a pause (the
    opponent's move) between asks; the first thread starts a little ahead of the others."""

    def play(game: int) -> None:
        batcher.episode_started()
        try:
            if game:
                time.sleep(0.01)
            for turn in range(turns):
                batcher.generate([{"role": "user", "content": f"g{game}t{turn}"}], SamplingParams())
                time.sleep(think_s)
        finally:
            batcher.episode_finished()

    _in_threads([lambda g=g: play(g) for g in range(games)])


def test_counted_episodes_wait_for_each_other_instead_of_alternating() -> None:
    counted = SlowEcho()
    _turn_based_games(ThreadBatcher(counted, max_wait_s=0.2), games=6, turns=4, think_s=0.005)
    assert counted.batches == [6, 6, 6, 6]  # one round of generation per turn

    # without the count the first caller goes alone and the others follow: twice the rounds
    uncounted = SlowEcho()
    batcher = ThreadBatcher(uncounted, max_wait_s=0.2)
    batcher.episode_started = batcher.episode_finished = lambda: None  # type: ignore[method-assign]
    _turn_based_games(batcher, games=6, turns=4, think_s=0.005)
    assert len(uncounted.batches) > 4 and 1 in uncounted.batches


def test_a_slow_episode_holds_a_batch_back_at_most_max_wait_s() -> None:
    backend = SlowEcho()
    batcher = ThreadBatcher(backend, max_wait_s=0.1)
    batcher.episode_started()  # an episode that never asks (e.g. its opponent is thinking)
    batcher.episode_started()
    started = time.perf_counter()
    batcher.generate([{"role": "user", "content": "ab"}], SamplingParams())
    waited = time.perf_counter() - started
    assert 0.1 <= waited < 0.1 + 0.05 + 0.3
    batcher.episode_finished()  # the silent one ends: the next ask goes at once
    started = time.perf_counter()
    batcher.generate([{"role": "user", "content": "cd"}], SamplingParams())
    assert time.perf_counter() - started < 0.05 + 0.08
    assert backend.batches == [1, 1]


def test_max_wait_s_is_checked() -> None:
    with pytest.raises(ValueError, match="max_wait_s must be >= 0"):
        ThreadBatcher(SlowEcho(), max_wait_s=-1)
