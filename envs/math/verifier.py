r"""Answer extraction and time-limited checking with `math-verify`.

:func:`extract_answer` finds the final answer in a response (the last ``\boxed{}``,
``<answer>...</answer>``, or "the answer is ..."; the methods and their order are configurable).
:class:`AnswerChecker` decides whether it equals the reference answer with ``math_verify.parse`` and
``math_verify.verify`` (so ``1/2``, ``0.5``, ``\frac{1}{2}``, ``\dfrac12`` are one answer, ``x=3``
matches ``3``, and sets and intervals compare as sets), under a wall-clock limit per check, so that
a pathological answer such as ``9^{9^{9^{9}}}`` cannot hang a step.

math-verify's own time limit uses ``signal.alarm`` and so only works in the main thread. Here the
main thread uses a ``setitimer`` alarm of its own, and any other thread (the benchmark runner and
rollout engines step envs in thread pools) sends the check to a small pool of worker processes,
killing a worker that overruns.

Example:
    >>> checker = AnswerChecker(timeout_s=5)
    >>> extract_answer(r"so x = \boxed{\dfrac12}.")
    '\\dfrac12'
    >>> checker.check(r"\frac{1}{2}", "0.5").correct
    True
    >>> checker.check(r"[1, 3)", "(1, 3)").correct
    False
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import json
import logging
import os
import queue
import select
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from arenagym.envs.core.parsing import answer_is_phrase, last_boxed, last_tag
from arenagym.envs.core.text_env import EnvInfrastructureError

#: Extraction methods, tried in the configured order; the first that finds an answer wins.
EXTRACTORS = {
    "boxed": last_boxed,
    "answer_tag": lambda text: last_tag(text, "answer"),
    "answer_is": answer_is_phrase,
}
DEFAULT_EXTRACTION: tuple[str, ...] = ("boxed", "answer_tag", "answer_is")


class _DropTimeoutDisabledWarning(logging.Filter):
    """math-verify warns once that its own alarm is off; here the limit is enforced outside it."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Timeout is disabled" not in record.getMessage()


for _name in ("math_verify.grader", "math_verify.parser"):
    logging.getLogger(_name).addFilter(_DropTimeoutDisabledWarning())


def extract_answer(text: str, methods: Sequence[str] = DEFAULT_EXTRACTION) -> str | None:
    """The final answer in ``text`` by the first of ``methods`` that finds one, else ``None``."""
    for method in methods:
        answer = EXTRACTORS[method](text)
        if answer:
            return answer
    return None


def check_extraction_methods(methods: Sequence[str]) -> tuple[str, ...]:
    """``methods`` as a tuple, or ``ValueError`` naming the valid ones."""
    if isinstance(methods, str) or not methods:
        raise ValueError(f"answer_extraction must be a non-empty list of {sorted(EXTRACTORS)}")
    unknown = [m for m in methods if m not in EXTRACTORS]
    if unknown:
        raise ValueError(f"unknown answer_extraction method(s) {unknown}; use {sorted(EXTRACTORS)}")
    return tuple(methods)


@dataclass(frozen=True)
class Verdict:
    """The result of one check: ``parsed`` is how math-verify read the answer (for info/logs)."""

    correct: bool
    parsed: str
    timed_out: bool = False


# ------------------------------------------------------------------ the check itself
@functools.cache
def _extraction_config() -> list[Any]:
    from math_verify import ExprExtractionConfig, LatexExtractionConfig

    return [LatexExtractionConfig(), ExprExtractionConfig()]


@functools.lru_cache(maxsize=4096)
def _parse(answer: str) -> list[Any]:
    from math_verify import parse

    parsed = parse("\\boxed{" + answer + "}", _extraction_config(), parsing_timeout=None)
    if not parsed:  # e.g. prose inside <answer> tags: let math-verify search the raw text
        parsed = parse(answer, _extraction_config(), parsing_timeout=None)
    return parsed


def _check_unlimited(gold: str, answer: str) -> tuple[bool, str]:
    from math_verify import verify

    gold_parsed = _parse(gold)
    if not gold_parsed:
        raise ValueError(f"math-verify cannot parse the reference answer {gold!r}")
    answer_parsed = _parse(answer)
    correct = bool(
        answer_parsed
        and verify(gold_parsed, answer_parsed, allow_set_relation_comp=True, timeout_seconds=None)
    )
    return correct, str(answer_parsed[0]) if answer_parsed else ""


@functools.cache
def _warm_up() -> None:
    _check_unlimited("1", "1")


class _Overrun(BaseException):
    """Not an ``Exception``: math-verify and sympy catch those, and would swallow the alarm."""


@contextlib.contextmanager
def _alarm(seconds: float) -> Iterator[None]:
    def _raise(signum: int, frame: Any) -> None:
        raise _Overrun

    previous = signal.signal(signal.SIGALRM, _raise)
    # re-fire every 50 ms after the deadline, in case a C extension delays or drops one alarm
    signal.setitimer(signal.ITIMER_REAL, seconds, 0.05)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# ------------------------------------------------------- worker processes for threads
