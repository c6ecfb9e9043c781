"""Batching for blocking callers: requests made from several threads at once share one batch.

The benchmark runner awaits :meth:`~arenagym.agents.chat.ChatAgent.aact`, whose requests join a
:class:`~arenagym.agents.batching.BatchingQueue` on the event loop. Callers that block instead —
the match runner plays games in a thread pool and calls ``act``, as do users' own threaded
loops — would otherwise send one conversation per backend call, one after another. A
:class:`ThreadBatcher` collects them: the first caller to find the backend idle generates
everything waiting at that moment as one batch; callers that arrive meanwhile wait and go in
the next batch together. A lone caller pays nothing.

Callers that count their episodes (:meth:`ThreadBatcher.episode_started` /
:meth:`~ThreadBatcher.episode_finished`, as the match runner does per game) make the batch wait
for each other: it starts once every live episode is waiting, or ``max_wait_s`` after the
latest request arrived or episode started. Without that, the first game to move would decode alone while the
others wait, and alone again next turn (a batch of 1, then of 15, and so on), which doubles the
rounds of generation on a backend whose time per step hardly depends on the batch size.

If a batch fails, each of its requests is retried alone, so one bad request cannot fail the
others.

Example:
    >>> from arenagym.agents.backends.interface import Completion, SamplingParams
    >>> class Upper:
    ...     calls = 0
    ...     def generate(self, conversations, params):
    ...         Upper.calls += 1
    ...         return [Completion(c[-1]["content"].upper()) for c in conversations]
    >>> batcher = thread_batcher(Upper())
    >>> batcher.generate([{"role": "user", "content": "hi"}], SamplingParams()).text
    'HI'
"""

from __future__ import annotations

import threading
import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass

from arenagym.agents.backends.interface import (
    Completion,
    Conversation,
    GenerationBackend,
    SamplingParams,
)

__all__ = ["ThreadBatcher", "thread_batcher"]


@dataclass
class _Request:
    conversation: Conversation
    params: SamplingParams
    result: Completion | None = None
    error: BaseException | None = None

    @property
    def done(self) -> bool:
        return self.result is not None or self.error is not None


class ThreadBatcher:
    """Batches concurrent blocking ``generate`` calls on one backend.

    Args:
        backend: any :class:`~arenagym.agents.backends.interface.GenerationBackend`; a batch goes
            through its ``generate_each`` (one parameter set, and seed, per row) where it has
            one, else one ``generate`` call per distinct parameters.
        max_batch_size: the most requests in one batch.
    """

    def __init__(
        self, backend: GenerationBackend, max_batch_size: int = 64, max_wait_s: float = 0.25
    ) -> None:
        if max_batch_size < 1:
            raise ValueError(f"max_batch_size must be >= 1, got {max_batch_size}")
        if max_wait_s < 0:
            raise ValueError(f"max_wait_s must be >= 0, got {max_wait_s!r}")
        self.backend = backend
        self.max_batch_size = max_batch_size
        self.max_wait_s = max_wait_s
        self.batch_sizes: list[int] = []
        self._condition = threading.Condition()
        self._pending: list[_Request] = []
        self._busy = False
        self._live = 0
        self._last_arrival = self._last_start = -float("inf")

    def episode_started(self) -> None:
        """Count one live episode: batches wait for its request (up to ``max_wait_s``)."""
        with self._condition:
            self._live += 1
            self._last_start = time.monotonic()

    def episode_finished(self) -> None:
        """Count one live episode less; the others may now all be waiting."""
        with self._condition:
            self._live = max(0, self._live - 1)
            self._condition.notify_all()

    def generate(self, conversation: Conversation, params: SamplingParams) -> Completion:
        """One completion for ``conversation``, generated in a batch with concurrent callers'."""
        request = _Request(list(conversation), params)
        with self._condition:
            self._pending.append(request)
            self._last_arrival = time.monotonic()
            self._condition.notify_all()
            while not request.done:
                if self._busy:
                    self._condition.wait()
                    continue
                wait = self._time_to_wait()
                if wait > 0:
                    self._condition.wait(wait)
                    continue
                self._busy = True
                batch = self._pending[: self.max_batch_size]
                del self._pending[: self.max_batch_size]
                self._condition.release()
                try:
                    self._run(batch)
                finally:
                    self._condition.acquire()
                    self._busy = False
                    self._condition.notify_all()
        if request.error is not None:
            raise request.error
        assert request.result is not None
        return request.result

    def _time_to_wait(self) -> float:
        """Seconds to wait for more counted episodes before starting a batch (0: start now)."""
        if len(self._pending) >= self.max_batch_size:
            return 0.0
        now = time.monotonic()
        if len(self._pending) >= self._live:  # every live episode is waiting ...
            # ... unless episodes are still being started (a round of games begins)
            return max(0.0, self._last_start + self.max_wait_s - now)
        return max(0.0, max(self._last_arrival, self._last_start) + self.max_wait_s - now)

    def _run(self, batch: list[_Request]) -> None:
        self.batch_sizes.append(len(batch))
        try:
            results = self._generate([r.conversation for r in batch], [r.params for r in batch])
        except BaseException as error:  # isolate the request that failed
            if len(batch) == 1:
                batch[0].error = error
                return
            for request in batch:
                try:
                    [request.result] = self._generate([request.conversation], [request.params])
                except BaseException as single_error:
                    request.error = single_error
            return
        for request, result in zip(batch, results, strict=True):
            request.result = result

    def _generate(
        self, conversations: Sequence[Conversation], params: Sequence[SamplingParams]
    ) -> list[Completion]:
        generate_each = getattr(self.backend, "generate_each", None)
        if generate_each is not None:  # per-row seeds: a row samples the same in any batch
            return list(generate_each(conversations, params))
        results: list[Completion | None] = [None] * len(conversations)
        for distinct in dict.fromkeys(params):
            rows = [i for i, p in enumerate(params) if p == distinct]
            for row, completion in zip(
                rows, self.backend.generate([conversations[i] for i in rows], distinct), strict=True
            ):
                results[row] = completion
        return [r for r in results if r is not None]


_BATCHERS: weakref.WeakKeyDictionary[object, ThreadBatcher] = weakref.WeakKeyDictionary()
_BATCHERS_LOCK = threading.Lock()


def thread_batcher(backend: GenerationBackend) -> ThreadBatcher:
    """The :class:`ThreadBatcher` shared by every blocking caller of ``backend``."""
    with _BATCHERS_LOCK:
        try:
            batcher = _BATCHERS.get(backend)
            if batcher is None:
                batcher = _BATCHERS[backend] = ThreadBatcher(backend)
        except TypeError:  # not hashable or not weak-referenceable: no sharing
            return ThreadBatcher(backend)
        return batcher
