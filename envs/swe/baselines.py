"""Scripted SWE-v0 agents: the references a model's resolve rate is read against.

- :class:`GoldPatchAgent` applies the task's own fix (the gold ``patch`` of the task file) with
  one ``execute_bash`` call and finishes: it resolves every task whose gold patch is correct, so
  its resolve rate checks a task set end to end (sandbox, runtime, grader) and its episodes are
  runtime-validated trajectories of the tool-call format. It reads the task file, which the
  agent under test never sees: a reference, not a competitor.
- :class:`GiveUpAgent` finishes at once: the floor (a task it "resolves" would be broken).

Example (``# doctest: +SKIP``: plays a sandboxed episode):
    >>> import gymnasium as gym
    >>> from arenagym.agents.episode import play_episode  # doctest: +SKIP
    >>> result = play_episode(lambda: gym.make("SWE-v0"), GoldPatchAgent, seed=0)  # doctest: +SKIP
    >>> result.reward  # doctest: +SKIP
    1.0
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from arenagym.envs.swe.env import BUNDLED_TASKS
from arenagym.envs.swe.realset import resolve_task_set
from arenagym.envs.swe.tasks import SWETask, load_tasks

__all__ = ["GiveUpAgent", "GoldPatchAgent", "apply_patch_call"]

FINISH = json.dumps({"name": "finish", "arguments": {"message": "done"}})


def apply_patch_call(patch: str) -> str:
    """An ``execute_bash`` call (function-call JSON) that applies ``patch`` in the workspace
    with ``git apply``, the patch passed through a quoted here-document.

    >>> call = json.loads(apply_patch_call("--- a/x\\n+++ b/x\\n"))
    >>> call["name"], call["arguments"]["command"].splitlines()[0]
    ('execute_bash', "git apply --whitespace=nowarn <<'ARENAGYM_PATCH_END'")
    """
    delimiter = "ARENAGYM_PATCH_END"
    while delimiter in patch:
        delimiter += "_"
    body = patch if patch.endswith("\n") else patch + "\n"
    command = f"git apply --whitespace=nowarn <<'{delimiter}'\n{body}{delimiter}"
    return json.dumps({"name": "execute_bash", "arguments": {"command": command}})


class GoldPatchAgent:
    """Applies the gold patch of the task it recognises, then finishes (see the module docs).

    Args:
        tasks: the task file the env plays, or a set's name as SWE-v0 takes it (``"real"``,
            ``"real-test"``...; default: SWE-v0's bundled tasks). The task is the one whose
            problem statement the first observation holds (the longest match wins).
    """

    def __init__(self, tasks: str | os.PathLike[str] | None = None) -> None:
        named = resolve_task_set(tasks) if isinstance(tasks, str) else None
        self.tasks: list[SWETask] = load_tasks(named or (Path(tasks) if tasks else BUNDLED_TASKS))
        self._by_length = sorted(self.tasks, key=lambda t: len(t.problem_statement), reverse=True)
        self._applied = False

    def reset(self, system_prompt: str) -> None:
        """A new episode: the patch is not applied yet."""
        self._applied = False

    def act(self, observation: str) -> str:
        """First turn: the patch (or ``finish`` for a task it does not know); then ``finish``."""
        if self._applied:
            return FINISH
        self._applied = True
        for task in self._by_length:
            if task.problem_statement.strip() and task.problem_statement.strip() in observation:
                return apply_patch_call(task.patch)
        return FINISH


class GiveUpAgent:
    """Finishes without touching the repository."""

    def reset(self, system_prompt: str) -> None:
        """Nothing to remember."""

    def act(self, observation: str) -> str:
        """Always ``finish``."""
        return FINISH
