"""SWE-v0: fix a real repository in a sandbox with OpenHands' tools; its own tests grade the fix.

The task format is SWE-bench's (see :mod:`~arenagym.envs.swe.tasks`), the tools are OpenHands'
(:mod:`~arenagym.envs.swe.tools`), the reward is SWE-bench's "resolved" (every FAIL_TO_PASS and
PASS_TO_PASS test passes), computed in a fresh sandbox from the workspace's diff with the tests
restored (:mod:`~arenagym.envs.swe.grading`), as in Skywork-SWE's OpenHands-based pipeline.

Whatever the agent sends or does is its own outcome, never an infrastructure fault: a call no
shell or file system can take is an invalid action, and a workspace that cannot become a diff
(over :data:`~arenagym.envs.swe.workspace.MAX_DIFF_BYTES`, files the agent changed and made
unreadable) is a failed grade with the reason; a file of the task's repository that the sandbox
cannot read is no obstacle while the agent leaves it alone. ``stop_reason="env_error"`` is left for a sandbox that itself failed, so a
runner that replays ``env_error`` episodes never replays an agent's own failure.
"""

from __future__ import annotations

import copy
import functools
import os
import re
import shutil
import tempfile
import time
import weakref
from pathlib import Path
from typing import Any

from arenagym.envs.core.text_env import Episode, InvalidAction, TextEnv, Turn
from arenagym.envs.swe.grading import GradeResult, failed_grade, grade
from arenagym.envs.swe.realset import SHIPPED_TASKS, real_tasks, resolve_task_set
from arenagym.envs.swe.runtime.interface import WORKSPACE, Limits, Runtime, SandboxError
from arenagym.envs.swe.taskenv import TaskEnvError, task_python_env
from arenagym.envs.swe.tasks import SWETask, load_tasks
from arenagym.envs.swe.tools import (
    FORMAT_HELP,
    TOOL_SPECS,
    ToolCallError,
    ToolRunner,
    parse_tool_call,
    tools_prompt,
)
from arenagym.envs.swe.workspace import (
    ChangeTracker,
    DiffError,
    Workspace,
    WorkspaceError,
    check_repo_path,
    check_snapshot_size,
    is_git_repository,
    materialize,
)

#: The tasks ``SWE-v0`` uses unless ``tasks=`` names a file.
BUNDLED_TASKS = Path(__file__).resolve().parent / "data" / "tasks.jsonl"

SYSTEM_PROMPT = f"""\
You are a software engineer working in a sandboxed copy of a Python repository at {WORKSPACE}
(a git repository whose history ends at the task's base commit; there is no network).
Resolve the issue you are given by editing the repository's source code. Explore the code,
reproduce the problem, make a minimal fix, and check it by running tests or scripts. Do not edit
the existing tests: the fix is graded by the repository's test suite, with the test files
restored, once you call `finish` (or when the turn limit is reached).

{tools_prompt()}"""


@functools.lru_cache(maxsize=16)
def _cached_tasks(path: str, modified_ns: int, size: int) -> tuple[SWETask, ...]:
    return tuple(load_tasks(path, require_tests=True))


def read_task_file(path: str | os.PathLike[str]) -> tuple[SWETask, ...]:
    """Load and validate a task file for an env (cached while the file is unchanged)."""
    stat = Path(path).stat()
    return _cached_tasks(str(Path(path).resolve()), stat.st_mtime_ns, stat.st_size)


def _cleanup(state: dict[str, Any]) -> None:
    """Stop the sandbox and remove the workspace cache (close(), or garbage collection)."""
    runtime = state.pop("runtime", None)
    if runtime is not None:
        runtime.stop()
    cache = state.pop("cache_dir", None)
    if cache is not None:
        shutil.rmtree(cache, ignore_errors=True)


def _check_sources(tasks: tuple[SWETask, ...], path: Path) -> None:
    """Raise ``ValueError`` for a task this env cannot materialise (no ``repo_path``, one that
    :func:`~arenagym.envs.swe.workspace.check_repo_path` refuses, a directory snapshot over the
    size cap): a mistake in the task file is reported when the env is made, not as a sandbox
    fault in the middle of an episode. (A git repository's tree is measured when it is exported:
    per commit, too slow to do here for every task.)"""
    checked: set[str] = set()
    for task in tasks:
        if task.repo_path is None:
            raise ValueError(
                f"task {task.instance_id} in {path} has no repo_path: give the folder of its git "
                "repository or directory snapshot"
            )
        if task.repo_path not in checked:
            source = check_repo_path(task.repo_path, task.instance_id)
            if not is_git_repository(source):
                check_snapshot_size(source, task.instance_id)
            checked.add(task.repo_path)


