r"""Answer extraction and bounded checking with `math-verify`.

:func:`extract_answer` finds the final answer in a response (the last ``\boxed{}``,
``<answer>...</answer>``, or "the answer is ..."; the methods and their order are configurable).
:class:`AnswerChecker` decides whether it equals the reference answer with ``math_verify.parse`` and
``math_verify.verify`` (so ``1/2``, ``0.5``, ``\frac{1}{2}``, ``\dfrac12`` are one answer, ``x=3``
matches ``3``, and sets and intervals compare as sets).

A verdict must not depend on how fast or how busy the machine is, so a check is bounded twice, in
this order:

1. a size bound, checked before anything is parsed: an answer longer than
   :data:`MAX_ANSWER_LENGTH` characters or nested deeper than :data:`MAX_ANSWER_NESTING`
   brackets is wrong without being read (:func:`answer_size_problem`). Parsing cost grows fast
   with both (a few hundred characters of ``x`` take a second; twelve nested braces, seconds),
   so without this bound such answers were read on a fast machine and timed out on a slow one;
2. a CPU-time limit, for short answers that are costly to evaluate (``9^{9^{9^{9}}}``,
   ``(x+1)^{1000}``): CPU time, not wall-clock time, so that other processes competing for the
   machine do not make a check time out (a wall-clock backstop of several times the limit only
   stops a check that cannot run at all). An answer that timed out is remembered, and later
   checks of it against the same reference under the same limit time out at once: within a
   process, a timeout is a stable verdict for that input, not a coin toss repeated each time.

math-verify's own time limit uses ``signal.alarm`` and so only works in the main thread. Here the
main thread sets interval timers of its own, and any other thread (the benchmark runner and
rollout engines step envs in thread pools) sends the check to a small pool of worker processes,
which enforce the same CPU limit; a worker that overruns is replaced.

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


#: The longest final answer that is parsed, in characters; longer ones are wrong unread.
MAX_ANSWER_LENGTH = 400
#: The deepest nesting of ``(``, ``[`` and ``{`` in an answer that is parsed.
MAX_ANSWER_NESTING = 8


def answer_size_problem(
    answer: str,
    max_length: int = MAX_ANSWER_LENGTH,
    max_nesting: int = MAX_ANSWER_NESTING,
) -> str:
    r"""Why ``answer`` is too big to be parsed, or ``""`` when it is not (a pure function of it).

    >>> answer_size_problem(r"\frac{\sqrt{3}}{2}")
    ''
    >>> answer_size_problem("x" * 500)
    'the answer has 500 characters, over the limit of 400'
    >>> answer_size_problem("{" * 9 + "1" + "}" * 9)
    'the answer nests brackets 9 deep, over the limit of 8'
    """
    if len(answer) > max_length:
        return f"the answer has {len(answer)} characters, over the limit of {max_length}"
    depth = deepest = 0
    for char in answer:
        if char in "([{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in ")]}" and depth:
            depth -= 1
    if deepest > max_nesting:
        return f"the answer nests brackets {deepest} deep, over the limit of {max_nesting}"
    return ""


@dataclass(frozen=True)
class Verdict:
    """The result of one check: ``parsed`` is how math-verify read the answer (for info/logs).

    ``note`` says why the answer was not read, when it was not (over the size bound, or
    math-verify failed on it); such answers are wrong. A timed-out check has ``timed_out``.
    """

    correct: bool
    parsed: str
    timed_out: bool = False
    note: str = ""


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


def _check_unlimited(gold: str, answer: str) -> tuple[bool, str, str]:
    r"""``(correct, parsed answer, note)`` with no time limit.

    A reference answer math-verify cannot read raises ``ValueError`` (the data is wrong); anything
    math-verify raises on the agent's answer (e.g. ``ValueError`` of CPython's int-conversion limit
    on ``\binom{15000}{7500}``) makes the answer wrong, with a note, the same way every time.
    """
    from math_verify import verify

    gold_parsed = _parse(gold)
    if not gold_parsed:
        raise ValueError(f"math-verify cannot parse the reference answer {gold!r}")
    parsed = ""
    try:
        answer_parsed = _parse(answer)
        if not answer_parsed:
            return False, "", ""
        parsed = str(answer_parsed[0])
        correct = bool(
            verify(gold_parsed, answer_parsed, allow_set_relation_comp=True, timeout_seconds=None)
        )
    except Exception as error:
        return False, parsed, f"math-verify failed on the answer: {type(error).__name__}: {error}"
    return correct, parsed, ""


@functools.cache
def _warm_up() -> None:
    _check_unlimited("1", "1")


class _Overrun(BaseException):
    """Not an ``Exception``: math-verify and sympy catch those, and would swallow the alarm."""


def wall_clock_backstop(cpu_s: float) -> float:
    """The wall-clock time after which a check limited to ``cpu_s`` CPU seconds is stopped anyway.

    Generous (4x the limit plus 5 s), so that only a check that cannot get the CPU at all meets
    it; it keeps a starved or stuck check from hanging a step.
    """
    return 4.0 * cpu_s + 5.0


@contextlib.contextmanager
def _limit(cpu_s: float) -> Iterator[None]:
    """Raise :class:`_Overrun` in the main thread after ``cpu_s`` seconds of the process's CPU time.

    (or after :func:`wall_clock_backstop` seconds of wall-clock time). The CPU timer counts what
    this process runs, so a machine busy with other processes does not shorten the limit.
    """

    def _raise(signum: int, frame: Any) -> None:
        raise _Overrun

    previous = {
        signum: signal.signal(signum, _raise) for signum in (signal.SIGPROF, signal.SIGALRM)
    }
    # re-fire every 50 ms after the deadline, in case a C extension delays or drops one signal
    signal.setitimer(signal.ITIMER_PROF, cpu_s, 0.05)
    signal.setitimer(signal.ITIMER_REAL, wall_clock_backstop(cpu_s), 0.05)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.setitimer(signal.ITIMER_REAL, 0)
        for signum, handler in previous.items():
            signal.signal(signum, handler)


# ------------------------------------------------------- worker processes for threads
def _serve() -> None:
    """The worker's loop: one JSON ``[gold, answer, cpu_s]`` line in, one JSON result line out.

    Replies are ``["ok", correct, parsed, note]``, ``["timeout"]`` (the CPU limit was reached)
    or ``["error", message]`` (the reference answer is unreadable). The protocol owns stdout: a
    library that prints would corrupt it, so ``sys.stdout`` is pointed at stderr while checking.
    """
    protocol = sys.stdout
    sys.stdout = sys.stderr
    _warm_up()  # import math-verify and sympy before the first timed check
    print(json.dumps("ready"), file=protocol, flush=True)
    for line in sys.stdin:
        gold, answer, cpu_s = json.loads(line)
        try:
            with _limit(float(cpu_s)):
                reply: list[Any] = ["ok", *_check_unlimited(gold, answer)]
        except _Overrun:
            reply = ["timeout"]
        except Exception as error:
            reply = ["error", f"{type(error).__name__}: {error}"]
        print(json.dumps(reply), file=protocol, flush=True)


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

    def send(self, gold: str, answer: str, cpu_s: float) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps([gold, answer, cpu_s]) + "\n")
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

    def check(self, gold: str, answer: str, timeout_s: float) -> tuple[bool, str, str] | None:
        """The check's result, or ``None`` when it overran ``timeout_s`` of CPU time (or the
        wall-clock backstop); the worker that overran is replaced."""
        worker = self._acquire()
        try:
            worker.send(gold, answer, timeout_s)
            reply = worker.read(wall_clock_backstop(timeout_s))
            if reply is None or reply[0] == "timeout":
                self._discard(worker)  # (interrupted mid-computation: start afresh)
                return None
        except (EOFError, OSError, ValueError) as error:
            self._discard(worker)
            raise EnvInfrastructureError(f"the math-verify worker died: {error}") from error
        with self._lock:
            if worker in self._all:  # else shutdown() killed it meanwhile
                self._idle.put(worker)
        if reply[0] == "error":
            raise ValueError(reply[1])
        return bool(reply[1]), str(reply[2]), str(reply[3])

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


class _TimedOut:
    """The checks that timed out in this process (the most recent ``size``), so that they time
    out again at once: the same input, the same verdict, whatever the machine does meanwhile."""

    def __init__(self, size: int = 1024) -> None:
        self.size = size
        self._keys: dict[tuple[str, str, float], None] = {}
        self._lock = threading.Lock()

    def __contains__(self, key: tuple[str, str, float]) -> bool:
        with self._lock:
            return key in self._keys

    def add(self, key: tuple[str, str, float]) -> None:
        with self._lock:
            self._keys[key] = None
            while len(self._keys) > self.size:
                del self._keys[next(iter(self._keys))]

    def clear(self) -> None:
        with self._lock:
            self._keys.clear()


_TIMED_OUT = _TimedOut()


class AnswerChecker:
    """Checks answers against references with math-verify: size-bounded, then CPU-time-limited.

    An answer over the size bound (``max_answer_length`` characters, ``max_answer_nesting``
    nested brackets) is wrong without being parsed (``Verdict.note`` says why). A check that
    overruns ``timeout_s`` seconds of CPU time counts as wrong and is reported with
    ``timed_out=True``; so is every later check of the same answer against the same reference
    under the same limit in this process (see the module docstring).
    """

    def __init__(
        self,
        timeout_s: float = 5.0,
        *,
        max_answer_length: int = MAX_ANSWER_LENGTH,
        max_answer_nesting: int = MAX_ANSWER_NESTING,
    ) -> None:
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be positive, got {timeout_s}")
        for name, value in (
            ("max_answer_length", max_answer_length),
            ("max_answer_nesting", max_answer_nesting),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        self.timeout_s = float(timeout_s)
        self.max_answer_length = max_answer_length
        self.max_answer_nesting = max_answer_nesting

    def check(self, gold: str, answer: str) -> Verdict:
        """Whether ``answer`` (an extracted final answer) equals the reference ``gold``."""
        problem = answer_size_problem(answer, self.max_answer_length, self.max_answer_nesting)
        if problem:
            return Verdict(False, "", note=problem)
        key = (gold, answer, self.timeout_s)
        if key in _TIMED_OUT:
            return Verdict(False, "", timed_out=True)
        if threading.current_thread() is threading.main_thread():
            _warm_up()  # import and initialise math-verify and sympy outside the time limit
            try:
                with _limit(self.timeout_s):
                    result: tuple[bool, str, str] | None = _check_unlimited(gold, answer)
            except _Overrun:
                result = None
        else:
            result = _POOL.check(gold, answer, self.timeout_s)
        if result is None:
            _TIMED_OUT.add(key)
            return Verdict(False, "", timed_out=True)
        correct, parsed, note = result
        return Verdict(correct, parsed, note=note)


if __name__ == "__main__":
    _serve()
