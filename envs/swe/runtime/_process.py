"""Run one host process under a wall-clock limit with a capped, drained output pipe.

Shared by the bubblewrap and local runtimes. The child gets its own process group (so a timeout
kills everything it started that stayed in the group) and one pipe for stdout and stderr
together. Output beyond the cap is read into a scratch buffer and dropped, so a writer of
gigabytes costs pipe bandwidth, never memory; what is kept is the head and the tail, with a
marker saying how many bytes were dropped in between.

Example::

    >>> result = run_capped(["sh", "-c", "echo hello; exit 3"], timeout_s=5, max_output_bytes=100)
    >>> (result.exit_code, result.output, result.timed_out, result.truncated)
    (3, b'hello\\n', False, False)
    >>> big = run_capped(["head", "-c", "5000", "/dev/zero"], timeout_s=5, max_output_bytes=100)
    >>> (big.truncated, big.total_bytes, big.output.count(b"\\0"))
    (True, 5000, 100)
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import select
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

_READ_CHUNK = 1 << 20
_PIPE_SIZE = 1 << 20
#: After a kill, how long to keep reading what is left in the pipe before giving up on it.
_DRAIN_AFTER_KILL_S = 2.0


@dataclass(frozen=True)
class ProcessResult:
    """What a host process did: exit code (None when killed by us), kept output bytes."""

    exit_code: int | None
    output: bytes
    total_bytes: int
    duration_s: float
    timed_out: bool
    truncated: bool
    stopped_by: str | None = None  # what ``watch`` said when it stopped the process


class _CappedBuffer:
    """Keeps the first ``head_limit`` and the last ``tail_limit`` bytes of a stream."""

    def __init__(self, max_bytes: int) -> None:
        self.tail_limit = max_bytes // 4
        self.head_limit = max_bytes - self.tail_limit
        self.head = bytearray()
        self.tail = bytearray()
        self.total = 0

    def add(self, chunk: memoryview) -> None:
        self.total += len(chunk)
        room = self.head_limit - len(self.head)
        if room > 0:
            self.head += chunk[:room]
            chunk = chunk[room:]
        if chunk and self.tail_limit:
            if len(chunk) >= self.tail_limit:
                self.tail[:] = chunk[-self.tail_limit :]
            else:
                self.tail += chunk
                if len(self.tail) > self.tail_limit:
                    del self.tail[: len(self.tail) - self.tail_limit]

    @property
    def truncated(self) -> bool:
        return self.total > len(self.head) + len(self.tail)

    def value(self) -> bytes:
        if not self.truncated:
            return bytes(self.head + self.tail)
        dropped = self.total - len(self.head) - len(self.tail)
        if not self.tail:
            return bytes(self.head)
        marker = f"\n[... {dropped} bytes of output dropped ...]\n".encode()
        return bytes(self.head) + marker + bytes(self.tail)


def run_capped(
    argv: Sequence[str],
    *,
    timeout_s: float,
    max_output_bytes: int,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
    on_kill: Callable[[], None] | None = None,
    on_start: Callable[[int], None] | None = None,
    watch: Callable[[], str | None] | None = None,
    watch_every_s: float = 0.2,
) -> ProcessResult:
    """Run ``argv`` in a new process group; kill the group at ``timeout_s`` (then ``on_kill``,
    e.g. to kill a cgroup's stragglers). ``on_start`` gets the group's id as soon as it exists
    (so another thread can kill it early). ``watch`` is called every ``watch_every_s`` while the
    process runs; when it returns a reason, the group is killed as at a timeout and the reason is
    the result's ``stopped_by``. Never raises for what the process does; raises ``OSError`` only
    when it cannot be started."""
    started = time.monotonic()
    deadline = started + max(timeout_s, 0.0)
    read_fd, write_fd = os.pipe()
    with contextlib.suppress(OSError):
        fcntl.fcntl(read_fd, fcntl.F_SETPIPE_SZ, _PIPE_SIZE)
    try:
        proc = subprocess.Popen(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=write_fd,
            stderr=write_fd,
            env=dict(env) if env is not None else None,
            cwd=cwd,
            process_group=0,
            close_fds=True,
        )
    except BaseException:
        os.close(read_fd)
        os.close(write_fd)
        raise
    os.close(write_fd)
    if on_start is not None:
        on_start(proc.pid)
    buffer = _CappedBuffer(max_output_bytes)
    scratch = bytearray(_READ_CHUNK)
    view = memoryview(scratch)
    timed_out = False
    stopped_by: str | None = None
    next_watch = started + watch_every_s
    poller = select.poll()
    poller.register(read_fd, select.POLLIN | select.POLLHUP | select.POLLERR)
    try:
        eof = False
        while not eof:
            now = time.monotonic()
            remaining = deadline - now
            if remaining <= 0:
                timed_out = True
                break
            if watch is not None:
                if now >= next_watch:
                    next_watch = now + watch_every_s
                    stopped_by = watch()
                    if stopped_by is not None:
                        break
                remaining = min(remaining, next_watch - now)
            if not poller.poll(remaining * 1000):
                continue
            n = os.readv(read_fd, [scratch])
            if n == 0:
                eof = True
            else:
                buffer.add(view[:n])
        if timed_out or stopped_by is not None:
            _kill_group(proc.pid)
            if on_kill is not None:
                on_kill()
            drain_deadline = time.monotonic() + _DRAIN_AFTER_KILL_S
            while (left := drain_deadline - time.monotonic()) > 0 and poller.poll(left * 1000):
                n = os.readv(read_fd, [scratch])
                if n == 0:
                    break
                buffer.add(view[:n])
        try:
            exit_code: int | None = proc.wait(timeout=max(deadline - time.monotonic(), 0.05))
        except subprocess.TimeoutExpired:
            timed_out = True
            _kill_group(proc.pid)
            if on_kill is not None:
                on_kill()
            proc.wait()
            exit_code = None
    finally:
        os.close(read_fd)
        if proc.returncode is None:
            _kill_group(proc.pid)
            proc.wait()
    if timed_out or stopped_by is not None:
        exit_code = None
    return ProcessResult(
        exit_code=exit_code,
        output=buffer.value(),
        total_bytes=buffer.total,
        duration_s=time.monotonic() - started,
        timed_out=timed_out,
        truncated=buffer.truncated,
        stopped_by=stopped_by,
    )


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def decode_output(data: bytes) -> str:
    """Decode command output as UTF-8, replacing invalid bytes (commands print anything)."""
    return data.decode("utf-8", errors="replace")