def _serve() -> None:
    """The worker's loop: one JSON ``[gold, answer]`` line in, one JSON result line out."""
    _warm_up()  # import math-verify and sympy before the first timed check
    print(json.dumps("ready"), flush=True)
    for line in sys.stdin:
        gold, answer = json.loads(line)
        try:
            reply: list[Any] = ["ok", *_check_unlimited(gold, answer)]
        except Exception as error:
            reply = ["error", f"{type(error).__name__}: {error}"]
        print(json.dumps(reply), flush=True)


class _Worker:
    """A ``python -m arenagym.envs.math.verifier`` subprocess (not multiprocessing: its spawn
    re-imports the user's ``__main__``, and fork is unsafe in a threaded process)."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "arenagym.envs.math.verifier"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            start_new_session=True,
        )
        if self.read(120) != "ready":
            self.kill()
            raise EnvInfrastructureError("the math-verify worker process did not start")

    def send(self, gold: str, answer: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps([gold, answer]) + "\n")
        self.process.stdin.flush()

    def read(self, timeout_s: float) -> Any:
        """The next reply, or ``None`` if none came within ``timeout_s``; EOFError if it died."""
        assert self.process.stdout is not None
        ready, _, _ = select.select([self.process.stdout], [], [], timeout_s)
        if not ready:
            return None
        line = self.process.stdout.readline()
        if not line:
            raise EOFError(f"worker exited with code {self.process.poll()}")
        return json.loads(line)

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(5)
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()


class _WorkerPool:
    """Up to ``size`` worker processes shared by all checkers of this process."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._idle: queue.LifoQueue[_Worker] = queue.LifoQueue()
        self._lock = threading.Lock()
        self._started = 0
        self._all: set[_Worker] = set()

    def check(self, gold: str, answer: str, timeout_s: float) -> tuple[bool, str] | None:
        """The check's result, or ``None`` when it overran ``timeout_s`` (its worker is killed)."""
        worker = self._acquire()
        try:
            worker.send(gold, answer)
            reply = worker.read(timeout_s)
            if reply is None:
                self._discard(worker)
                return None
        except (EOFError, OSError, ValueError) as error:
            self._discard(worker)
            raise EnvInfrastructureError(f"the math-verify worker died: {error}") from error
        with self._lock:
            if worker in self._all:  # else shutdown() killed it meanwhile
                self._idle.put(worker)
        if reply[0] == "error":
            raise ValueError(reply[1])
        return bool(reply[1]), str(reply[2])

    def _acquire(self) -> _Worker:
        """An idle worker, a new one while fewer than ``size`` exist, else wait for one."""
        while True:
            with self._lock:
                try:
                    return self._idle.get_nowait()
                except queue.Empty:
                    spawn = self._started < self.size
                    if spawn:
                        self._started += 1
            if spawn:
                break
            try:  # wake up now and then: a worker discarded meanwhile frees a slot
                return self._idle.get(timeout=0.1)
            except queue.Empty:
                continue
        try:
            worker = _Worker()
        except BaseException:
            with self._lock:
                self._started -= 1
            raise
        with self._lock:
            self._all.add(worker)
        return worker

    def _discard(self, worker: _Worker) -> None:
        worker.kill()
        with self._lock:
            if worker in self._all:  # not already counted out by shutdown()
                self._started -= 1
                self._all.discard(worker)

    def shutdown(self) -> None:
        """Kill every worker; later checks start new ones (checks in flight fail)."""
        with self._lock:
            workers, self._all = list(self._all), set()
            self._started = 0
            while not self._idle.empty():
                self._idle.get_nowait()
        for worker in workers:
            worker.kill()


_POOL = _WorkerPool(size=max(1, min(4, os.cpu_count() or 1)))
atexit.register(_POOL.shutdown)


class AnswerChecker:
    """Checks answers against references with math-verify, each check under ``timeout_s`` seconds.

    A check that overruns counts as wrong and is reported with ``timed_out=True``.
    """

    def __init__(self, timeout_s: float = 5.0) -> None:
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be positive, got {timeout_s}")
        self.timeout_s = float(timeout_s)

    def check(self, gold: str, answer: str) -> Verdict:
        """Whether ``answer`` (an extracted final answer) equals the reference ``gold``."""
        if threading.current_thread() is threading.main_thread():
            _warm_up()  # import and initialise math-verify and sympy outside the time limit
            try:
                with _alarm(self.timeout_s):
                    correct, parsed = _check_unlimited(gold, answer)
            except _Overrun:
                return Verdict(False, "", timed_out=True)
            return Verdict(correct, parsed)
        result = _POOL.check(gold, answer, self.timeout_s)
        if result is None:
            return Verdict(False, "", timed_out=True)
        return Verdict(*result)


if __name__ == "__main__":
    _serve()
