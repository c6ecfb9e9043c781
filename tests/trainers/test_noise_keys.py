"""The trainer's reward-noise keys: ``plan_step`` gives every trajectory of a step its own noise key
and every group a shared one, and Math-v0's flips then follow "Noisy Rewards in Learning to Reason"
(Lv et al., 2025): independent per trajectory (``flip_scope="sample"``) or per group
(``"group"``), drawn anew at every step, replayed by a run with the same seed.

Episodes are played by the rollout engine with a scripted agent that never answers, so the clean
reward is 0 and the reward is exactly the flip coin; no model is needed.
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from arenagym.agents.rollout import EpisodeSpec, RolloutConfig, RolloutEngine
from arenagym.trainers.config import TaskConfig, TrainConfig
from arenagym.trainers.trainer import noise_options, plan_step

NO_ANSWER = "I am not sure how to finish this one."


def within_binomial(count: int, n: int, p: float, sds: float = 5.0) -> bool:
    return abs(count - n * p) <= sds * math.sqrt(n * p * (1 - p)) + 1e-9


class SilentAgent:
    """Answers nothing, whatever it is asked: the Math-v0 reward is then the flip coin alone."""

    def reset(self, system_prompt: str) -> None:
        del system_prompt

    async def aact(self, observation: str) -> str:
        del observation
        return NO_ANSWER


def make_config(
    scope: str, p: float, *, prompts: int = 10, group: int = 5, seed: int = 0
) -> TrainConfig:
    config = TrainConfig()
    config.run.seed = seed
    config.rollout.prompts_per_step, config.rollout.group_size = prompts, group
    config.tasks = [TaskConfig("Math-v0", {"difficulty": 1, "flip_prob": p, "flip_scope": scope})]
    return config


def play(episodes: list[EpisodeSpec]) -> list[bool]:
    """Whether each episode's reward was flipped (its clean reward is 0)."""
    engine = RolloutEngine(
        backend=None,  # type: ignore[arg-type]  (the scripted agent never generates)
        config=RolloutConfig(max_turns=1),
        agent_factory=lambda spec, queue, index: SilentAgent(),
    )
    trajectories = engine.run(episodes)
    assert all(t.stop_reason == "no_answer" for t in trajectories)
    assert all(t.clean_reward == 0.0 for t in trajectories)
    assert all(t.reward in (0.0, 1.0) for t in trajectories)
    return [t.reward == 1.0 for t in trajectories]


def step_groups(config: TrainConfig, step: int) -> list[list[bool]]:
    """The flips of one planned step, grouped by prompt."""
    plan = plan_step(config, step)
    flips = play(plan.episodes)
    groups: dict[int, list[bool]] = {}
    for group, flipped in zip(plan.groups, flips, strict=True):
        groups.setdefault(group, []).append(flipped)
    return list(groups.values())


def test_plan_step_gives_each_trajectory_a_key_and_each_group_one() -> None:
    config = make_config("sample", 0.3, prompts=4, group=3)
    plan = plan_step(config, 7)
    options: list[Any] = [e.options for e in plan.episodes]
    assert (
        options[0]
        == noise_options(0, 7, 0, 0)
        == {
            "noise_key": "0/7/0",
            "noise_group_key": "0/7/group0",
        }
    )
    assert len({o["noise_key"] for o in options}) == 12
    for group in range(4):
        members = [o for o, g in zip(options, plan.groups, strict=True) if g == group]
        assert {o["noise_group_key"] for o in members} == {f"0/7/group{group}"}
    assert plan_step(config, 7) == plan  # a resumed run replays the keys
    other_step = {e.options["noise_key"] for e in plan_step(config, 8).episodes}  # type: ignore[index]
    assert other_step.isdisjoint(o["noise_key"] for o in options)
    reseeded = plan_step(make_config("sample", 0.3, prompts=4, group=3, seed=1), 7)
    assert reseeded.episodes[0].options == noise_options(1, 7, 0, 0)


def test_sample_scope_flips_members_of_a_group_independently() -> None:
    p, steps, prompts, size = 0.3, 20, 10, 5
    config = make_config("sample", p, prompts=prompts, group=size)
    groups = [g for step in range(steps) for g in step_groups(config, step)]
    flips = sum(map(sum, groups))
    assert within_binomial(flips, steps * prompts * size, p), flips
    mixed = sum(0 < sum(g) < size for g in groups)  # the issue: 0 of 200 groups differed
    assert within_binomial(mixed, len(groups), 1 - p**size - (1 - p) ** size), mixed


def test_group_scope_flips_a_group_together_and_anew_each_step() -> None:
    p, steps, prompts, size = 0.3, 25, 8, 4
    config = make_config("group", p, prompts=prompts, group=size)
    per_step = [step_groups(config, step) for step in range(steps)]
    groups = [g for step in per_step for g in step]
    assert all(len(set(g)) == 1 for g in groups)
    flipped = sum(g[0] for g in groups)
    assert within_binomial(flipped, len(groups), p), flipped
    assert per_step == [step_groups(config, step) for step in range(steps)]  # reproducible


@pytest.mark.parametrize("scope", ["sample", "group"])
def test_one_prompt_is_not_flipped_forever(scope: str) -> None:
    # the same problem (one env seed) at every step: its flip is drawn anew each time
    p, steps = 0.4, 60
    config = make_config(scope, p, prompts=1, group=1)
    episodes = []
    for step in range(steps):
        [spec] = plan_step(config, step).episodes
        episodes.append(EpisodeSpec(spec.env_id, spec.env_kwargs, seed=11, options=spec.options))
    flips = play(episodes)
    assert within_binomial(sum(flips), steps, p), sum(flips)
