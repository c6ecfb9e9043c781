"""The local runtime: commands run directly on the host, for trusted code only.

There is no isolation: a command can read the user's files, reach the network and delete data.
:func:`~arenagym.envs.swe.runtime.make_runtime` refuses it unless ``allow_local=True`` and every
instance warns. What it does give: a private temporary copy of the workspace (the caller's
directory is never written), the same per-command limits as the sandboxes (a timeout that kills
the process group and every process in the command's cgroup, memory and process limits by cgroup
or rlimits, an output cap), and the same interface. Paths under ``/workspace`` in ``cwd``,
``read_file`` and ``write_file`` are mapped to the copy; inside commands the copy's real path is
in ``$WORKSPACE``, and ``python`` is the interpreter running arenagym unless ``python=`` says
otherwise.

Example::

    >>> import tempfile, pathlib, warnings
    >>> src = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (src / "hello.txt").write_text("hi")
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")
    ...     with LocalRuntime() as rt:
    ...         rt.start(src)
    ...         rt.run("cat hello.txt").output
    'hi'
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path, PurePosixPath

from ._process import run_capped
from .common import SANDBOX_MARKER, command_result, remove_tree
from .disk import Verdict, WorkspaceDisk
from .interface import WORKSPACE, CommandResult, Limits, Runtime, SandboxError, WorkspaceFullError
from .limits import CommandLimiter
from .pyenv import checked_env

TEMP_PREFIX = "arenagym-local-"


class LocalRuntimeWarning(UserWarning):
    """Emitted whenever a local (unisolated) runtime is created."""


class LocalRuntime(Runtime):
    """Runs commands on the host in a temporary copy of the workspace (no isolation).

    Arguments:
        limits: per-command :class:`Limits`.
        python: the interpreter ``python`` runs (default: the one running arenagym).
        max_file_mb: the largest file a command may write (``RLIMIT_FSIZE``).
    """

    name = "local"

    def __init__(
        self,
        limits: Limits | None = None,
        *,
        python: str | None = None,
        max_file_mb: int = 1024,
        use_cgroups: bool = True,
    ) -> None:
        super().__init__(limits)
        warnings.warn(
            "the local runtime runs commands on this machine without any isolation; use it only "
            "for trusted code (the 'bubblewrap' and 'docker' runtimes sandbox them)",
            LocalRuntimeWarning,
            stacklevel=2,
        )
        self.python = python or sys.executable
        self.max_file_mb = max_file_mb
        self.use_cgroups = use_cgroups
        self._private: Path | None = None
        self._disk: WorkspaceDisk | None = None
        self._env_bin: list[str] = []

    @property
    def workspace_dir(self) -> Path:
        """The host directory that plays ``/workspace``."""
        if self._private is None:
            raise SandboxError("the local runtime is not started (call start() first)")
        return self._private / "workspace"

    def start(
        self, workspace: Path, *, image: str | None = None, python_env: Path | None = None
    ) -> None:
        """Copy ``workspace``; ``python_env`` (a built environment) is used where it lies, its
        ``bin`` first on ``PATH`` (no mount: nothing is isolated here)."""
        environment = checked_env(python_env)
        if self._private is not None:
            raise SandboxError("this local runtime is already started; stop() it first")
        source = Path(workspace).resolve()
        if not source.is_dir():
            raise SandboxError(f"workspace {source} is not a directory")
        private = Path(tempfile.mkdtemp(prefix=TEMP_PREFIX))
        self._private = private
        self._env_bin = [] if environment is None else [str(environment / "bin")]
        completed = subprocess.run(
            ["cp", "-a", "--reflink=auto", "--", str(source), str(private / "workspace")],
            capture_output=True,
        )
        (private / "bin").mkdir()
        # a script, not a symlink: a venv's interpreter reached through a symlink elsewhere
        # loses its venv (and with it pytest)
        launcher = private / "bin" / "python"
        python = self.python if environment is None else str(environment / "bin" / "python")
        launcher.write_text(f"#!/bin/sh\nexec {shlex.quote(python)} \"$@\"\n")
        launcher.chmod(0o755)
        (private / "tmp").mkdir()
        if completed.returncode != 0:
            self.stop()
            raise SandboxError(f"copying the workspace {source} failed: {completed.stderr!r}")
        self._disk = WorkspaceDisk(
            private / "workspace", self.limits.max_workspace_mb, self.limits.max_workspace_inodes
        )

    def stop(self) -> None:
        private, self._private = self._private, None
        if private is not None:
            remove_tree(private)

    def host_path(self, path: str) -> Path:
        """The host path of a sandbox path (``/workspace/...`` or relative -> the copy)."""
        posix = PurePosixPath(path)
        if not posix.is_absolute():
            return self.workspace_dir / posix
        try:
            return self.workspace_dir / posix.relative_to(WORKSPACE)
        except ValueError:
            return Path(posix)

    def run(
        self,
        command: str,
        *,
        timeout_s: float | None = None,
        cwd: str = WORKSPACE,
        env: dict[str, str] | None = None,
    ) -> CommandResult:
        timeout = self.limits.timeout_s if timeout_s is None else timeout_s
        return self._run(command, timeout=timeout, cwd=cwd, env=env, budgeted=True)

    def run_unbudgeted(self, command: str, *, timeout_s: float) -> CommandResult:
        return self._run(command, timeout=timeout_s, cwd=WORKSPACE, env=None, budgeted=False)

    def _run(
        self,
        command: str,
        *,
        timeout: float,
        cwd: str,
        env: dict[str, str] | None,
        budgeted: bool,
    ) -> CommandResult:
        """One command; ``budgeted`` commands are held to the workspace's disk budget (the
        others only leave it to be measured again before the next one)."""
        private = self._private
        if private is None:
            raise SandboxError("the local runtime is not started (call start() first)")
        environment = {
            "PATH": ":".join(
                [str(private / "bin"), *self._env_bin, os.environ.get("PATH", "/usr/bin:/bin")]
            ),
            "HOME": str(private / "tmp"),
            "TMPDIR": str(private / "tmp"),
            "LANG": "C.UTF-8",
            "TERM": "dumb",
            "PAGER": "cat",
            "GIT_PAGER": "cat",
            "WORKSPACE": str(self.workspace_dir),
            SANDBOX_MARKER: self.name,
        }
        environment.update(env or {})
        limiter = CommandLimiter(
            memory_mb=self.limits.memory_mb,
            max_processes=self.limits.max_processes,
            max_file_mb=self.max_file_mb,
            use_cgroups=self.use_cgroups,
        )
        try:
            argv = [
                "/bin/bash", "-c", limiter.shell_prefix() + 'exec /bin/bash -c "$1"',
                SANDBOX_MARKER, command,
            ]
            workdir = self.host_path(cwd)
            if not workdir.is_dir():
                return CommandResult(1, f"cwd {cwd} is not a directory\n", 0.0)
            disk = self._disk
            budget = disk.command() if disk is not None and budgeted else None
            try:
                raw = run_capped(
                    argv,
                    timeout_s=timeout,
                    max_output_bytes=self.limits.max_output_bytes,
                    env=environment,
                    cwd=str(workdir),
                    on_kill=limiter.kill_all,
                    watch=budget.check if budget is not None else None,
                )
            except OSError as error:
                raise SandboxError(f"cannot start bash: {error}") from error
            oom = limiter.oom_killed()
        finally:
            limiter.release()
        if budget is not None:
            verdict = budget.finish(stopped=raw.stopped_by is not None)
        else:
            verdict = Verdict()
            if disk is not None:
                disk.invalidate()
        return command_result(
            raw.exit_code, raw.output, raw.duration_s, raw.timed_out, raw.truncated, oom,
            verdict.stop, verdict.note,
        )

    def read_file(self, path: str) -> bytes:
        host = self.host_path(path)
        if host.is_dir():
            raise IsADirectoryError(path)
        if not host.exists():
            raise FileNotFoundError(path)
        return host.read_bytes()

    def write_file(self, path: str, data: bytes) -> None:
        """Write a file in the workspace copy (refused with :class:`WorkspaceFullError` while
        the workspace is over its disk budget)."""
        disk = self._disk
        if disk is not None:
            refusal = disk.refusal()
            if refusal is not None:
                raise WorkspaceFullError(refusal)
            disk.invalidate()
        host = self.host_path(path)
        if host.is_dir():
            raise IsADirectoryError(path)
        host.parent.mkdir(parents=True, exist_ok=True)
        host.write_bytes(data)
