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
from arenagym.envs.swe.realset import SHIPPED_TASKS, resolve_task_set
from arenagym.envs.swe.tasks import SWETask, load_tasks

__all__ = ["GiveUpAgent", "GoldPatchAgent", "apply_patch_call"]

FINISH = json.dumps({"name": "finish", "arguments": {"message": "done"}})


def _delimiter(patches: list[str]) -> str:
    delimiter = "ARENAGYM_PATCH_END"
    while any(delimiter in patch for patch in patches):
        delimiter += "_"
    return delimiter


def _body(patch: str, delimiter: str) -> str:
    body = patch if patch.endswith("\n") else patch + "\n"
    return f"{body}{delimiter}\n"


def apply_patch_call(patch: str, *alternatives: str) -> str:
    """An ``execute_bash`` call (function-call JSON) that applies ``patch`` in the workspace
    with ``git apply``, the patch passed through a quoted here-document. With
    ``alternatives`` the first of ``patch, *alternatives`` that applies cleanly is applied
    (two tasks can share one problem statement: the same symptom from two different bugs).

    >>> call = json.loads(apply_patch_call("--- a/x\\n+++ b/x\\n"))
    >>> call["name"], call["arguments"]["command"].splitlines()[0]
    ('execute_bash', "git apply --whitespace=nowarn <<'ARENAGYM_PATCH_END'")
    >>> json.loads(apply_patch_call("p", "q"))["arguments"]["command"].splitlines()[0]
    "{ git apply --check <<'ARENAGYM_PATCH_END' && git apply --whitespace=nowarn <<'ARENAGYM_PATCH_END'; } || { git apply --check <<'ARENAGYM_PATCH_END' && git apply --whitespace=nowarn <<'ARENAGYM_PATCH_END'; }"
    """
    patches = [patch, *alternatives]
    delimiter = _delimiter(patches)
    if not alternatives:
        command = f"git apply --whitespace=nowarn <<'{delimiter}'\n{_body(patch, delimiter)}"
    else:
        tries = [
            f"{{ git apply --check <<'{delimiter}' && "
            f"git apply --whitespace=nowarn <<'{delimiter}'; }}"
            for _ in patches
        ]
        bodies = "".join(_body(p, delimiter) * 2 for p in patches)
        command = " || ".join(tries) + "\n" + bodies
    return json.dumps({"name": "execute_bash", "arguments": {"command": command.rstrip("\n")}})


class GoldPatchAgent:
    """Applies the gold patch of the task it recognises, then finishes (see the module docs).

    Args:
        tasks: the task file the env plays, or a set's name as SWE-v0 takes it (``"real"``,
            ``"real-test"``...; default: SWE-v0's bundled tasks). The task is the one whose
            problem statement the first observation holds (the longest match wins).
    """

    def __init__(self, tasks: str | os.PathLike[str] | None = None) -> None:
        named = resolve_task_set(tasks) if isinstance(tasks, str) else None
        path = SHIPPED_TASKS if named else Path(tasks) if tasks else BUNDLED_TASKS
        self.tasks: list[SWETask] = load_tasks(path)  # a split's tasks are in the whole set
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
            statement = task.problem_statement.strip()
            if statement and statement in observation:
                same = [t.patch for t in self.tasks if t.problem_statement.strip() == statement]
                return apply_patch_call(*same)
        return FINISH


class GiveUpAgent:
    """Finishes without touching the repository."""

    def reset(self, system_prompt: str) -> None:
        """Nothing to remember."""

    def act(self, observation: str) -> str:
        """Always ``finish``."""
        return FINISH
