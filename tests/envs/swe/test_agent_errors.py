"""Whatever an agent sends or does ends as its own outcome, never as ``env_error``.

A runner that replays ``env_error`` episodes (``--retry-errors``) would otherwise let an agent void
its own failed grade. Each case is something an agent can send or do: a call no shell or file
system can carry out is a penalised invalid action whose observation names the problem; what the
agent does to the workspace, its ``.git`` included, is graded as it is, or fails the grade with
the reason in ``info``. Only a sandbox that itself fails ends an episode with ``env_error``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

import arenagym.envs.swe.workspace as workspace
from arenagym.envs.swe.env import SWEEnv
from arenagym.envs.swe.runtime import make_runtime
from arenagym.envs.swe.runtime.bubblewrap import SANDBOX_PYTHON, bubblewrap_unavailable_reason
from arenagym.envs.swe.runtime.docker import docker_unavailable_reason
from arenagym.envs.swe.runtime.interface import SandboxError
from arenagym.envs.swe.tasks import SWETask, dump_tasks

_BWRAP_REASON = bubblewrap_unavailable_reason()
_DOCKER_REASON = docker_unavailable_reason()
needs_bubblewrap = pytest.mark.skipif(_BWRAP_REASON is not None, reason=str(_BWRAP_REASON))
pytestmark = pytest.mark.filterwarnings("ignore:the local runtime runs commands")

FIX = json.dumps(
    {
        "name": "str_replace_editor",
        "arguments": {
            "command": "str_replace",
            "path": "/workspace/calc/__init__.py",
            "old_str": "    return a - b",
            "new_str": "    return a + b",
        },
    }
)
FINISH = '{"name": "finish", "arguments": {"message": "done"}}'
PENALTY = 0.25


def bash(command: str) -> str:
    return json.dumps({"name": "execute_bash", "arguments": {"command": command}})


def editor(**arguments: object) -> str:
    return json.dumps({"name": "str_replace_editor", "arguments": arguments})


def _runtimes(*, docker: bool = False) -> list[Any]:
    params: list[Any] = [pytest.param("bubblewrap", marks=needs_bubblewrap), "local"]
    if docker:
        skip = pytest.mark.skipif(_DOCKER_REASON is not None, reason=str(_DOCKER_REASON))
        params.insert(1, pytest.param("docker", marks=skip))
    return params


def make_env(tmp_path: Path, task: SWETask, runtime: str = "bubblewrap") -> SWEEnv:
    """An env over ``task`` alone (the local runtime grades with the sandboxes' Python)."""
    path = tmp_path / f"{task.instance_id}.jsonl"
    dump_tasks([task], path)
    env = SWEEnv(
        tasks=str(path),
        runtime=runtime,
        allow_local=runtime == "local",
        runtime_options={"python": SANDBOX_PYTHON} if runtime == "local" else None,
        invalid_action_penalty=PENALTY,
    )
    env.reset(seed=0)
    return env


def play(env: SWEEnv, *actions: str) -> tuple[str, float, bool, bool, dict[str, Any]]:
    """Step through ``actions``; every step but the last must go on."""
    for action in actions[:-1]:
        *_, terminated, truncated, info = env.step(action)
        assert not (terminated or truncated), info
    return env.step(actions[-1])


# ------------------------------------------------------------- calls no sandbox carries out
INVALID_CALLS = {
    "nul-in-command": ([], bash("echo a\u0000b"), "command contains a NUL byte"),
    "nul-in-path": ([], editor(command="view", path="/workspace/a\u0000b"), "path contains a NUL"),
    "lone-surrogate": ([], bash("echo \ud800"), "a lone surrogate that is not Unicode text"),
    "command-over-128-KiB": ([], bash("echo " + "x" * 200_000), "over the limit of 120000"),
    "name-over-255-bytes": (
        [],
        editor(command="create", path="/workspace/" + "a" * 300, file_text="x"),
        "a file name has at most 255 bytes",
    ),
    "under-a-regular-file": (
        [],
        editor(command="create", path="/workspace/calc/__init__.py/x", file_text="x"),
        "/workspace/calc/__init__.py is a file, not a folder",
    ),
    "through-a-dangling-link": (
        [bash("ln -s missing.py dangling && ln -s /nonexistent/x away")],
        editor(command="create", path="/workspace/dangling", file_text="x"),
        "/workspace/dangling is a symbolic link to missing.py, which does not exist",
    ),
    "through-a-link-that-leaves": (
        [bash("ln -s /nonexistent/x away")],
        editor(command="create", path="/workspace/away", file_text="x"),
        "/workspace/away is a symbolic link to /nonexistent/x, outside /workspace",
    ),
    "into-proc": (
        [],
        editor(command="create", path="/proc/x", file_text="x"),
        "/proc/x is outside /workspace: only files under /workspace are kept",
    ),
    "into-tmp": (
        [],
        editor(command="create", path="/tmp/reproduce.py", file_text="print(1)"),
        "Put the file under /workspace instead, e.g. /workspace/reproduce.py",
    ),
    "edit-outside": (
        [],
        editor(command="str_replace", path="/etc/hosts", old_str="a", new_str="b"),
        "/etc/hosts is outside /workspace",
    ),
}


@pytest.mark.parametrize("runtime", _runtimes(docker=True))
@pytest.mark.parametrize("case", sorted(INVALID_CALLS))
def test_a_call_no_sandbox_can_carry_out_is_a_penalised_invalid_action(
    tmp_path: Path, kit, runtime: str, case: str
) -> None:
    before, action, problem = INVALID_CALLS[case]
    env = make_env(tmp_path, kit.snapshot_task(tmp_path), runtime)
    for setup in before:
        assert "exit code 0" in env.step(setup)[0]
    observation, reward, terminated, truncated, info = env.step(action)
    assert not terminated and not truncated and "stop_reason" not in info
    assert info["invalid_action"] is True and reward == -PENALTY
    assert observation.startswith("Invalid action: ") and problem in observation
    assert "exit code 0" in env.step(bash("true"))[0]  # the episode goes on
    env.close()


#: Replies Python's own parsing cannot take (a recursion limit, an integer of too many digits, an
#: int too large for a float), and replies that took a quadratic parse.
UNPARSABLE_REPLIES = {
    "timeout-overflows-a-float": '{"name":"execute_bash","arguments":{"command":"ls","timeout":1'
    + "0" * 400 + "}}",
    "arguments-nested-5000-deep": json.dumps(
        {"name": "execute_bash", "arguments": '{"a":' * 5000 + "1" + "}" * 5000}
    ),
    "integer-over-python-digit-limit": '{"name":"think","arguments":{"thought":"x"},"pad":1'
    + "0" * 5000 + "}",
    "insert-line-of-5000-digits": editor(
        command="insert", path="/workspace/a", new_str="x", insert_line="9" * 5000
    ),
    "view-range-of-100000-brackets": editor(
        command="view", path="/workspace/a", view_range="[" * 100_000
    ),
    "unclosed-functions": "<function=a>" * 8000,
    "unclosed-parameters": "<function=execute_bash>" + "<parameter=command>" * 8000
    + "</function>",
}  # fmt: skip


def test_replies_python_cannot_parse_are_penalised_invalid_actions(tmp_path: Path, kit) -> None:
    env = make_env(tmp_path, kit.snapshot_task(tmp_path), "local")
    for case, reply in UNPARSABLE_REPLIES.items():
        started = time.monotonic()
        observation, reward, terminated, truncated, info = env.step(reply)
        assert time.monotonic() - started < 2.0, case
        assert not terminated and not truncated and "stop_reason" not in info, (case, info)
        assert info["invalid_action"] is True and reward == -PENALTY, case
        assert observation.startswith("Invalid action: "), case
        assert len(observation) < 2000 and "Call exactly one tool per reply" in observation, case
    assert "exit code 0" in env.step(bash("true"))[0]  # the episode goes on
    env.close()


@needs_bubblewrap
def test_reading_a_file_the_sandbox_cannot_read_is_an_invalid_action(tmp_path: Path, kit) -> None:
    env = make_env(tmp_path, kit.snapshot_task(tmp_path))
    observation, reward, terminated, _, info = env.step(editor(command="view", path="/proc/1/mem"))
    assert not terminated and info["invalid_action"] and reward == -PENALTY
    assert observation.startswith("Invalid action: The path /proc/1/mem cannot be read")
    env.close()


@needs_bubblewrap
def test_outside_files_are_refused_so_the_agent_never_loses_them(tmp_path: Path, kit) -> None:
    env = make_env(tmp_path, kit.snapshot_task(tmp_path))
    refused = env.step(editor(command="create", path="/tmp/notes.txt", file_text="x"))
    assert refused[4]["invalid_action"] and "/tmp included" in refused[0]
    created = env.step(editor(command="create", path="/workspace/notes.txt", file_text="x"))[0]
    assert created == "File created successfully at: /workspace/notes.txt"
    assert env.step(bash("cat notes.txt"))[0].startswith("x\n")  # kept between calls
    env.close()


# ------------------------------------------------------------- what the agent does to .git
SABOTAGE = {
    "rm -rf .git": "rm -rf .git",
    "fsmonitor": "git config core.fsmonitor 'sleep 100; true'",
    "hooks": "printf '#!/bin/sh\\nsleep 100\\n' > .git/hooks/pre-commit && "
    "chmod +x .git/hooks/pre-commit && git config core.hooksPath .git/hooks",
    "fix committed": "git -c user.name=a -c user.email=a@b add -A && "
    "git -c user.name=a -c user.email=a@b commit -qm wip --no-verify",
    "objects garbled": "chmod -R u+w .git && find .git/objects -type f -exec sh -c 'echo x > \"$1\"' _ {} \\;",
    ".git is a file": "rm -rf .git && echo 'gitdir: /nonexistent' > .git",
}


@pytest.mark.parametrize("runtime", _runtimes(docker=True))
@pytest.mark.parametrize("sabotage", sorted(SABOTAGE))
def test_what_the_agent_does_to_git_does_not_change_its_grade(
    tmp_path: Path, kit, runtime: str, sabotage: str
) -> None:
    env = make_env(tmp_path, kit.snapshot_task(tmp_path), runtime)
    started = time.monotonic()
    observation, reward, terminated, _, info = play(env, FIX, bash(SABOTAGE[sabotage]), FINISH)
    assert (terminated, info["stop_reason"], reward) == (True, "solved", 1.0), observation
    assert "+    return a + b" in info["diff"] and ".git" not in info["diff"]
    assert time.monotonic() - started < 60  # no hook or fsmonitor of the agent's ran
    env.close()


@needs_bubblewrap
def test_a_sabotaged_git_without_a_fix_is_a_failed_grade(tmp_path: Path, kit) -> None:
    env = make_env(tmp_path, kit.snapshot_task(tmp_path))
    _, reward, terminated, _, info = play(
        env, bash(SABOTAGE["fsmonitor"] + "; rm -rf .git"), FINISH
    )
    assert (terminated, info["stop_reason"], reward) == (True, "failed", 0.0)
    assert info["diff"] == "" and info["grading"]["grading_error"] is None
    env.close()


# ------------------------------------------------------------------- diffs as bytes, limits
@pytest.mark.parametrize("runtime", _runtimes(docker=True))
def test_a_fix_with_a_large_data_file_is_solved(tmp_path: Path, kit, runtime: str) -> None:
    env = make_env(tmp_path, kit.snapshot_task(tmp_path), runtime)
    data = bash("seq 1 200000 > data.csv && head -c 4000 /dev/urandom > blob.bin && wc -c data.csv")
    observation, reward, *_, info = play(env, FIX, data, FINISH)
    assert (info["stop_reason"], reward) == ("solved", 1.0), observation
    assert info["diff_size"] > 1_200_000 and info["diff"].endswith("+200000\n")
    assert "GIT binary patch" in info["diff"]  # binary files travel too
    env.close()


def _latin1_task(tmp_path: Path, kit) -> SWETask:
    library = kit.write_calc_library(tmp_path / "latin-lib")
    source = kit.BUGGY_SOURCE.replace("def add(a, b):", "# caf\xe9\ndef add(a, b):")
    (library / "calc" / "__init__.py").write_bytes(source.encode("latin-1"))
    return kit.snapshot_task(tmp_path, repo_path=str(library), base_patch="")


@pytest.mark.parametrize("runtime", _runtimes(docker=True))
def test_a_fix_to_a_latin1_file_is_solved(tmp_path: Path, kit, runtime: str) -> None:
    env = make_env(tmp_path, _latin1_task(tmp_path, kit), runtime)
    refused = env.step(editor(command="view", path="/workspace/calc/__init__.py"))[0]
    assert "not UTF-8" in refused  # the editor cannot; sed can
    sed = bash("sed -i 's/return a - b/return a + b/' calc/__init__.py")
    observation, reward, *_, info = play(env, sed, FINISH)
    assert (info["stop_reason"], reward) == ("solved", 1.0), observation
    assert b" # caf\xe9\n" in info["diff_bytes"] and info["diff_size"] == len(info["diff_bytes"])
    assert " # caf\ufffd\n" in info["diff"]  # the text view, for reading
    env.close()


@pytest.mark.parametrize("runtime", _runtimes(docker=True))
def test_a_fix_in_a_crlf_file_that_git_normalises_is_one_changed_line(
    tmp_path: Path, kit, runtime: str
) -> None:
    crlf = kit.BUGGY_SOURCE.replace("\n", "\r\n")
    library = kit.write_calc_library(tmp_path / "crlf-lib", crlf)
    (library / ".gitattributes").write_text("* text=auto\n")
    task = kit.snapshot_task(tmp_path, repo_path=str(library), base_patch="")
    env = make_env(tmp_path, task, runtime)
    sed = bash("sed -i 's/return a - b/return a + b/' calc/__init__.py")
    observation, reward, *_, info = play(env, sed, FINISH)
    assert (info["stop_reason"], reward) == ("solved", 1.0), observation
    changed = [line for line in info["diff"].splitlines() if line.startswith(("+ ", "- "))]
    assert changed == ["-    return a - b", "+    return a + b"]  # as `git add` stores it
    env.close()


@pytest.mark.parametrize("runtime", _runtimes(docker=True))
def test_a_diff_over_the_limit_fails_the_grade_with_the_reason(
    tmp_path: Path, kit, monkeypatch: pytest.MonkeyPatch, runtime: str
) -> None:
    monkeypatch.setattr(workspace, "MAX_DIFF_BYTES", 1 << 20)
    env = make_env(tmp_path, kit.snapshot_task(tmp_path), runtime)
    observation, reward, terminated, _, info = play(
        env, FIX, bash("seq 1 200000 > data.csv"), FINISH
    )
    assert (terminated, info["stop_reason"], reward) == (True, "failed", 0.0)
    reason = info["grading"]["grading_error"]
    assert "over the limit of 1048576 bytes (MAX_DIFF_BYTES)" in reason
    assert reason in observation and set(info["test_statuses"].values()) == {"error"}
    env.close()


@needs_bubblewrap
def test_changed_files_over_the_limit_fail_the_grade_with_the_reason(tmp_path: Path, kit) -> None:
    env = make_env(tmp_path, kit.snapshot_task(tmp_path))
    big = bash(f"head -c {workspace.MAX_CHANGED_BYTES + 1} /dev/zero > big.bin")
    _, reward, terminated, _, info = play(env, FIX, big, FINISH)
    assert (terminated, info["stop_reason"], reward) == (True, "failed", 0.0)
    assert (
        f"over the limit of {workspace.MAX_CHANGED_BYTES} bytes"
        in (info["grading"]["grading_error"])
    )
    env.close()


@needs_bubblewrap
def test_a_file_the_agent_made_unreadable_fails_the_grade(tmp_path: Path, kit) -> None:
    env = make_env(tmp_path, kit.snapshot_task(tmp_path))
    _, reward, _, _, info = play(env, FIX, bash("chmod 000 calc/__init__.py"), FINISH)
    assert (info["stop_reason"], reward) == ("failed", 0.0)
    reason = info["grading"]["grading_error"]
    assert reason.startswith("no diff could be made of the workspace: ")
    assert "calc/__init__.py" in reason and "Permission denied" in reason
    env.close()


def _task_with_a_secret(tmp_path: Path, kit) -> SWETask:
    """The calc task whose repository holds a file no one but root may read (mode 000): the
    host copies it, the sandbox cannot read it."""
    library = kit.write_calc_library(tmp_path / "secret-lib")
    (library / "secret.txt").write_text("only root reads this\n")
    (library / "secret.txt").chmod(0)
    return kit.snapshot_task(tmp_path, repo_path=str(library))


needs_root_and_bubblewrap = pytest.mark.skipif(
    os.geteuid() != 0 or _BWRAP_REASON is not None,
    reason="only root copies a file it cannot read into a sandbox that cannot read it either",
)


@needs_root_and_bubblewrap
def test_a_fix_in_a_repo_with_a_file_the_sandbox_cannot_read_is_solved(tmp_path: Path, kit) -> None:
    env = make_env(tmp_path, _task_with_a_secret(tmp_path, kit))
    assert "Permission denied" in env.step(bash("cat secret.txt"))[0]
    observation, reward, *_, info = play(env, FIX, FINISH)
    assert (info["stop_reason"], reward) == ("solved", 1.0), observation
    assert info["grading"]["grading_error"] is None and "secret.txt" not in info["diff"]
    env.close()


@needs_root_and_bubblewrap
def test_an_unreadable_file_the_agent_changed_fails_the_grade_with_the_reason(
    tmp_path: Path, kit
) -> None:
    env = make_env(tmp_path, _task_with_a_secret(tmp_path, kit))
    change = bash("chmod u+w secret.txt && echo more >> secret.txt && chmod 000 secret.txt")
    assert "exit code 0" in env.step(change)[0]
    observation, reward, *_, info = play(env, FIX, FINISH)
    assert (info["stop_reason"], reward) == ("failed", 0.0), observation
    reason = info["grading"]["grading_error"]
    assert reason.startswith("no diff could be made of the workspace: ")
    assert "secret.txt" in reason and "Permission denied" in reason
    env.close()


@needs_bubblewrap
def test_a_sandbox_that_dies_while_the_diff_is_made_is_an_env_error(tmp_path: Path, kit) -> None:
    env = make_env(tmp_path, kit.snapshot_task(tmp_path))
    env.step(FIX)
    runtime = env.runtime
    assert runtime is not None

    def crash(*_args: object, **_kwargs: object) -> None:
        raise SandboxError("the sandbox died")

    runtime.run = runtime.write_file = runtime.read_file = crash  # type: ignore[method-assign]
    _, reward, terminated, _, info = env.step(FINISH)
    assert (terminated, info["stop_reason"], reward) == (True, "env_error", 0.0)
    assert "the sandbox died" in info["error"]
    env.close()


# ------------------------------------------------------------------- the host-side diff itself
CHANGES = (
    "rm -rf .git && chmod +x calc/__init__.py && ln -s calc link && rm pyproject.toml && "
    "mkdir pyproject.toml && echo inside > pyproject.toml/f && head -c 3000 /dev/urandom > b.bin && "
    "printf 'caf\\351\\n' > \"$(printf 'lat\\351n')\" && echo odd > 'new\nline' && "
    "echo cr > \"$(printf 'cr\\r')\" && "
    "mkdir -p __pycache__ && echo x > __pycache__/m.pyc && git init -q nested && echo x > nested/f && "
    "echo 'ignored.txt' > .gitignore && echo x > ignored.txt"
)


@pytest.mark.parametrize("runtime", _runtimes())
def test_the_diff_carries_every_kind_of_change_and_applies_to_the_base(
    tmp_path: Path, kit, runtime: str
) -> None:
    base = workspace.materialize(kit.snapshot_task(tmp_path), tmp_path / "base")
    options = {"allow_local": True} if runtime == "local" else {}
    with make_runtime(runtime, **options) as sandbox:
        sandbox.start(base.path)
        tracker = workspace.ChangeTracker(base, tmp_path / "scratch")
        assert tracker.diff(sandbox) == b""
        assert sandbox.run(CHANGES).exit_code == 0
        patch = tracker.diff(sandbox)
        assert tracker.diff(sandbox) == patch  # it leaves nothing behind in the workspace
    copy = tmp_path / "applied"
    shutil.copytree(base.path, copy, symlinks=True)
    subprocess.run(["git", "apply", "--binary", "-"], input=patch, cwd=copy, check=True)
    files = sorted(
        str(path.relative_to(copy)) for path in copy.rglob("*") if ".git" not in path.parts
    )
    assert files == sorted([
        ".gitignore", "b.bin", "calc", "calc/__init__.py", "cr\r", "lat\udce9n", "link", "new\nline",
        "pyproject.toml", "pyproject.toml/f", "tests", "tests/test_calc.py",
    ])  # fmt: skip
    assert os.readlink(copy / "link") == "calc" and os.access(copy / "calc/__init__.py", os.X_OK)
    assert (copy / "lat\udce9n").read_bytes() == b"caf\xe9\n"


#: In the sandbox: give calc/__init__.py the fix (same size) and set its times back as they were.
SAME_SIZE_FIX_SAME_MTIME = bash(
    "python -c \"import os; p = 'calc/__init__.py'; s = os.stat(p); "
    "t = open(p).read().replace('a - b', 'a + b'); open(p, 'w').write(t); "
    'os.utime(p, ns=(s.st_atime_ns, s.st_mtime_ns))"'
)


@pytest.mark.parametrize("runtime", _runtimes())
def test_a_change_within_the_clock_resolution_of_the_recording_is_still_seen(
    tmp_path: Path, kit, runtime: str
) -> None:
    """A file whose mtime is not older than the recorded stat information may have changed
    without its stat information changing: it is read again, so the same-size fix is seen."""
    base = workspace.materialize(kit.snapshot_task(tmp_path), tmp_path / "base")
    source = base.path / "calc" / "__init__.py"
    future = time.time_ns() + 3600 * 10**9
    os.utime(source, ns=(future, future))
    options = {"allow_local": True} if runtime == "local" else {}
    with make_runtime(runtime, **options) as sandbox:
        sandbox.start(base.path)
        tracker = workspace.ChangeTracker(base, tmp_path / "scratch")
        tracker.record(sandbox)
        assert tracker.diff(sandbox) == b""
        command = json.loads(SAME_SIZE_FIX_SAME_MTIME)["arguments"]["command"]
        assert sandbox.run(command).exit_code == 0
        patch = tracker.diff(sandbox)
    assert b"-    return a - b\n+    return a + b\n" in patch
