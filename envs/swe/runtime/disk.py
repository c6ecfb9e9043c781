"""The workspace's disk budget: how much the sandbox's writes take, in bytes
(``Limits.max_workspace_mb``) and in files (``Limits.max_workspace_inodes``).

The per-file ``RLIMIT_FSIZE`` stops one runaway file; this stops many, and many empty ones. The
runtime measures what the sandbox has written into the workspace on the host — an overlay's
upper directory (only what changed) or the workspace copy (less its starting size) — while each
command runs (from a thread of its own, so the command's timeout never waits for a walk) and
once more when it ends, and a command that grows the workspace past the budget is killed and
told so: what the budget is, what the workspace holds, and to delete files. While the workspace
stays over its budget, a command that does not add to it only gets a reminder, and one that
shrinks it (``rm``) is never stopped, so the agent can always clean up.

The measuring walk (:func:`tree_usage`) never builds a path: it opens each directory relative to
its parent's descriptor (``openat``/``fstatat``), so no depth and no path length (the kernel
refuses paths over 4,096 bytes) hides anything from it; it keeps a bounded number of descriptors
open however deep the tree goes, and it reads directories the sandbox made unreadable. It stops
as soon as a limit is passed: a check while a command runs walks at most the budget (or what
the workspace held at the start, if more), and the measure after it at most
:data:`EXACT_FACTOR` times the budget in files, so a workspace stuffed with empty files costs
each command a bounded walk.

Example::

    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> disk = WorkspaceDisk(folder, limit_mb=2, limit_inodes=100)
    >>> budget = disk.command()  # at the start of a command
    >>> _ = (folder / "big").write_bytes(b"x" * 3_000_000)
    >>> budget.check(None)  # while it runs: a reason to stop it
    'the workspace went over its budget'
    >>> budget.finish().stop  # when it is over: what the agent is told  # doctest: +ELLIPSIS
    'the workspace went over its disk budget of 2 MB and 100 files (it holds 2.9 MB in 1 file...'
"""

from __future__ import annotations

import os
import stat
import threading
from dataclasses import dataclass
from pathlib import Path

_MIB = 1 << 20
#: Up to how many times its budget of files a workspace is still counted exactly (its bytes
#: are counted exactly up to there too); beyond, every walk stops early, so even a workspace
#: flooded far past its budget is cheap to check.
EXACT_FACTOR = 2
#: The most directory descriptors one walk holds at once; deeper levels are reopened through
#: ``..`` (checked by device and inode number) when the walk climbs back to them.
MAX_OPEN_DIRECTORIES = 64
#: How often (in entries) a walk looks at its cancel event.
_CANCEL_EVERY = 512
_DIRECTORY_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


@dataclass(frozen=True)
class Usage:
    """What a tree holds: allocated bytes (hard links once) and names (files, directories,
    links, special files; every name counts, as ``find | wc -l`` counts them).

    ``complete`` is False when the walk stopped early (a limit was passed, the walk was
    cancelled, or the tree kept moving under it): the true figures are then at least these.
    """

    bytes: int
    inodes: int
    complete: bool = True

    def minus(self, base: Usage) -> Usage:
        """This usage less ``base`` (what was there before the sandbox wrote), never negative."""
        return Usage(
            max(self.bytes - base.bytes, 0), max(self.inodes - base.inodes, 0), self.complete
        )


class _LimitPassed(Exception):
    """Raised inside a walk as soon as it has counted past a limit."""


class _Moved(Exception):
    """Raised inside a walk when a directory it climbs back to is no longer where it was."""


class _Tally:
    """The running count of one walk, which raises :class:`_LimitPassed` past a limit."""

    def __init__(
        self, max_bytes: int | None, max_inodes: int | None, cancel: threading.Event | None
    ) -> None:
        self.bytes = 0
        self.inodes = 0
        self.max_bytes = max_bytes
        self.max_inodes = max_inodes
        self.cancel = cancel
        self.linked: set[tuple[int, int]] = set()

    def add(self, info: os.stat_result) -> None:
        self.inodes += 1
        if info.st_nlink > 1 and not stat.S_ISDIR(info.st_mode):
            key = (info.st_dev, info.st_ino)
            if key in self.linked:
                self._check()
                return
            self.linked.add(key)
        self.bytes += info.st_blocks * 512
        self._check()

    def _check(self) -> None:
        if (self.max_inodes is not None and self.inodes > self.max_inodes) or (
            self.max_bytes is not None and self.bytes > self.max_bytes
        ):
            raise _LimitPassed
        if (
            self.cancel is not None
            and self.inodes % _CANCEL_EVERY == 0
            and self.cancel.is_set()
        ):
            raise _LimitPassed


