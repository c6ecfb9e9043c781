"""Tests for arenagym.agents.rollout: batching, isolation, budgets, JSONL, determinism."""

from __future__ import annotations

import asyncio
import sys
import threading
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from arenagym_agents_testkit import ENV_ID, FakeBackend, TurnsEnv

from arenagym.agents.backends.interface import SamplingParams
from arenagym.agents.batching import BatchingQueue
from arenagym.agents.rollout import (
    EpisodeSpec,
    RolloutConfig,
    RolloutEngine,
    Trajectory,
    read_jsonl,
    rollout,
    write_jsonl,
)

GREEDY = SamplingParams(max_tokens=16, temperature=0.0)


def specs(n: int, **kwargs) -> list[EpisodeSpec]:
    return [EpisodeSpec(ENV_ID, kwargs, seed=seed) for seed in range(n)]


def without_timing(trajectory: Trajectory) -> dict:
    data = trajectory.to_dict()
    data.pop("duration_s")
    return data


def test_plays_episodes_and_batches_waiting_requests() -> None:
    backend = FakeBackend()
    engine = RolloutEngine(backend, RolloutConfig(GREEDY))
    trajectories = engine.run(specs(6, turns=3))
    assert [t.stop_reason for t in trajectories] == ["solved"] * 6
    assert [t.seed for t in trajectories] == list(range(6))  # input order
    first = trajectories[0]
    assert first.reward == 3.0 and first.final_reward == 1.0 and len(first.steps) == 3
    assert first.steps[1].observation == "seed=0 turn=1"
    assert first.steps[0].reward_components == {"right": 1.0}
    assert first.steps[0].completion_token_ids[:5] == [ord(c) for c in "right"]
    assert first.task_id == "turns-0" and first.system_prompt == "Say right."
    assert first.final_observation == "seed=0 turn=3"
    assert [m["role"] for m in first.messages] == ["system"] + ["user", "assistant"] * 3
    assert max(backend.batches) > 1 and sum(backend.batches) == 18
    assert engine.batch_sizes == backend.batches


def test_all_waiting_episodes_go_in_one_batch() -> None:
    """With the env instant, every turn's six requests are one backend call."""
    backend = FakeBackend()
    rollout(backend, specs(6, turns=2), RolloutConfig(GREEDY, max_wait_s=5.0))
    assert backend.batches == [6, 6]


def test_max_batch_size_and_params_groups() -> None:
    backend = FakeBackend()

    async def main() -> None:
        queue = BatchingQueue(backend, max_batch_size=3, max_wait_s=0.05)
        other = SamplingParams(max_tokens=4, temperature=0.0)
        requests = [
            queue.generate([{"role": "user", "content": str(i)}], GREEDY if i % 2 else other)
            for i in range(6)
        ]
        completions = await asyncio.gather(*requests)
        assert [c.text for c in completions] == ["righ", "right", "righ", "right", "righ", "right"]
        await queue.aclose()

    asyncio.run(main())
    assert max(backend.batches) <= 3 and sum(backend.batches) == 6
    assert {p.max_tokens for p in backend.params} == {4, 16}


def test_mixed_env_ids() -> None:
    episodes = [
        EpisodeSpec("Math-v0", {"difficulty": 1}, seed=0),
        EpisodeSpec(ENV_ID, {"turns": 2}, seed=1),
    ]
    math, turns = rollout(
        FakeBackend(reply=lambda c: "\\boxed{0}"), episodes, RolloutConfig(GREEDY)
    )
    assert math.env_id == "Math-v0" and math.stop_reason in ("solved", "failed")
    assert "correct" in math.steps[0].reward_components
    assert turns.stop_reason == "failed" and len(turns.steps) == 2


def test_env_and_backend_errors_end_only_their_episode() -> None:
    backend = FakeBackend(fail_on="seed=2 turn=1")
    episodes = [
        *specs(4, turns=2, crash_on_step=[1]),
        EpisodeSpec("ArenagymAgentsTest/NoSuchEnv-v0", seed=0),
    ]
    trajectories = rollout(backend, episodes, RolloutConfig(GREEDY))
    reasons = [t.stop_reason for t in trajectories]
    assert reasons == ["solved", "env_error", "env_error", "solved", "env_error"]
    assert "step exploded for seed 1" in trajectories[1].error
    assert "backend failed" in trajectories[2].error and len(trajectories[2].steps) == 1
    assert "NoSuchEnv" in trajectories[4].error
    assert 1 in backend.batches  # the failed batch was retried one conversation at a time


def test_env_error_is_retried_once_on_a_fresh_env_when_configured() -> None:
    TurnsEnv.crashed.clear()
    episodes = specs(3, turns=1, crash_once=[0], crash_on_step=[2])
    plain = rollout(FakeBackend(), episodes, RolloutConfig(GREEDY))
    assert [t.stop_reason for t in plain] == ["env_error", "solved", "env_error"]
    TurnsEnv.crashed.clear()
    retried = rollout(FakeBackend(), episodes, RolloutConfig(GREEDY, retry_env_errors=True))
    assert [t.stop_reason for t in retried] == ["solved", "solved", "env_error"]
    assert [t.attempts for t in retried] == [2, 1, 2]
    assert "exploded once" in retried[0].info["first_attempt_error"]


