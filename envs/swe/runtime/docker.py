"""The Docker runtime: one container per episode from a locally built task image.

The container (see :meth:`DockerRuntime.start`) has no network (``network_mode="none"``), an init
process (``--init``), memory and pids limits, no capabilities, ``no-new-privileges``, a read-only
root filesystem with tmpfs ``/tmp`` and ``/home/agent``, and the workspace in an anonymous volume
at ``/workspace`` that is removed with the container. The Docker socket is never mounted. Its
main process (``sleep infinity`` as root, without capabilities) only keeps it alive; every
command is a ``docker exec`` as uid 1000 (``agent``) under ``timeout -s KILL`` (which kills the
command's whole process group on expiry). When the command ends, its wrapper runs ``kill -9 -1``
as ``agent``, which kills every process of the agent, including those that left the group and
closed their output (``nohup``, ``setsid``, a double fork), but not the root-owned keeper; after
a memory kill or at a host-side deadline a second exec does the same. So, as with bubblewrap, no
background process outlives its command.

Images are built locally (no registry is reachable): ``scripts/build-swe-image`` makes
``arenagym/swe-base:bookworm`` offline from Debian packages, and
:func:`~arenagym.envs.swe.runtime.images.ensure_task_image` layers a task's set-up commands on
top. The daemon is found through ``$DOCKER_HOST`` (``scripts/ci-start-docker`` prints one).

Example (needs a daemon and the base image, so it is only shown here)::

    >>> if docker_unavailable_reason() is None:  # doctest: +SKIP
    ...     with DockerRuntime() as rt:
    ...         rt.start(some_repository)
    ...         rt.run("python -c 'print(6 * 7)'").output
    '42\\n'
"""

from __future__ import annotations

import contextlib
import io
import os
import select
import socket
import tarfile
import time
import uuid
from pathlib import Path, PurePosixPath
from typing import Any

from ._process import _CappedBuffer
from .common import READ_SCRIPT, WRITE_SCRIPT, checked_read, command_result, raise_for_path
from .interface import WORKSPACE, CommandResult, Limits, Runtime, SandboxError, UnreadableFileError
from .pyenv import SANDBOX_ENV, checked_env, sandbox_path_variable

DEFAULT_IMAGE = os.environ.get("ARENAGYM_SWE_IMAGE", "arenagym/swe-base:bookworm")
#: Label on every container this runtime creates (leak checks filter `docker ps -a` by it).
CONTAINER_LABEL = "arenagym.swe.sandbox"
AGENT_USER = "1000:1000"
#: ``PATH`` of the base image (``scripts/build-swe-image``), behind a mounted environment's.
IMAGE_PATH = "/usr/local/bin:/usr/bin:/bin"
#: Seconds the host waits past a command's timeout before killing it from outside.
HOST_GRACE_S = 1.0
#: How often a quiet exec is checked for having finished.
_POLL_S = 0.25
#: How long the output stream may stay open after the command is done before the reader
#: decides a background orphan holds it.
ORPHAN_GRACE_S = 1.0
#: The command wrapper: ``$1`` is the timeout, ``$2`` the command. ``kill -9 -1`` reaches every
#: process of the agent's uid but the caller (not the root-owned keeper or init).
_RUN_AND_REAP = (
    'timeout -s KILL "$1" bash -c "$2" 2>&1; code=$?; kill -9 -1 2>/dev/null; exit $code'
)
_OOM_PROBE = (
    "cat /sys/fs/cgroup/memory.events 2>/dev/null || "
    "cat /sys/fs/cgroup/memory/memory.oom_control 2>/dev/null"
)


def docker_client(docker_host: str | None = None) -> Any:
    """A docker SDK client for ``docker_host`` (default ``$DOCKER_HOST``); raises ImportError
    without the ``docker`` extra and docker.errors.DockerException when no daemon answers."""
    import docker

    if docker_host:
        client = docker.DockerClient(base_url=docker_host, timeout=120)
    else:
        client = docker.from_env(timeout=120)
    client.ping()
    return client