@dataclass
class _Level:
    """One directory on the walk's current branch: its descriptor (None while closed to save
    descriptors), identity, the subdirectories still to visit (name and mode), and the mode to
    give it back when the walk had to make it readable."""

    fd: int | None
    dev: int
    ino: int
    pending: list[tuple[str, int]]
    restore_mode: int | None = None


def _scan(level: _Level, tally: _Tally) -> None:
    """Count every entry of ``level``'s directory and queue its subdirectories."""
    assert level.fd is not None
    with os.scandir(level.fd) as entries:
        for entry in entries:
            try:
                info = entry.stat(follow_symlinks=False)
            except OSError:  # gone since it was listed
                continue
            tally.add(info)
            if stat.S_ISDIR(info.st_mode):
                level.pending.append((entry.name, info.st_mode))


def _open_child(parent: int | None, name: str, mode: int) -> tuple[int, int | None]:
    """Open the subdirectory ``name`` of ``parent`` (of the current directory when None; no
    link followed): its descriptor, and its own mode when it had to be made readable first. A
    sandbox's files belong to the host user, and a directory it made unreadable (``chmod 000``)
    would hide its contents from a walk that does not run as root; so the walk lends itself read
    and search permission (through a descriptor, never a path the sandbox could swap) and gives
    the mode back afterwards."""
    if os.geteuid() == 0 or (mode & 0o500) == 0o500:
        try:
            return os.open(name, _DIRECTORY_FLAGS, dir_fd=parent), None
        except PermissionError:
            pass
    pinned = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=parent)
    try:
        own = stat.S_IMODE(os.fstat(pinned).st_mode)
        os.chmod(f"/proc/self/fd/{pinned}", own | 0o500)
        return os.open(".", _DIRECTORY_FLAGS, dir_fd=pinned), own
    finally:
        os.close(pinned)


def _leave(level: _Level) -> None:
    """Give ``level`` its mode back (if the walk changed it) and close it."""
    assert level.fd is not None
    try:
        if level.restore_mode is not None:
            os.fchmod(level.fd, level.restore_mode)
    except OSError:
        pass
    finally:
        os.close(level.fd)
        level.fd = None


def _walk(root: str | os.PathLike[str], tally: _Tally) -> None:
    """Count everything under ``root`` (the root directory itself included) into ``tally``."""
    try:
        fd, restore = _open_child(None, os.fspath(root), os.lstat(root).st_mode)
    except FileNotFoundError:
        return
    levels: list[_Level] = []
    closed = 0  # levels[:closed] have their descriptors closed
    try:
        info = os.fstat(fd)
        levels.append(_Level(fd, info.st_dev, info.st_ino, [], restore))
        tally.add(info)
        _scan(levels[0], tally)
        while levels:
            top = levels[-1]
            assert top.fd is not None
            if top.pending:
                name, mode = top.pending.pop()
                try:
                    child, restore = _open_child(top.fd, name, mode)
                except OSError:  # removed, or replaced by a link, since it was listed
                    continue
                levels.append(_Level(child, 0, 0, [], restore))
                info = os.fstat(child)
                levels[-1].dev, levels[-1].ino = info.st_dev, info.st_ino
                if len(levels) - closed > MAX_OPEN_DIRECTORIES:
                    oldest = levels[closed]
                    assert oldest.fd is not None
                    os.close(oldest.fd)
                    oldest.fd = None
                    closed += 1
                _scan(levels[-1], tally)
                continue
            if len(levels) > 1 and levels[-2].fd is None:
                parent = levels[-2]
                reopened = os.open("..", _DIRECTORY_FLAGS, dir_fd=top.fd)
                info = os.fstat(reopened)
                if (info.st_dev, info.st_ino) != (parent.dev, parent.ino):
                    os.close(reopened)  # moved elsewhere: not the walk's to touch
                    raise _Moved
                parent.fd = reopened
                closed -= 1
            _leave(levels.pop())
    finally:
        for level in levels:
            if level.fd is not None:
                _leave(level)