def _diff_info(diff: bytes) -> dict[str, Any]:
    """The diff for ``info``: as text (UTF-8; undecodable bytes replaced, for reading), its size
    in bytes, and the exact bytes too when they are not UTF-8 (a latin-1 file's fix)."""
    try:
        return {"diff": diff.decode("utf-8"), "diff_size": len(diff)}
    except UnicodeDecodeError:
        return {
            "diff": diff.decode("utf-8", "replace"),
            "diff_size": len(diff),
            "diff_bytes": diff,
        }


class SWEEnv(TextEnv):
    """Resolve a repository issue with bash and a file editor; graded by the repository's tests.

    ## Description
    Each episode is one SWE-bench-format task: a repository at its base commit, materialised as
    a fresh one-commit git repository (no history, no fix, no test patch) and mounted at
    ``/workspace`` in a sandbox (bubblewrap by default: no network, read-only system, only the
    workspace writable). The agent explores and edits it with OpenHands' tools and calls
    ``finish``; the workspace's diff is then graded in a fresh sandbox (see
    :mod:`~arenagym.envs.swe.grading`).

    ## Action Space
    :class:`~arenagym.envs.core.spaces.UnicodeText`: one tool call per step, as function-call
    JSON (``{"name": "execute_bash", "arguments": {"command": "ls"}}``) or OpenHands' text format
    (``<function=execute_bash><parameter=command>ls</parameter></function>``). Tools:
    ``execute_bash``, ``str_replace_editor``, ``think``, ``finish``. Text around a text-format
    call is allowed (reasoning); a reply without a valid call is an invalid action whose
    observation says what was wrong and shows the format.

    ## Observation Space
    :class:`~arenagym.envs.core.spaces.UnicodeText`: on reset the problem statement and where the
    repository is (the system prompt in ``info`` documents the tools; ``info["tools"]`` has their
    OpenAI function schemas for native function calling); on each step the tool's output
    (long outputs keep their head and tail around a marker).

    ## Rewards
    ``{"resolved": 1.0}`` at the end iff every FAIL_TO_PASS and PASS_TO_PASS test passes, else
    ``{"resolved": 0.0}``; invalid actions add ``-invalid_action_penalty``. ``info`` at the end
    holds each test's status, the diff (``info["diff"]`` as text, ``info["diff_size"]`` in bytes,
    and ``info["diff_bytes"]`` when it is not UTF-8) and timings. The diff is made on the host
    against the pristine base (nothing in the workspace's ``.git`` matters) and graded byte for
    byte; one over :data:`~arenagym.envs.swe.workspace.MAX_DIFF_BYTES` is not run: the grade
    fails with the reason in ``info["grading"]["grading_error"]``.

    ## Starting State
    The task is drawn with the reset seed (or named by ``options={"task_id": ...}``). The sandbox
    starts at the first tool call that needs it, so a reset costs no sandbox.

    ## Episode End
    ``finish`` (``stop_reason`` ``solved`` or ``failed``), the turn limit (graded, then
    ``max_turns``), too many invalid actions (``invalid_action``, not graded), or a sandbox
    failure (``env_error``). Invalid actions are replies without a valid call, and calls that can
    never work: a NUL byte in a command or path, an over-long command or file name, an editor
    write outside ``/workspace`` (only it persists), through a dangling or escaping symbolic
    link, or under a regular file.

    ## Arguments
    - ``tasks``: a SWE-bench-format JSONL file (default: the bundled tasks), or ``"real"``,
      ``"real-train"``, ``"real-test"``: the shipped real-library set
      (:mod:`~arenagym.envs.swe.realset`; the first use imports its repositories from the
      pinned releases, a few seconds per library, and a clear error says how when it cannot). Every
      task needs a ``repo_path`` that :func:`~arenagym.envs.swe.workspace.check_repo_path`
      accepts (a git repository or a folder you own; no system folder, home secret or virtual
      environment), else the constructor raises ``ValueError`` naming the task, the path and
      the rule.
    - ``runtime``: ``"bubblewrap"`` (default), ``"docker"`` or ``"local"`` (needs
      ``allow_local=True``: no isolation, trusted code only); ``runtime_options`` go to it.
    - ``limits``: per-command limits, a dict of :class:`~arenagym.envs.swe.runtime.interface.Limits`
      fields (``timeout_s``, ``memory_mb``, ``max_processes``, ``max_output_bytes``), and the
      workspace's disk budget: ``max_workspace_mb`` (2048) and ``max_workspace_inodes``
      (100,000 names) that the agent's commands may add to ``/workspace``; a command that goes
      past it is killed and the agent told to delete files. The budget is enforced by the
      bubblewrap and local runtimes, not by Docker. Grading runs under the same limits.
    - ``max_turns`` (100, as OpenHands), ``max_invalid_actions`` (10), ``invalid_action_penalty``.
    - ``grade_timeout_s``: the test run's time limit; ``max_observation_chars``: clip length.
    - ``show_hints``: add the task's ``hints_text`` to the prompt (SWE-bench's default: off).

    ## Examples
    >>> import json, pathlib, tempfile
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> (root / "lib").mkdir()
    >>> _ = (root / "lib" / "calc.py").write_text("def add(a, b):\\n    return a - b\\n")
    >>> row = {"instance_id": "calc-1", "repo": "demo/calc", "base_commit": "", "patch": "",
    ...        "test_patch": "", "problem_statement": "add() subtracts.", "repo_path": "lib",
    ...        "FAIL_TO_PASS": ["tests/test_calc.py::test_add"], "PASS_TO_PASS": []}
    >>> _ = (root / "tasks.jsonl").write_text(json.dumps(row) + "\\n")
    >>> env = SWEEnv(tasks=str(root / "tasks.jsonl"))
    >>> observation, info = env.reset(seed=0)
    >>> info["task_id"], observation.splitlines()[0]
    ('calc-1', 'add() subtracts.')
    >>> env.step('<function=think><parameter=thought>read calc.py</parameter></function>')[0]
    'Your thought has been logged.'
    >>> env.step("let me look around")[0].splitlines()[0]
    'Invalid action: the reply holds no tool call (neither <function=...>...</function> nor a JSON function call).'
    >>> env.close()
    """

    def __init__(
        self,
        tasks: str | os.PathLike[str] | None = None,
        *,
        runtime: str = "bubblewrap",
        runtime_options: dict[str, Any] | None = None,
        allow_local: bool = False,
        limits: dict[str, Any] | Limits | None = None,
        max_turns: int = 100,
        max_invalid_actions: int = 10,
        invalid_action_penalty: float = 0.0,
        grade_timeout_s: float = 300.0,
        max_observation_chars: int = 30_000,
        show_hints: bool = False,
        max_action_length: int = 262_144,
        max_observation_length: int = 131_072,
        render_mode: str | None = None,
    ) -> None:
        super().__init__(
            max_turns=max_turns,
            invalid_action_penalty=invalid_action_penalty,
            max_invalid_actions=max_invalid_actions,
            max_action_length=max_action_length,
            max_observation_length=max_observation_length,
            render_mode=render_mode,
        )
        named = resolve_task_set(tasks) if isinstance(tasks, str) else None
        path = SHIPPED_TASKS if named else Path(tasks) if tasks is not None else BUNDLED_TASKS
        if named:
            self.tasks: tuple[SWETask, ...] = real_tasks(named)
        elif not path.is_file():
            raise FileNotFoundError(
                f"task file {path} does not exist; pass tasks='path/to/tasks.jsonl' "
                "(SWE-bench JSONL format)"
            )
        else:
            self.tasks = read_task_file(path)
        self._by_id = {task.instance_id: task for task in self.tasks}
        _check_sources(self.tasks, path)
        if runtime not in ("bubblewrap", "docker", "local"):
            raise ValueError(f"runtime must be 'bubblewrap', 'docker' or 'local', got {runtime!r}")
        if runtime == "local" and not allow_local:
            raise ValueError(
                "runtime='local' runs agent-written code on this machine without isolation; "
                "pass allow_local=True only for trusted code, or use 'bubblewrap'/'docker'"
            )
        if isinstance(limits, dict):
            unknown = set(limits) - set(Limits.__dataclass_fields__)
            if unknown:
                raise ValueError(
                    f"unknown limits {sorted(unknown)}; use {sorted(Limits.__dataclass_fields__)}"
                )
            limits = Limits(**limits)
        self.limits: Limits = limits or Limits()
        self.runtime_name = runtime
        self.runtime_options = {**(runtime_options or {})}
        if runtime == "local":
            self.runtime_options["allow_local"] = True
        self.grade_timeout_s = float(grade_timeout_s)
        self.max_observation_chars = int(max_observation_chars)
        self.show_hints = show_hints
        self._state: dict[str, Any] = {}
        self._finalizer = weakref.finalize(self, _cleanup, self._state)
        self._bases: dict[str, Workspace] = {}
        self._task: SWETask | None = None
        self._tools: ToolRunner | None = None
        self._tracker: ChangeTracker | None = None
        self._sandboxes_started = 0
        self._episode_started = 0.0

    # ------------------------------------------------------------------------- episodes
    def _start_episode(self, options: dict[str, Any] | None) -> Episode:
        self._stop_sandbox()
        options = options or {}
        if "task_id" in options:
            task_id = options["task_id"]
            if task_id not in self._by_id:
                raise ValueError(
                    f"unknown task_id {task_id!r}; this task file has {len(self.tasks)} tasks"
                )
            task = self._by_id[task_id]
        else:
            task = self.tasks[int(self.np_random.integers(len(self.tasks)))]
        self._task = task
        self._episode_started = time.monotonic()
        prompt = (
            f"{task.problem_statement.strip()}\n\n"
            f"The repository ({task.repo}) is at {WORKSPACE}, a git repository at its base "
            "commit. Make the changes that resolve the issue above, then call `finish`."
        )
        if self.show_hints and task.hints_text.strip():
            prompt += f"\n\nHints:\n{task.hints_text.strip()}"
        return Episode(
            task_id=task.instance_id,
            system_prompt=SYSTEM_PROMPT,
            prompt=prompt,
            info={"repo": task.repo, "tools": copy.deepcopy(TOOL_SPECS), "workspace": WORKSPACE},
        )

    def _respond(self, action: str) -> Turn | InvalidAction:
        assert self._task is not None
        try:
            call = parse_tool_call(action)
        except ToolCallError as error:
            return InvalidAction(f"{error}.\n\n{FORMAT_HELP}", info={"tool": None})
        if call.name == "think":
            return self._after_tool(call.name, "Your thought has been logged.", {})
        try:
            if call.name == "finish":
                return self._grade_turn(call.name, "", terminated=True)
            result = self._tool_runner().run(call)
        except (SandboxError, WorkspaceError) as error:
            return self._env_error(error)
        if result.invalid:  # a call that can never work: the agent's mistake, penalised
            return InvalidAction(result.observation, info={"tool": call.name, **result.info})
        return self._after_tool(call.name, result.observation, result.info)

    def _after_tool(self, name: str, observation: str, info: dict[str, Any]) -> Turn:
        if self.is_last_turn:
            try:
                return self._grade_turn(
                    name,
                    f"{observation}\n[The turn limit is reached: the workspace was graded.]",
                    terminated=False,
                )
            except (SandboxError, WorkspaceError) as error:
                return self._env_error(error)
        return Turn(observation, {}, info={"tool": name, **info})

    def _grade_turn(self, name: str, observation: str, *, terminated: bool) -> Turn:
        task = self._task
        assert task is not None
        runtime = self._state.get("runtime")
        diff = b""
        diff_error: str | None = None
        if runtime is not None and self._tracker is not None:
            try:
                diff = self._tracker.diff(runtime)
            except DiffError as error:  # what the agent left in the workspace: a failed grade
                diff_error = f"no diff could be made of the workspace: {error}"
        self._stop_sandbox()
        result: GradeResult
        if diff_error is not None:
            result = failed_grade(task, diff_error)
        else:
            result = grade(
                task,
                diff,
                runtime=self.runtime_name,
                runtime_options=self.runtime_options,
                timeout_s=self.grade_timeout_s,
                workspace_dir=self._base(task).path,
                limits=self.limits,
            )
        reward = 1.0 if result.resolved else 0.0
        summary = (
            f"Graded: {sum(s in ('passed', 'xfailed') for s in result.statuses.values())} of "
            f"{len(result.statuses)} selected tests pass; the task is "
            f"{'resolved' if result.resolved else 'not resolved'}."
        )
        if result.error:
            summary += f"\n[Grading error: {result.error}]"
        info = {
            "tool": name,
            "resolved": result.resolved,
            "test_statuses": dict(result.statuses),
            "grading": result.to_info(),
            **_diff_info(diff),
            "timings": {
                **result.timings,
                "episode_s": time.monotonic() - self._episode_started,
            },
        }
        text = f"{observation}\n{summary}".strip()
        stop_reason = ("solved" if result.resolved else "failed") if terminated else None
        return Turn(
            text, {"resolved": reward}, terminated=terminated, stop_reason=stop_reason, info=info
        )

    def _env_error(self, error: Exception) -> Turn:
        self._stop_sandbox()
        message = f"{type(error).__name__}: {error}"
        return Turn(
            f"The sandbox failed: {error}",
            {"resolved": 0.0},
            terminated=True,
            stop_reason="env_error",
            info={"error": message},
        )

    # ------------------------------------------------------------------------ resources
    def _cache_dir(self) -> Path:
        if "cache_dir" not in self._state:
            self._state["cache_dir"] = Path(tempfile.mkdtemp(prefix="arenagym-swe-"))
        return self._state["cache_dir"]

    def _base(self, task: SWETask) -> Workspace:
        """The task's pristine base repository, made once per env (runtimes never write it)."""
        if task.instance_id not in self._bases:
            safe = re.sub(r"[^A-Za-z0-9_.-]", "_", task.instance_id)[:80]
            folder = self._cache_dir() / f"{len(self._bases):04d}-{safe}"
            self._bases[task.instance_id] = materialize(task, folder)
        return self._bases[task.instance_id]

    def _tool_runner(self) -> ToolRunner:
        if self._tools is None:
            assert self._task is not None
            base = self._base(self._task)
            from arenagym.envs.swe.runtime import make_runtime  # loads the runtime family lazily

            runtime: Runtime = make_runtime(
                self.runtime_name, limits=self.limits, **self.runtime_options
            )
            self._state["runtime"] = runtime
            try:  # the repository's environment: built now if missing (cached after once)
                python_env = task_python_env(self._task)
            except TaskEnvError as error:
                raise SandboxError(str(error)) from None
            extra = {} if python_env is None else {"python_env": python_env}
            runtime.start(base.path, image=self._task.image, **extra)
            self._sandboxes_started += 1
            tracker = ChangeTracker(
                base, self._cache_dir() / f"changes-{self._sandboxes_started:05d}"
            )
            self._tracker = tracker
            try:  # the files as they are now are the baseline's: later diffs skip unchanged ones
                tracker.record(runtime)
            except DiffError as error:
                raise WorkspaceError(f"the fresh workspace cannot be tracked: {error}") from None
            for command in self._task.setup_commands:  # e.g. building an extension in place
                result = runtime.run(command, timeout_s=self.grade_timeout_s)
                if result.exit_code != 0:
                    raise SandboxError(
                        f"the task's setup command {command!r} failed "
                        f"(exit code {result.exit_code}): {result.output[-500:]}"
                    )
            if self._task.setup_commands:  # what set-up made is not the agent's change
                runtime.run(
                    "git add -A && { git diff --cached --quiet || git -c user.name=arenagym "
                    "-c user.email=arenagym@localhost commit -q --no-verify -m 'Task set-up'; }",
                    timeout_s=120,
                )
                try:
                    tracker.rebase(runtime)
                except DiffError as error:
                    raise WorkspaceError(
                        f"the changes the task's set-up commands made cannot be tracked: {error}"
                    ) from None
            self._tools = ToolRunner(
                runtime,
                max_observation_chars=self.max_observation_chars,
                default_timeout_s=self.limits.timeout_s,
            )
        return self._tools

    def _stop_sandbox(self) -> None:
        self._tools = None
        tracker, self._tracker = self._tracker, None
        runtime = self._state.pop("runtime", None)
        if runtime is not None:
            runtime.stop()
        if tracker is not None:
            shutil.rmtree(tracker.scratch, ignore_errors=True)

    @property
    def runtime(self) -> Runtime | None:
        """The running sandbox of the current episode (None before the first tool call)."""
        return self._state.get("runtime")

    def _release(self) -> None:
        self._tools = None
        self._finalizer()
