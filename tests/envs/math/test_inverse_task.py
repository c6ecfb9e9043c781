"""Math-v0's inverse task (solution -> problem), as dual self-rewards use it: declared through
``envs.core.dual``, targeted at the episode's exact problem text, replayable from the seed."""

from __future__ import annotations

import gymnasium as gym
import pytest

import arenagym.envs  # noqa: F401  (registers Math-v0)
from arenagym.envs.core.dual import HasInverseTask, InverseTask
from arenagym.envs.math.env import INVERSE_QUESTION, INVERSE_SYSTEM_PROMPT, MathEnv


def test_math_env_declares_its_inverse_task() -> None:
    env = gym.make("Math-v0", difficulty=2)
    assert isinstance(env.unwrapped, HasInverseTask)
    assert env.unwrapped.inverse_task() is None  # before the first reset: no episode yet
    problem, _ = env.reset(seed=11)
    task = env.unwrapped.inverse_task()
    assert isinstance(task, InverseTask)
    assert task.target == problem
    assert (task.system_prompt, task.question) == (INVERSE_SYSTEM_PROMPT, INVERSE_QUESTION)


def test_the_inverse_prompt_holds_the_solution_and_asks_for_the_problem() -> None:
    env = MathEnv(difficulty=1)
    env.reset(seed=0)
    solution = r"3 + 4 = 7 {not a placeholder}. The answer is \boxed{7}."
    system, user = env.inverse_task().messages(solution)  # type: ignore[union-attr]
    assert system == {"role": "system", "content": INVERSE_SYSTEM_PROMPT}
    assert user["role"] == "user"
    assert solution in user["content"] and "{output}" not in user["content"]
    assert "Which problem does this solution solve?" in user["content"]


@pytest.mark.parametrize("source", ["procedural", "bundled"])
def test_each_episode_has_its_own_target_and_a_seed_replays_it(source: str) -> None:
    env = MathEnv(source=source)
    targets = []
    for seed in range(6):
        problem, _ = env.reset(seed=seed)
        targets.append(env.inverse_task().target)  # type: ignore[union-attr]
        assert targets[-1] == problem
    assert len(set(targets)) > 1
    # the trainer replays an episode's reset to find its inverse task: same seed, same target,
    # whatever noise keys the episode was played with
    env.reset(seed=4, options={"noise_key": "run/3/7", "noise_group_key": "run/3/group1"})
    assert env.inverse_task().target == targets[4]  # type: ignore[union-attr]