def tree_usage(
    root: str | os.PathLike[str],
    *,
    max_bytes: int | None = None,
    max_inodes: int | None = None,
    cancel: threading.Event | None = None,
) -> Usage:
    """Bytes and names under ``root`` (links not followed; a missing root holds nothing).

    The walk stops as soon as it has counted more than ``max_bytes`` or ``max_inodes`` (or
    ``cancel`` is set) and returns what it counted so far with ``complete=False``. A tree that
    keeps moving while it is walked (directories renamed away from under the walk) is walked
    again, and reported incomplete if it never holds still.
    """
    for _ in range(3):
        tally = _Tally(max_bytes, max_inodes, cancel)
        try:
            _walk(root, tally)
        except _LimitPassed:
            return Usage(tally.bytes, tally.inodes, complete=False)
        except _Moved:
            continue
        except OSError:  # the tree changed under the walk in a way it cannot follow
            continue
        return Usage(tally.bytes, tally.inodes)
    return Usage(tally.bytes, tally.inodes, complete=False)


def describe_usage(usage: Usage) -> str:
    """``usage`` in words for the agent: ``2.9 MB in 12 files`` (``more than`` for a count
    that stopped at its limit)."""
    files = "file" if usage.inodes == 1 else "files"
    if usage.complete:
        return f"{usage.bytes / _MIB:.1f} MB in {usage.inodes} {files}"
    return f"at least {usage.bytes / _MIB:.1f} MB in more than {usage.inodes - 1} files"


@dataclass(frozen=True)
class Verdict:
    """How a command left the workspace: ``stop`` is the reason to report it as killed by the
    budget (it grew the workspace past it), ``note`` a reminder that the workspace is still
    over its budget (a command that did not add to it); both None when within the budget."""

    stop: str | None = None
    note: str | None = None


class WorkspaceDisk:
    """The disk budget of one sandbox's workspace, whose writes land under ``root`` on the host.

    Measures are exact in bytes, and in files up to :data:`EXACT_FACTOR` times the budget: the
    time a walk takes depends on the number of names, not on their size, so that bound is what
    keeps every measure cheap.

    Arguments:
        root: the host directory the sandbox's workspace writes go to.
        limit_mb: the most megabytes (MiB) the sandbox may add.
        limit_inodes: the most names (files, directories, links) the sandbox may add.
    """

    def __init__(self, root: Path, limit_mb: int, limit_inodes: int) -> None:
        if isinstance(limit_mb, bool) or not isinstance(limit_mb, int) or limit_mb < 1:
            raise ValueError(f"max_workspace_mb must be an integer >= 1, got {limit_mb!r}")
        if isinstance(limit_inodes, bool) or not isinstance(limit_inodes, int) or limit_inodes < 1:
            raise ValueError(
                f"max_workspace_inodes must be an integer >= 1, got {limit_inodes!r}"
            )
        self.root = root
        self.limit_mb = limit_mb
        self.limit_bytes = limit_mb * _MIB
        self.limit_inodes = limit_inodes
        #: What was there before the sandbox wrote anything (measured in full, once).
        self.base = tree_usage(root)
        self._last: Usage | None = Usage(0, 0)
        self._lock = threading.Lock()

    @property
    def budget_text(self) -> str:
        """The budget in words: ``5 MB and 100000 files``."""
        return f"{self.limit_mb} MB and {self.limit_inodes} files"

    def measure(
        self,
        *,
        max_bytes: int | None = None,
        max_inodes: int | None = None,
        cancel: threading.Event | None = None,
    ) -> Usage:
        """What the sandbox has added so far, counted until it passes ``max_bytes`` (default:
        no limit) or ``max_inodes`` (default: :data:`EXACT_FACTOR` times the budget)."""
        if max_inodes is None:
            max_inodes = EXACT_FACTOR * self.limit_inodes
        total = tree_usage(
            self.root,
            max_bytes=None if max_bytes is None else self.base.bytes + max_bytes,
            max_inodes=self.base.inodes + max_inodes,
            cancel=cancel,
        )
        return total.minus(self.base)

    def over(self, usage: Usage) -> bool:
        """Whether ``usage`` is past the budget (an incomplete measure is: it stopped at a
        limit above the budget)."""
        return (
            not usage.complete
            or usage.bytes > self.limit_bytes
            or usage.inodes > self.limit_inodes
        )

    def current(self) -> Usage:
        """The last measure, taken again if something wrote to the workspace since."""
        with self._lock:
            last = self._last
        if last is None:
            last = self.measure()
            self._record(last)
        return last

    def invalidate(self) -> None:
        """Forget the last measure: the workspace was written outside a budgeted command."""
        with self._lock:
            self._last = None

    def refusal(self) -> str | None:
        """Why a write should be refused now (the workspace is over its budget), else None."""
        usage = self.current()
        if not self.over(usage):
            return None
        return (
            f"the workspace is over its disk budget of {self.budget_text} (it holds "
            f"{describe_usage(usage)} written by commands); delete files (rm) to go on"
        )

    def command(self) -> CommandBudget:
        """The budget of one command, made when it starts."""
        return CommandBudget(self, self.current())

    def _record(self, usage: Usage) -> None:
        with self._lock:
            self._last = usage


