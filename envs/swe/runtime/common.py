"""What the runtimes share: the marker of sandbox processes, results of commands, the scripts
that move files in and out of a sandbox, and the removal of a sandbox's temporary directory.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess

from ._process import decode_output
from .interface import MAX_READ_BYTES, CommandResult, UnreadableFileError

#: Set in the environment of every sandboxed command (and its process name), so that leftover
#: processes can be found. Its value is only the runtime's name (``bubblewrap``, ``local``): the
#: sandbox sees it, so it must say nothing about the host (no temporary folder's name), and the
#: same for every episode, so that a command's output does not change from run to run.
SANDBOX_MARKER = "ARENAGYM_SANDBOX"

#: Reads ``$1`` inside a sandbox: exit 2 = missing, 3 = a directory, 4 = not a regular file
#: (FIFO, device); at most MAX_READ_BYTES + 1 bytes, so a caller can tell a file is too big.
READ_SCRIPT = (
    'if [ -d "$1" ]; then exit 3; elif [ ! -e "$1" ]; then exit 2; '
    f'elif [ ! -f "$1" ]; then exit 4; else exec head -c {MAX_READ_BYTES + 1} -- "$1"; fi'
)
#: Writes stdin to ``$1`` inside a sandbox: exit 3 = a directory, 4 = not a regular file.
WRITE_SCRIPT = (
    'if [ -d "$1" ]; then exit 3; elif [ -e "$1" ] && [ ! -f "$1" ]; then exit 4; fi; '
    'mkdir -p -- "$(dirname -- "$1")" && cat > "$1"'
)


def raise_for_path(path: str, code: int) -> None:
    """Raise what ``open`` would for :data:`READ_SCRIPT`'s / :data:`WRITE_SCRIPT`'s exit codes."""
    if code == 2:
        raise FileNotFoundError(path)
    if code == 3:
        raise IsADirectoryError(path)
    if code == 4:
        raise UnreadableFileError(f"{path} is not a regular file")


def checked_read(path: str, data: bytes) -> bytes:
    """``data`` read by :data:`READ_SCRIPT`, or :class:`UnreadableFileError` if it was cut."""
    if len(data) > MAX_READ_BYTES:
        raise UnreadableFileError(f"{path} is larger than {MAX_READ_BYTES >> 20} MiB")
    return data


def command_result(
    exit_code: int | None,
    output: bytes,
    duration_s: float,
    timed_out: bool,
    truncated: bool,
    oom: bool,
    disk: str | None = None,
    note: str | None = None,
) -> CommandResult:
    """The :class:`CommandResult` of a host process: why it was killed (timeout, memory, or
    the ``disk`` budget's message), with a line saying so after its output, and else ``note``
    (e.g. that the workspace is still over its budget) on a line of its own."""
    killed_reason: str | None = None
    if timed_out:
        killed_reason = "timeout"
    elif oom:
        killed_reason = "memory"
    elif disk is not None:
        killed_reason = "disk"
    if killed_reason is not None:
        exit_code = None
    text = decode_output(output)
    if oom and not timed_out:
        text += "\n[killed: the command went over its memory limit]\n"
    elif timed_out:
        text += "\n[killed: the command ran past its timeout]\n"
    if disk is not None:
        text += f"\n[{'killed' if killed_reason == 'disk' else 'note'}: {disk}]\n"
    elif note is not None:
        text += f"\n[note: {note}]\n"
    return CommandResult(
        exit_code=exit_code,
        output=text,
        duration_s=duration_s,
        timed_out=timed_out,
        truncated=truncated,
        killed_reason=killed_reason,
    )


def force_remove(function: object, path: str, excinfo: object) -> None:
    """rmtree error hook: make read-only directories writable and retry (the sandbox may have
    chmod-ed its files)."""
    with contextlib.suppress(OSError):
        parent = os.path.dirname(path)
        os.chmod(parent, 0o700)
        if os.path.isdir(path) and not os.path.islink(path):
            os.chmod(path, 0o700)
            shutil.rmtree(path, ignore_errors=True)
        else:
            os.unlink(path)


def remove_tree(path: str | os.PathLike[str]) -> None:
    """Remove ``path`` and everything under it, whatever a sandbox left there: read-only or
    unreadable directories (made writable first), and trees deeper than ``shutil.rmtree`` can
    go (it recurses once per level and stops at Python's recursion limit, a thousand-odd
    levels that a sandbox makes in a second); what it leaves goes to ``rm -rf``, which has no
    depth or path-length limit."""
    with contextlib.suppress(RecursionError):
        shutil.rmtree(path, onerror=force_remove)
    if not os.path.lexists(path):
        return
    target = os.fspath(path)
    # never follows links found inside the tree; makes unreadable directories removable
    subprocess.run(["chmod", "-R", "u+rwx", "--", target], capture_output=True, check=False)
    subprocess.run(["rm", "-rf", "--", target], capture_output=True, check=False)
