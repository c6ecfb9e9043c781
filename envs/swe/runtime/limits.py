"""Memory and process-count limits for one host command: a cgroup where one is writable, else
rlimits.

A :class:`CommandLimiter` is made per command. With cgroups (v1 ``memory`` + ``pids``
hierarchies, or a v2 group with both controllers delegated) it creates a fresh child group of
this process's own group, sets ``memory`` and ``pids`` limits, and the command joins it before
it ``exec``\\ s (a tiny ``bash`` prefix writes ``$$`` to ``cgroup.procs``), so every descendant is
counted and can be killed even if it left the process group. Without a writable cgroup the
prefix sets ``RLIMIT_AS`` and ``RLIMIT_NPROC`` instead (``RLIMIT_NPROC`` is counted per user
namespace on Linux >= 5.14, so inside a sandbox it bounds only the sandbox's processes; the
kernel exempts processes whose host user is root, so run as root, only the cgroup bounds them).
``RLIMIT_FSIZE`` is always set, so one runaway file cannot fill the disk.

Example::

    >>> import shlex
    >>> prefix = rlimit_prefix(memory_mb=None, max_processes=None, max_file_mb=10)
    >>> prefix
    'ulimit -f 10240; '
"""

from __future__ import annotations

import contextlib
import functools
import os
import shlex
import signal
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
#: Prefix of every cgroup this module creates (tests scan for leftovers by it).
CGROUP_PREFIX = "arenagym-"


def rlimit_prefix(*, memory_mb: int | None, max_processes: int | None, max_file_mb: int) -> str:
    """The ``bash`` ``ulimit`` commands that set the rlimits (soft and hard, so the command
    cannot raise them again)."""
    parts = [f"ulimit -f {max_file_mb * 1024}"]
    if memory_mb is not None:
        parts.append(f"ulimit -v {memory_mb * 1024}")
    if max_processes is not None:
        parts.append(f"ulimit -u {max_processes}")
    return "; ".join(parts) + "; "


@dataclass(frozen=True)
class _Hierarchy:
    """One place where a command's cgroup directory is created, and what is written there."""

    parent: Path
    version: int  # 1 or 2
    controllers: tuple[str, ...]  # of "memory", "pids"


@functools.cache
def cgroup_hierarchies() -> tuple[_Hierarchy, ...] | None:
    """The writable cgroup parents that together give both a memory and a pids controller,
    or None when there are none (not root, read-only cgroupfs, no controllers)."""
    try:
        own = Path("/proc/self/cgroup").read_text().splitlines()
    except OSError:
        return None
    v1_paths: dict[str, str] = {}
    v2_path: str | None = None
    for line in own:
        _, controllers, path = line.split(":", 2)
        if controllers == "":
            v2_path = path
        for controller in controllers.split(","):
            v1_paths[controller] = path
    found: list[_Hierarchy] = []
    for controller in ("memory", "pids"):
        if controller in v1_paths:
            parent = CGROUP_ROOT / controller / v1_paths[controller].lstrip("/")
            if parent.is_dir() and _can_create_child(parent):
                found.append(_Hierarchy(parent, 1, (controller,)))
    if {c for h in found for c in h.controllers} == {"memory", "pids"}:
        return tuple(found)
    if v2_path is not None and (CGROUP_ROOT / "cgroup.controllers").exists():
        parent = CGROUP_ROOT / v2_path.lstrip("/")
        with contextlib.suppress(OSError):
            enabled = (parent / "cgroup.subtree_control").read_text().split()
            if {"memory", "pids"} <= set(enabled) and _can_create_child(parent):
                return (_Hierarchy(parent, 2, ("memory", "pids")),)
    return None


def _can_create_child(parent: Path) -> bool:
    probe = parent / f"{CGROUP_PREFIX}probe-{uuid.uuid4().hex[:12]}"
    try:
        probe.mkdir()
    except OSError:
        return False
    with contextlib.suppress(OSError):
        probe.rmdir()
    return True


@dataclass
class CommandLimiter:
    """The limits of one command: its cgroup directories (possibly none) and the shell prefix
    that joins them or sets rlimits. Call :meth:`release` when the command is over."""

    memory_mb: int
    max_processes: int
    max_file_mb: int = 1024
    use_cgroups: bool = True
    directories: list[Path] = field(default_factory=list)
    _versions: dict[Path, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        hierarchies = cgroup_hierarchies() if self.use_cgroups else None
        if not hierarchies:
            return
        name = f"{CGROUP_PREFIX}{os.getpid()}-{uuid.uuid4().hex[:12]}"
        try:
            for hierarchy in hierarchies:
                directory = hierarchy.parent / name
                directory.mkdir()
                self.directories.append(directory)
                self._versions[directory] = hierarchy.version
                memory = str(self.memory_mb * 1024 * 1024)
                if "memory" in hierarchy.controllers:
                    if hierarchy.version == 1:
                        (directory / "memory.limit_in_bytes").write_text(memory)
                        with contextlib.suppress(OSError):  # absent without swap accounting
                            (directory / "memory.memsw.limit_in_bytes").write_text(memory)
                    else:
                        (directory / "memory.max").write_text(memory)
                        with contextlib.suppress(OSError):
                            (directory / "memory.swap.max").write_text("0")
                if "pids" in hierarchy.controllers:
                    (directory / "pids.max").write_text(str(self.max_processes))
        except OSError:
            self.release()
            self.directories = []

    @property
    def cgrouped(self) -> bool:
        return bool(self.directories)

    def shell_prefix(self) -> str:
        """``bash`` commands to run before ``exec``-ing the limited program."""
        if self.cgrouped:
            joins = "".join(
                f"echo $$ > {shlex.quote(str(d / 'cgroup.procs'))} || exit 125; "
                for d in self.directories
            )
            return joins + rlimit_prefix(
                memory_mb=None, max_processes=None, max_file_mb=self.max_file_mb
            )
        return rlimit_prefix(
            memory_mb=self.memory_mb, max_processes=self.max_processes, max_file_mb=self.max_file_mb
        )

    def pids(self) -> set[int]:
        found: set[int] = set()
        for directory in self.directories:
            with contextlib.suppress(OSError, ValueError):
                found.update(int(p) for p in (directory / "cgroup.procs").read_text().split())
        return found

    def kill_all(self) -> None:
        """SIGKILL every process in the command's cgroups, until they are empty (a fork bomb
        may still be forking while we kill)."""
        for _ in range(100):
            pids = self.pids()
            if not pids:
                return
            for pid in pids:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.005)

    def oom_killed(self) -> bool:
        """Whether the kernel's OOM killer killed something in the command's memory cgroup."""
        for directory in self.directories:
            version = self._versions[directory]
            events = directory / ("memory.oom_control" if version == 1 else "memory.events")
            with contextlib.suppress(OSError):
                for line in events.read_text().splitlines():
                    key, _, value = line.partition(" ")
                    if key == "oom_kill" and int(value) > 0:
                        return True
        return False

    def release(self) -> None:
        """Kill stragglers and remove the cgroup directories. Idempotent."""
        if not self.directories:
            return
        self.kill_all()
        for directory in self.directories:
            for _ in range(200):
                try:
                    directory.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:  # busy: a killed process not yet reaped
                    self.kill_all()
                    time.sleep(0.005)
        self.directories = []