def test_budgets() -> None:
    backend = FakeBackend(reply=lambda c: "0123456789")  # 11 tokens with the end id
    endless = specs(2, endless=True)
    by_turns = rollout(backend, endless, RolloutConfig(GREEDY, max_turns=3))
    assert [(t.stop_reason, len(t.steps)) for t in by_turns] == [("max_turns", 3)] * 2

    by_tokens = rollout(backend, endless, RolloutConfig(GREEDY, max_total_tokens=30))
    assert {(t.stop_reason, t.completion_tokens) for t in by_tokens} == {("max_tokens", 30)}

    per_turn = rollout(backend, specs(1), RolloutConfig(GREEDY, max_tokens_per_turn=4))
    assert per_turn[0].steps[0].action == "0123"
    assert per_turn[0].steps[0].finish_reason == "length"

    by_context = rollout(backend, endless, RolloutConfig(GREEDY, max_context=120))
    assert {t.stop_reason for t in by_context} == {"context_overflow"}
    assert by_context[0].info["max_context"] == 120 and len(by_context[0].steps) == 2


def test_slow_env_steps_do_not_block_other_episodes() -> None:
    """Episode 0's step waits until episode 1 has stepped: it deadlocks if steps run serially."""
    other_stepped = threading.Event()
    blocked = []

    def hook(seed: int) -> None:
        if seed == 0:
            blocked.append(not other_stepped.wait(timeout=30))
        else:
            other_stepped.set()

    trajectories = rollout(FakeBackend(), specs(2, step_hook=hook), RolloutConfig(GREEDY))
    assert blocked == [False] and [t.stop_reason for t in trajectories] == ["solved"] * 2


def test_jsonl_round_trip(tmp_path: Path) -> None:
    trajectories = rollout(
        FakeBackend(), specs(3, turns=2, crash_on_step=[2]), RolloutConfig(GREEDY)
    )
    path = tmp_path / "rollouts.jsonl"
    write_jsonl(trajectories, path)
    assert len(path.read_text().splitlines()) == 3
    assert read_jsonl(path) == trajectories


def test_greedy_and_seeded_rollouts_are_deterministic() -> None:
    for sampling in (GREEDY, SamplingParams(max_tokens=16, temperature=1.0, seed=3)):
        config = RolloutConfig(sampling)
        one = rollout(FakeBackend(), specs(5, turns=2), config)
        two = rollout(FakeBackend(), specs(5, turns=2), config)
        assert [without_timing(t) for t in one] == [without_timing(t) for t in two]
    unseeded = rollout(FakeBackend(), specs(1), RolloutConfig(SamplingParams(seed=4)))
    assert unseeded[0].steps[0].action != "right"  # sampling did happen


def test_rejects_bad_config() -> None:
    with pytest.raises(ValueError, match="concurrency"):
        RolloutConfig(concurrency=0)
    with pytest.raises(ValueError, match="max_turns"):
        RolloutConfig(max_turns=0)
    with pytest.raises(ValueError, match="max_batch_size"):
        BatchingQueue(FakeBackend(), max_batch_size=0)


class PerRowBackend(FakeBackend):
    """A FakeBackend that also takes one SamplingParams per row, like the transformers backend."""

    def __init__(self) -> None:
        super().__init__()
        self.each_calls: list[int] = []

    def generate_each(self, conversations, params):
        self.each_calls.append(len(conversations))
        return [self.generate([c], p)[0] for c, p in zip(conversations, params, strict=True)]


def test_seeded_episodes_get_their_own_streams_and_still_batch() -> None:
    sampling = SamplingParams(max_tokens=16, temperature=1.0, seed=11)
    same_seed = [EpisodeSpec(ENV_ID, {"turns": 2}, seed=0) for _ in range(4)]
    backend = PerRowBackend()
    trajectories = rollout(backend, same_seed, RolloutConfig(sampling, max_wait_s=5.0))
    assert backend.each_calls == [4, 4]  # different seeds per row, still one call per turn
    assert len({t.steps[0].action for t in trajectories}) > 1  # a GRPO group is not 4 clones
    again = rollout(PerRowBackend(), same_seed, RolloutConfig(sampling, max_wait_s=5.0))
    assert [without_timing(t) for t in again] == [without_timing(t) for t in trajectories]
    seeds = {p.seed for p in backend.params}
    assert len(seeds) == 8  # 4 episodes x 2 turns


def test_counted_episodes_arriving_over_a_few_ms_share_one_batch() -> None:
    """Four episodes are live; three ask at 0, 5 and 12 ms (the fourth is slow to reset and
    finishes without asking): the three go as one batch, not as a batch of one followed by
    another, and the batch leaves soon after the fourth episode finishes."""
    backend = FakeBackend()

    async def main() -> float:
        queue = BatchingQueue(backend, max_wait_s=0.03)
        loop = asyncio.get_running_loop()
        for _ in range(4):
            queue.episode_started()

        async def ask(delay: float) -> None:
            await asyncio.sleep(delay)
            await queue.generate([{"role": "user", "content": "hi"}], GREEDY)

        async def silent() -> None:
            await asyncio.sleep(0.2)
            queue.episode_finished()

        started = loop.time()
        await asyncio.gather(ask(0.0), ask(0.005), ask(0.012), silent())
        elapsed = loop.time() - started
        await queue.aclose()
        return elapsed

    elapsed = asyncio.run(main())
    assert backend.batches == [3]
    assert elapsed < 0.5
