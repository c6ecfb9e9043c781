"""The one interface every SWE sandbox runtime implements (bubblewrap, Docker, local).

A runtime owns one isolated workspace for one episode: ``start`` makes it from a prepared
directory on the host (a git repository whose history ends at the task's base commit), ``run``
executes a shell command inside it under :class:`Limits` (``run_unbudgeted`` runs the caller's
own bookkeeping commands outside the workspace's disk budget), ``read_file``/``write_file`` move
bytes in and out, and ``stop`` releases everything (processes, mounts, containers, temporary
directories). ``stop`` is idempotent. What the agent changed is worked out by the caller
(:class:`~arenagym.envs.swe.workspace.ChangeTracker`), never by the runtime.

Inside every runtime the workspace is at :data:`WORKSPACE` and ``python`` on ``PATH`` is a Python
(3.11 or newer) that can import ``pytest``; ``git`` is available. Nothing from the host's home or
the project checkout is visible, and there is no network.

Example (with the trusted local runtime; the sandboxes are used the same way)::

    >>> import tempfile, pathlib
    >>> from arenagym.envs.swe.runtime import make_runtime
    >>> src = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (src / "hello.txt").write_text("hi")
    >>> import warnings
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")  # the local runtime warns that it is not isolated
    ...     rt = make_runtime("local", allow_local=True)
    >>> with rt:
    ...     rt.start(src)
    ...     rt.run("cat hello.txt").output
    'hi'
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self

#: Where the workspace is mounted inside every sandbox.
WORKSPACE = "/workspace"


class SandboxError(Exception):
    """An infrastructure fault: the sandbox could not start or died (the env maps it to
    ``stop_reason="env_error"``)."""


#: The largest file ``read_file`` returns (the editor's files; bigger ones are refused).
MAX_READ_BYTES = 32 << 20


class UnreadableFileError(OSError):
    """A path the file transfer refuses: not a regular file (a FIFO would block the reader, a
    device like ``/dev/zero`` never ends) or larger than :data:`MAX_READ_BYTES`."""


class WorkspaceFullError(PermissionError):
    """A write refused because the workspace is over its disk budget (``max_workspace_mb`` or
    ``max_workspace_inodes``). A ``PermissionError``, so a caller that reports unwritable paths
    to the agent reports this one too; the message says what to delete."""


@dataclass(frozen=True)
class Limits:
    """Per-command resource limits.

    ``timeout_s`` is wall-clock and kills the command's whole process group; ``memory_mb`` is
    enforced by a cgroup where one is writable, else ``RLIMIT_AS``; ``max_processes`` bounds forks
    (a fork bomb is contained); ``max_output_bytes`` caps what is kept of stdout+stderr (the rest
    is drained and dropped, so a 1 GB writer cannot fill memory).

    ``max_workspace_mb`` and ``max_workspace_inodes`` are the workspace's disk budget: how many
    megabytes, and how many names (files, directories, links: every name counts, as
    ``find | wc -l`` counts them), the sandbox's writes may add to the workspace. The runtime
    measures the workspace on the host while each command runs and when it ends; a command
    that grows it past either limit is killed with ``killed_reason="disk"`` and its output says
    what the budget is, what the workspace holds and that files must be deleted; while it stays
    over, file writes are refused and commands that add to it are stopped (deleting never is).
    The files limit also bounds the host's work per command (a check stops walking soon past
    it), so a workspace stuffed with empty files cannot make commands slow, and the timeout is
    kept whatever the workspace holds. Enforced by the bubblewrap and local runtimes; the
    Docker runtime's workspace is a volume of the daemon's, which has no budget.

    Every limit must be positive (``ValueError`` otherwise).
    """

    timeout_s: float = 60.0
    memory_mb: int = 2048
    max_processes: int = 256
    max_output_bytes: int = 1_000_000
    max_workspace_mb: int = 2048
    max_workspace_inodes: int = 100_000

    def __post_init__(self) -> None:
        for name in (
            "memory_mb",
            "max_processes",
            "max_output_bytes",
            "max_workspace_mb",
            "max_workspace_inodes",
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"Limits.{name} must be an integer >= 1, got {value!r}")
        timeout = self.timeout_s
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0:
            raise ValueError(f"Limits.timeout_s must be a number of seconds > 0, got {timeout!r}")


@dataclass(frozen=True)
class CommandResult:
    """What one command did. ``exit_code`` is None when the command was killed."""

    exit_code: int | None
    output: str  # stdout and stderr interleaved, decoded as UTF-8 with replacement, capped
    duration_s: float
    timed_out: bool = False
    truncated: bool = False  # output went past Limits.max_output_bytes
    killed_reason: str | None = None  # "timeout", "memory", ... when the command was killed


class Runtime(abc.ABC):
    """One isolated workspace for one episode. Use as a context manager or call ``stop``."""

    #: Short name used in configs, results and error messages ("bubblewrap", "docker", "local").
    name: str = ""

    def __init__(self, limits: Limits | None = None) -> None:
        self.limits = limits or Limits()

    @abc.abstractmethod
    def start(
        self, workspace: Path, *, image: str | None = None, python_env: Path | None = None
    ) -> None:
        """Make the sandbox's workspace from the host directory ``workspace`` (copied or mounted
        copy-on-write: the runtime never lets the sandbox write to the caller's directory unless
        it owns it). ``image`` names the runtime image for runtimes that use one (Docker).
        ``python_env`` is a built per-repository environment
        (:func:`~arenagym.envs.swe.runtime.pyenv.build_env`): mounted read-only, its ``python``
        first on ``PATH`` for every command."""

    @abc.abstractmethod
    def run(
        self,
        command: str,
        *,
        timeout_s: float | None = None,
        cwd: str = WORKSPACE,
        env: dict[str, str] | None = None,
    ) -> CommandResult:
        """Run ``command`` with ``bash -c`` inside the sandbox under the limits
        (``timeout_s`` overrides ``Limits.timeout_s`` for this command). Never raises for
        what the command does; raises :class:`SandboxError` when the sandbox itself fails."""

    @abc.abstractmethod
    def read_file(self, path: str) -> bytes:
        """Read a file by its path inside the sandbox (absolute, or relative to the workspace).
        Raises FileNotFoundError / IsADirectoryError like ``open``, and
        :class:`UnreadableFileError` for FIFOs, devices and files over :data:`MAX_READ_BYTES`."""

    @abc.abstractmethod
    def write_file(self, path: str, data: bytes) -> None:
        """Write a file by its path inside the sandbox, creating parent directories; an existing
        path that is not a regular file raises :class:`UnreadableFileError`, and a workspace over
        its disk budget :class:`WorkspaceFullError`."""

    @abc.abstractmethod
    def run_unbudgeted(self, command: str, *, timeout_s: float) -> CommandResult:
        """:meth:`run` (in the workspace, with the default environment) for the env's own
        bookkeeping commands, which must neither count against nor be stopped by the
        workspace's disk budget: listing the agent's changes stages a copy of them in the
        workspace, and a workspace the agent left near its budget must still yield its diff,
        then be rid of that copy. Every other limit holds, and the workspace is measured again
        before the next budgeted command. Runtimes without a budget (Docker) run it as
        :meth:`run`. Never give it the agent's commands: they would escape the budget."""

    @abc.abstractmethod
    def stop(self) -> None:
        """Kill every process, unmount, remove containers and temporary directories.
        Idempotent."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