def docker_unavailable_reason(image: str = DEFAULT_IMAGE) -> str | None:
    """None when the Docker runtime can run here (SDK, daemon and base image), else why not."""
    try:
        import docker  # noqa: F401
    except ImportError:
        return "the docker Python SDK is not installed (pip install 'arenagym[docker]')"
    try:
        client = docker_client()
    except Exception as error:
        where = os.environ.get("DOCKER_HOST", "the default socket")
        return f"no Docker daemon answers at {where} ({type(error).__name__}); " \
            "start one with scripts/ci-start-docker and export DOCKER_HOST"
    try:
        client.images.get(image)
    except Exception:
        return f"the image {image} is missing; build it with scripts/build-swe-image"
    finally:
        client.close()
    return None


class DockerRuntime(Runtime):
    """One container per episode (see the module doc).

    Arguments:
        limits: per-command :class:`Limits` (memory and pids apply to the whole container).
        image: the default image when :meth:`start` names none.
        docker_host: the daemon's address (default ``$DOCKER_HOST``).
    """

    name = "docker"

    def __init__(
        self,
        limits: Limits | None = None,
        *,
        image: str = DEFAULT_IMAGE,
        docker_host: str | None = None,
    ) -> None:
        super().__init__(limits)
        self.image = image
        self.docker_host = docker_host
        self._client: Any = None
        self._container: Any = None
        self._oom_kills = 0

    @property
    def container_id(self) -> str | None:
        return None if self._container is None else self._container.id

    def start(
        self, workspace: Path, *, image: str | None = None, python_env: Path | None = None
    ) -> None:
        """Create and start the container from ``image`` (or the runtime's default) and copy
        ``workspace`` into its ``/workspace`` volume, owned by the agent. ``python_env`` (a
        built per-repository environment on the daemon's host, which must be this one) is
        bind-mounted read-only at :data:`~arenagym.envs.swe.runtime.pyenv.SANDBOX_ENV`, its
        ``bin`` first on ``PATH``; the image's ``/usr/bin/python3`` must be the interpreter
        the environment was built for (the base image's is Debian's, as on the host)."""
        if self._container is not None:
            raise SandboxError("this docker runtime is already started; stop() it first")
        source = Path(workspace).resolve()
        if not source.is_dir():
            raise SandboxError(f"workspace {source} is not a directory")
        environment = checked_env(python_env)
        variables = {"HOME": "/home/agent", "LANG": "C.UTF-8"}
        try:
            from docker.types import Mount

            mounts = [Mount(WORKSPACE, None, type="volume")]
            if environment is not None:
                mounts.append(Mount(SANDBOX_ENV, str(environment), type="bind", read_only=True))
                variables["PATH"] = sandbox_path_variable(IMAGE_PATH)

            self._client = docker_client(self.docker_host)
            memory = f"{self.limits.memory_mb}m"
            self._container = self._client.containers.run(
                image or self.image,
                command=["sleep", "infinity"],
                name=f"arenagym-swe-{uuid.uuid4().hex[:12]}",
                detach=True,
                init=True,
                user="0:0",
                network_mode="none",
                mem_limit=memory,
                memswap_limit=memory,
                pids_limit=self.limits.max_processes + 8,  # + the keeper, init, exec helpers
                cap_drop=["ALL"],
                security_opt=["no-new-privileges"],
                read_only=True,
                tmpfs={
                    "/tmp": "rw,nosuid,nodev,size=256m,mode=1777",
                    "/home/agent": "rw,nosuid,nodev,size=64m,uid=1000,gid=1000,mode=0755",
                },
                mounts=mounts,
                labels={CONTAINER_LABEL: "1", f"{CONTAINER_LABEL}.pid": str(os.getpid())},
                working_dir=WORKSPACE,
                environment=variables,
                hostname="sandbox",
            )
            self._container.put_archive(WORKSPACE, _tar_of(source))
        except Exception as error:
            self.stop()
            if isinstance(error, SandboxError):
                raise
            raise SandboxError(f"cannot start a docker sandbox: {error}") from error

    def stop(self) -> None:
        """Remove the container and its workspace volume (force: kills what runs). Idempotent."""
        container, self._container = self._container, None
        client, self._client = self._client, None
        if container is not None:
            with contextlib.suppress(Exception):
                container.remove(force=True, v=True)
        if client is not None:
            with contextlib.suppress(Exception):
                client.close()

    # -- commands --------------------------------------------------------------------------

    def _exec(
        self,
        argv: list[str],
        *,
        user: str = AGENT_USER,
        cwd: str = WORKSPACE,
        env: dict[str, str] | None = None,
        stdin: bytes | None = None,
        deadline: float | None = None,
        max_bytes: int = 1 << 62,
        reap_orphans: bool = True,
        may_leave_orphans: bool = True,
    ) -> tuple[int | None, bytes, bool, bool]:
        """Run an exec; returns (exit code or None if cut at the deadline, output, truncated,
        reached deadline). An exec that cannot leave a background process holding its output
        (``may_leave_orphans=False``: the runtime's own reads and writes) is read to the end
        of its output or the deadline, however late a busy daemon delivers that output."""
        if self._container is None:
            raise SandboxError("the docker runtime is not started (call start() first)")
        api = self._client.api
        try:
            exec_id = api.exec_create(
                self._container.id, argv, stdout=True, stderr=True, stdin=stdin is not None,
                user=user, workdir=_sandbox_path(cwd), environment=env or {},
            )["Id"]
            sock = api.exec_start(exec_id, socket=True)
        except Exception as error:
            raise SandboxError(f"docker exec failed: {error}") from error
        raw: socket.socket = getattr(sock, "_sock", sock)
        buffer = _CappedBuffer(max_bytes)
        cut = orphaned = False
        finished_at: float | None = None  # when the exec was first seen done, with output open
        try:
            if stdin is not None:
                raw.sendall(stdin)
                with contextlib.suppress(OSError):
                    raw.shutdown(socket.SHUT_WR)
            pending = b""
            while True:
                wait = _POLL_S if deadline is None else min(deadline - time.monotonic(), _POLL_S)
                if wait <= 0:
                    cut = True
                    break
                ready, _, _ = select.select([raw], [], [], wait)
                if not ready:
                    if not may_leave_orphans:
                        continue
                    # No output for a while. If the command is done, the daemon may still be
                    # copying its last output (a busy machine): keep reading. Only when the
                    # stream stays open ORPHAN_GRACE_S after that does an orphan the command
                    # left in the background hold it; stop reading (the orphan gets killed).
                    if finished_at is None:
                        if not api.exec_inspect(exec_id).get("Running"):
                            finished_at = time.monotonic()
                    elif time.monotonic() - finished_at >= ORPHAN_GRACE_S:
                        orphaned = True
                        break
                    continue
                chunk = raw.recv(1 << 20)
                if not chunk:
                    break
                pending += chunk
                while len(pending) >= 8:  # multiplexed frames: 8-byte header, then payload
                    size = int.from_bytes(pending[4:8], "big")
                    if len(pending) < 8 + size:
                        break
                    buffer.add(memoryview(pending[8 : 8 + size]))
                    pending = pending[8 + size :]
        finally:
            with contextlib.suppress(OSError):
                raw.close()
        if cut:
            return None, buffer.value(), buffer.truncated, True
        if orphaned and reap_orphans and user == AGENT_USER:
            self._kill_agent_processes()
        code = None
        for _ in range(50):  # the stream can end a moment before the exec is marked done
            info = api.exec_inspect(exec_id)
            if not info.get("Running"):
                code = info.get("ExitCode")
                break
            time.sleep(0.01)
        return code, buffer.value(), buffer.truncated, False

    def _kill_agent_processes(self) -> None:
        """Kill every process of the agent (uid 1000) in the container, the killer excepted."""
        for _ in range(3):
            with contextlib.suppress(SandboxError):
                self._exec(
                    ["sh", "-c", "kill -9 -1"], deadline=time.monotonic() + 10, reap_orphans=False
                )

    def _oom_kill_count(self) -> int:
        _code, output, _, _ = self._exec(
            ["sh", "-c", _OOM_PROBE], deadline=time.monotonic() + 10, may_leave_orphans=False
        )
        for line in output.decode(errors="replace").splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill" and value.strip().isdigit():
                return int(value)
        return 0

    def run(
        self,
        command: str,
        *,
        timeout_s: float | None = None,
        cwd: str = WORKSPACE,
        env: dict[str, str] | None = None,
    ) -> CommandResult:
        timeout = self.limits.timeout_s if timeout_s is None else timeout_s
        started = time.monotonic()
        # sh merges stderr into stdout (one stream, in order) and runs `timeout`, which puts the
        # command in its own process group and SIGKILLs the group on expiry; then sh kills every
        # other process of the agent: a background process that left the group and closed the
        # output (nohup, setsid, double fork) would otherwise live on into later commands.
        argv = ["sh", "-c", _RUN_AND_REAP, "sh", f"{max(timeout, 0.001):.3f}", command]
        code, output, truncated, cut = self._exec(
            argv, cwd=cwd, env=env, deadline=started + timeout + HOST_GRACE_S,
            max_bytes=self.limits.max_output_bytes,
        )
        duration = time.monotonic() - started
        timed_out = cut or (code == 137 and duration >= timeout)
        oom = False
        if code == 137 or cut:
            count = self._oom_kill_count()
            oom = count > self._oom_kills and not timed_out
            self._oom_kills = count
            self._kill_agent_processes()
        return command_result(code, output, duration, timed_out, truncated, oom)

    def run_unbudgeted(self, command: str, *, timeout_s: float) -> CommandResult:
        """:meth:`run`: the Docker workspace has no disk budget to leave out."""
        return self.run(command, timeout_s=timeout_s)

    def read_file(self, path: str) -> bytes:
        if self._container is None:
            raise SandboxError("the docker runtime is not started (call start() first)")
        target = _sandbox_path(path)
        code, output, _, cut = self._exec(
            ["sh", "-c", READ_SCRIPT, "read_file", target], deadline=time.monotonic() + 60,
            may_leave_orphans=False,
        )  # fmt: skip
        if cut:
            self._kill_agent_processes()
            raise SandboxError(f"reading {path} took over 60 s")
        raise_for_path(path, code or 0)
        if code != 0:
            raise SandboxError(f"reading {path} failed: {output[-300:]!r}")
        return checked_read(path, output)

    def write_file(self, path: str, data: bytes) -> None:
        target = _sandbox_path(path)
        code, output, _, cut = self._exec(
            ["sh", "-c", WRITE_SCRIPT, "write_file", target],
            stdin=data, deadline=time.monotonic() + 60, may_leave_orphans=False,
        )
        if cut:
            self._kill_agent_processes()
            raise SandboxError(f"writing {path} took over 60 s")
        if code == 3:
            raise IsADirectoryError(path)
        if code == 4:
            raise UnreadableFileError(f"{path} is not a regular file")
        if code != 0:
            message = output.decode(errors="replace")[-300:]
            if "Permission denied" in message or "Read-only" in message:
                raise PermissionError(f"{path}: {message.strip()}")
            raise SandboxError(f"writing {path} failed: {message}")


def _sandbox_path(path: str) -> str:
    posix = PurePosixPath(path)
    return str(posix if posix.is_absolute() else PurePosixPath(WORKSPACE) / posix)


def _tar_of(directory: Path) -> bytes:
    """A tar of ``directory``'s contents, every entry owned by the agent (uid/gid 1000)."""

    def as_agent(info: tarfile.TarInfo) -> tarfile.TarInfo:
        info.uid = info.gid = 1000
        info.uname = info.gname = "agent"
        return info

    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as archive:
        for entry in sorted(directory.iterdir()):
            archive.add(str(entry), arcname=entry.name, filter=as_agent)
    return data.getvalue()
