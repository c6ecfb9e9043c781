"""Run one host process under a wall-clock limit with a capped, drained output pipe.

Shared by the bubblewrap and local runtimes. The child gets its own process group (so a timeout
kills everything it started that stayed in the group) and one pipe for stdout and stderr
together. Output beyond the cap is read into a scratch buffer and dropped, so a writer of
gigabytes costs pipe bandwidth, never memory; what is kept is the head and the tail, with a
marker saying how many bytes were dropped in between. An optional watch (the workspace's disk
budget) runs in its own thread, so however long one of its checks takes, it never delays the
timeout.

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
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

_READ_CHUNK = 1 << 20
_PIPE_SIZE = 1 << 20
#: After a kill, how long to keep reading what is left in the pipe before giving up on it.
_DRAIN_AFTER_KILL_S = 2.0
#: How often the reading loop looks whether the watch thread asked for a stop.
_WATCH_POLL_S = 0.05
#: How long the end of a command waits for a cancelled watch check to return.
_WATCH_JOIN_S = 5.0

#: A check run while a process runs: it gets an event that is set when its answer is no longer
#: wanted (a long check should return early), and returns a reason to stop the process or None.
Watch = Callable[[threading.Event], str | None]


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


class _WatchThread(threading.Thread):
    """Runs ``watch`` every ``every_s`` seconds (and at least twice as long apart as the last
    check took, so checks never take more than a third of a core) until it gives a reason or
    :meth:`finish` is called."""

    def __init__(self, watch: Watch, every_s: float) -> None:
        super().__init__(name="arenagym-watch", daemon=True)
        self.watch = watch
        self.every_s = every_s
        self.done = threading.Event()
        self.reason: str | None = None
        self.fired = threading.Event()

    def run(self) -> None:
        pause = self.every_s
        while not self.done.wait(pause):
            started = time.monotonic()
            reason = self.watch(self.done)
            if reason is not None and not self.done.is_set():
                self.reason = reason
                self.fired.set()
                return
            pause = max(self.every_s, 2 * (time.monotonic() - started))

    def finish(self) -> None:
        """Stop checking and wait (briefly: a check in flight is cancelled) for the thread."""
        self.done.set()
        self.join(_WATCH_JOIN_S)


def run_capped(
    argv: Sequence[str],
    *,
    timeout_s: float,
    max_output_bytes: int,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
    on_kill: Callable[[], None] | None = None,
    on_start: Callable[[int], None] | None = None,
    watch: Watch | None = None,
    watch_every_s: float = 0.2,
) -> ProcessResult:
    """Run ``argv`` in a new process group; kill the group at ``timeout_s`` (then ``on_kill``,
    e.g. to kill a cgroup's stragglers). ``on_start`` gets the group's id as soon as it exists
    (so another thread can kill it early). ``watch`` is called from a separate thread every
    ``watch_every_s`` while the process runs (never delaying the timeout); when it returns a
    reason, the group is killed as at a timeout and the reason is the result's ``stopped_by``.
    Never raises for what the process does; raises ``OSError`` only when it cannot be started."""
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
    watcher = _WatchThread(watch, watch_every_s) if watch is not None else None
    poller = select.poll()
    poller.register(read_fd, select.POLLIN | select.POLLHUP | select.POLLERR)
    try:
        if watcher is not None:
            watcher.start()
        eof = False
        while not eof:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                timed_out = True
                break
            if watcher is not None:
                if watcher.fired.is_set():
                    stopped_by = watcher.reason
                    break
                remaining = min(remaining, _WATCH_POLL_S)
            if not poller.poll(remaining * 1000):
                continue
            n = os.readv(read_fd, [scratch])
            if n == 0:
                eof = True
            else:
                buffer.add(view[:n])
        exit_code: int | None = None
        if not timed_out and stopped_by is None:
            # the output is closed, but the process may live on (it closed its output and went
            # on writing files): wait for it under the same deadline and watch
            exit_code, timed_out, stopped_by = _wait_for_exit(proc, deadline, watcher)
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
            proc.wait()
    finally:
        if watcher is not None and watcher.is_alive():
            watcher.finish()
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


def _wait_for_exit(
    proc: subprocess.Popen[bytes], deadline: float, watcher: _WatchThread | None
) -> tuple[int | None, bool, str | None]:
    """Wait for ``proc`` until ``deadline`` (a process that is just exiting gets a last 50 ms)
    or until the watch asks for a stop: (exit code, timed out, stop reason)."""
    while True:
        remaining = deadline - time.monotonic()
        step = max(remaining, 0.05) if watcher is None else min(max(remaining, 0.05), _WATCH_POLL_S)
        try:
            return proc.wait(timeout=step), False, None
        except subprocess.TimeoutExpired:
            if watcher is not None and watcher.fired.is_set():
                return None, False, watcher.reason
            if remaining <= step:
                return None, True, None


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def decode_output(data: bytes) -> str:
    """Decode command output as UTF-8, replacing invalid bytes (commands print anything)."""
    return data.decode("utf-8", errors="replace")
