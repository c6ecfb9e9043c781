"""The workspace's disk budget: how much the sandbox's writes take, against
``Limits.max_workspace_mb``.

The per-file ``RLIMIT_FSIZE`` stops one runaway file; this stops many. The runtime measures what
the sandbox has written into the workspace on the host — an overlay's upper directory (only what
changed) or the workspace copy (less its starting size) — while each command runs, and the
command is killed when it grows the workspace past the budget. A command that shrinks an
over-budget workspace (``rm``) is never stopped, so the agent can always clean up.

Example::

    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> disk = WorkspaceDisk(folder, limit_mb=1)
    >>> check = disk.watcher()  # at the start of a command
    >>> _ = (folder / "big").write_bytes(b"x" * 3_000_000)
    >>> check()
    'the workspace went over its disk budget of 1 MB (2 MB written); delete files to go on'
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

_MIB = 1 << 20


def tree_bytes(root: str | os.PathLike[str]) -> int:
    """Disk space (allocated blocks) of everything under ``root``, links not followed."""
    total = 0
    stack = [os.fspath(root)]
    while stack:
        try:
            entries = os.scandir(stack.pop())
        except OSError:
            continue
        with entries:
            for entry in entries:
                try:
                    info = entry.stat(follow_symlinks=False)
                except OSError:
                    continue
                total += info.st_blocks * 512
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
    return total


class WorkspaceDisk:
    """The disk budget of one sandbox's workspace, whose writes land under ``root`` on the host."""

    def __init__(self, root: Path, limit_mb: int) -> None:
        if limit_mb < 1:
            raise ValueError(f"max_workspace_mb must be >= 1, got {limit_mb}")
        self.root = root
        self.limit_mb = limit_mb
        self.base = tree_bytes(root)  # what was there before the sandbox wrote anything

    def written(self) -> int:
        """Bytes the sandbox has added to the workspace so far."""
        return max(tree_bytes(self.root) - self.base, 0)

    def watcher(self) -> Callable[[], str | None]:
        """A check for one command, made when it starts: the reason to stop it once it has grown
        the workspace past the budget, else ``None``."""
        at_start = self.written()
        limit = self.limit_mb * _MIB

        def check() -> str | None:
            written = self.written()
            if written > limit and written > at_start:
                return (
                    f"the workspace went over its disk budget of {self.limit_mb} MB "
                    f"({written // _MIB} MB written); delete files to go on"
                )
            return None

        return check
