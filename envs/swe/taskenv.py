"""The Python environment a task names, built when missing (cached: about no time after once).

A task's ``environment`` field names an environment spec file (usually the provenance file of
an imported repository, :mod:`arenagym.envs.swe.sdist`, which holds the spec under
``"environment"``). Whoever starts a sandbox for the task, the env or the grader, asks
:func:`task_python_env` for the built folder and hands it to ``Runtime.start(python_env=...)``;
a task without the field runs with the sandbox's system Python, as before.

Example:
    >>> from arenagym.envs.swe.tasks import SWETask
    >>> task = SWETask("demo-1", "demo/lib", "abc", "", "", "Fix it.")
    >>> task_python_env(task) is None
    True
    >>> task_python_env(SWETask("demo-2", "demo/lib", "abc", "", "", "Fix it.",
    ...                         environment="/nonexistent/env.json"))
    Traceback (most recent call last):
    ...
    arenagym.envs.swe.taskenv.TaskEnvError: task demo-2: environment spec /nonexistent/env.json does not exist
"""

from __future__ import annotations

from pathlib import Path

from arenagym.envs.swe.runtime.pyenv import (
    EnvBuildError,
    EnvSpec,
    EnvSpecError,
    build_env,
    load_env_spec,
)
from arenagym.envs.swe.tasks import SWETask


class TaskEnvError(RuntimeError):
    """A task's environment that cannot be read or built; names the task and the cause."""


def task_env_spec(task: SWETask) -> EnvSpec | None:
    """The spec ``task.environment`` names (None when the task names none)."""
    if not task.environment:
        return None
    try:
        return load_env_spec(task.environment)
    except (EnvSpecError, FileNotFoundError) as error:
        raise TaskEnvError(f"task {task.instance_id}: {error}") from None


def task_python_env(task: SWETask, cache_dir: Path | None = None) -> Path | None:
    """The built environment of ``task`` (built now if missing), or None when it names none."""
    spec = task_env_spec(task)
    if spec is None:
        return None
    try:
        return build_env(spec, cache_dir).path
    except EnvBuildError as error:
        raise TaskEnvError(
            f"task {task.instance_id}: its environment ({task.environment}) cannot be built: "
            f"{error}"
        ) from None