class CommandBudget:
    """The budget check of one command: :meth:`check` while it runs (from a watcher thread;
    each walk stops as soon as the command has grown the workspace past the budget), then
    :meth:`finish` once it is over.

    A command is stopped when it takes the workspace past the budget, or, when the workspace
    was already over it at the start, past what it held then: deleting is never stopped. Only a
    workspace with more than :data:`EXACT_FACTOR` times its budget of files (too full to be
    counted cheaply) stops every command that runs long enough to be checked while it stays
    that full.
    """

    def __init__(self, disk: WorkspaceDisk, at_start: Usage) -> None:
        self.disk = disk
        self.at_start = at_start
        self.max_inodes = max(disk.limit_inodes, at_start.inodes)
        self.max_bytes: int | None = max(disk.limit_bytes, at_start.bytes)
        if not at_start.complete:  # too many files to count: its size is not known either
            self.max_inodes = EXACT_FACTOR * disk.limit_inodes
            self.max_bytes = None

    def check(self, cancel: threading.Event | None) -> str | None:
        """A short reason to stop the command now, else None. Cheap in the worst case: the walk
        stops as soon as the workspace holds more than the command may leave."""
        usage = self.disk.measure(
            max_bytes=self.max_bytes, max_inodes=self.max_inodes, cancel=cancel
        )
        if usage.complete or (cancel is not None and cancel.is_set()):
            return None
        return "the workspace went over its budget"

    def finish(self, stopped: bool = False) -> Verdict:
        """Measure the workspace after the command and say what the agent is told: why the
        command counts as killed by the budget (``stopped``: :meth:`check` stopped it; or it
        grew the workspace past the budget after the last check), or that the workspace is
        still over it."""
        disk = self.disk
        usage = disk.measure()
        disk._record(usage)
        if not disk.over(usage) and not stopped:
            return Verdict()
        held = f"it holds {describe_usage(usage)} written by commands"
        if not self.at_start.complete and not usage.complete:
            far = (
                f"the workspace holds more than {EXACT_FACTOR} times its disk budget of "
                f"{disk.budget_text} ({held}); commands that run while it does are stopped: "
                "delete files (rm -rf DIRECTORY) to go on"
            )
            return Verdict(stop=far) if stopped else Verdict(note=far)
        grew = (
            not usage.complete
            or usage.inodes > self.max_inodes
            or (self.max_bytes is not None and usage.bytes > self.max_bytes)
        )
        if stopped or grew:
            return Verdict(
                stop=f"the workspace went over its disk budget of {disk.budget_text} "
                f"({held}); delete files (rm) to go on"
            )
        return Verdict(
            note=f"the workspace is still over its disk budget of {disk.budget_text} "
            f"({held}); delete files (rm): commands that add to it are stopped"
        )
