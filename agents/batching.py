"""Batching generation requests across episodes: :class:`BatchingQueue` and :func:`shared_queue`.

Why: a model generates a batch of conversations nearly as fast as one, so episodes that wait for
the model at the same time should wait together. Every :class:`~arenagym.agents.chat.ChatAgent`
awaited with ``aact`` sends its requests through a queue: the rollout engine's own (which knows
how many episodes are live), or the :func:`shared_queue` of its backend on the running event loop
(the benchmark runner's concurrent LLM episodes). :func:`check_context` is the one rule for what
fits in the model's context, applied by the agent and by the queue alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import weakref
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

from arenagym.agents.agent import EpisodeStop
from arenagym.agents.backends.interface import (
    Completion,
    Conversation,
    GenerationBackend,
    SamplingParams,
)

__all__ = ["BatchingQueue", "check_context", "shared_queue"]


def check_context(prompt_tokens: int, params: SamplingParams, max_context: int | None) -> None:
    """Raise ``EpisodeStop("context_overflow")`` unless the prompt plus ``max_tokens`` fit.

    A request is sent only if its whole completion fits: a backend must never be asked for more
    than the model's context, and every request of a batch shares one ``max_tokens``.

    Example:
        >>> check_context(100, SamplingParams(max_tokens=28), 128)
        >>> check_context(101, SamplingParams(max_tokens=28), 128)
        Traceback (most recent call last):
        ...
        arenagym.agents.agent.EpisodeStop: the next request needs 101 + 28 tokens, over the context of 128
    """
    if max_context is not None and prompt_tokens + params.max_tokens > max_context:
        raise EpisodeStop(
            "context_overflow",
            f"the next request needs {prompt_tokens} + {params.max_tokens} tokens, over the "
            f"context of {max_context}",
            prompt_tokens=prompt_tokens,
            max_tokens=params.max_tokens,
            max_context=max_context,
        )


# --------------------------------------------------------------------------- batching queue


@dataclass
class _Request:
    conversation: Conversation
    params: SamplingParams
    max_context: int | None  # checked when set, or when check_context (then: the backend's)
    check_context: bool
    future: asyncio.Future[Completion]

    def limit(self, backend: GenerationBackend) -> int | None:
        if self.max_context is not None:
            return self.max_context
        return backend.max_context if self.check_context else None


#: Event-loop turns the queue yields, once its wait is over, before it sends a partial batch.
_LATE_TURNS = 4


class BatchingQueue:
    """Collects the generation requests of concurrent episodes and sends them as batches.

    ``await queue.generate(conversation, params)`` parks the request. One worker task sends
    every parked request to the backend as one ``generate_each(conversations, params_per_row)``
    call when the backend has it (the transformers backend: per-row seeds, so a seeded sample
    does not depend on the batch), else one ``generate`` call per distinct ``SamplingParams``
    apart from the seed (the call uses the first request's seed: reproducible as far as the
    batches are; in a single background thread: calls never overlap, so a backend needs no locking), as
    soon as ``max_batch_size`` are parked, or every live episode is waiting (when episodes are
    counted with :meth:`episode_started` / :meth:`episode_finished`), or ``max_wait_s`` after
    the first one arrived — when episodes are counted, ``max_wait_s`` after the latest one
    arrived: while counted episodes keep arriving (a rollout's start, when every episode resets
    its env at once), the batch waits for them rather than leave them waiting for a whole batch's
    generation; each counted episode adds at most one request, so the wait ends once no other
    arrives for ``max_wait_s`` or all are waiting. A request whose prompt plus ``max_tokens``
    exceeds its ``max_context`` raises :class:`~arenagym.agents.agent.EpisodeStop`
    (``context_overflow``) instead; the prompt is measured with ``backend.count_tokens`` in the
    same thread. If a batch fails, its requests are retried one by one so that one bad request
    fails alone.

    A queue belongs to the event loop that first uses it. ``batch_sizes`` lists the size of
    every backend call made, for tests and measurements.
    """

    def __init__(
        self,
        backend: GenerationBackend,
        *,
        max_batch_size: int = 64,
        max_wait_s: float = 0.01,
    ) -> None:
        if max_batch_size < 1:
            raise ValueError(f"max_batch_size must be >= 1, got {max_batch_size!r}")
        if max_wait_s < 0:
            raise ValueError(f"max_wait_s must be >= 0, got {max_wait_s!r}")
        self.backend = backend
        self.max_batch_size = max_batch_size
        self.max_wait_s = max_wait_s
        self.batch_sizes: list[int] = []
        self._pending: list[_Request] = []
        self._live = 0
        self._wakeup: asyncio.Event | None = None
        self._worker: asyncio.Task[None] | None = None
        self._executor: ThreadPoolExecutor | None = None

    # ------------------------------------------------------------------ episode counting
    def episode_started(self) -> None:
        """Count one more live episode (one that will send requests)."""
        self._live += 1

    def episode_finished(self) -> None:
        """Count one live episode less; the others may now all be waiting."""
        self._live = max(0, self._live - 1)
        if self._wakeup is not None:
            self._wakeup.set()

    # ------------------------------------------------------------------------- requests
    async def generate(
        self,
        conversation: Conversation,
        params: SamplingParams,
        *,
        max_context: int | None = None,
        check_context: bool = False,
    ) -> Completion:
        """The completion of ``conversation``, generated in a batch with other waiting requests.

        A backend with an ``async def agenerate`` (HTTP) gets the request at once instead, as
        one of many concurrent requests: batching is then the server's job.

        Raises:
            EpisodeStop: ``context_overflow`` when the prompt plus ``params.max_tokens`` exceed
                ``max_context`` (if given; with ``check_context``, the backend's context).
            Exception: whatever the backend raised for this conversation.
        """
        loop = asyncio.get_running_loop()
        request = _Request(
            list(conversation), params, max_context, check_context, loop.create_future()
        )
        if inspect.iscoroutinefunction(getattr(self.backend, "agenerate", None)):
            return await self._direct(request)
        if self._wakeup is None:
            self._wakeup = asyncio.Event()
        self._pending.append(request)
        self._wakeup.set()
        if self._worker is None or self._worker.done():
            self._worker = loop.create_task(self._work(), name="arenagym-batching-queue")
        return await request.future

    async def _direct(self, request: _Request) -> Completion:
        """An async backend: check the context in a thread (it may ask the server), then await."""
        loop = asyncio.get_running_loop()

        def check() -> None:
            limit = request.limit(self.backend)
            if limit is not None:
                check_context(
                    self.backend.count_tokens(request.conversation), request.params, limit
                )

        await loop.run_in_executor(None, check)
        self.batch_sizes.append(1)
        completions = await self.backend.agenerate(  # type: ignore[attr-defined]
            [request.conversation], request.params
        )
        return completions[0]

    async def aclose(self) -> None:
        """Stop the worker and release the generation thread (pending requests are cancelled)."""
        if self._worker is not None:
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)
            self._worker = None
        for request in self._pending:
            request.future.cancel()
        self._pending.clear()
        if self._executor is not None:
            self._executor.shutdown(wait=False)
            self._executor = None

    # -------------------------------------------------------------------------- worker
    def _ready(self) -> bool:
        waiting = len(self._pending)
        return waiting >= self.max_batch_size or (self._live > 0 and waiting >= self._live)

    async def _work(self) -> None:
        loop = asyncio.get_running_loop()
        assert self._wakeup is not None
        while True:
            if not self._pending:
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            deadline = loop.time() + self.max_wait_s
            seen, yielded = len(self._pending), False
            while not self._ready():
                left = deadline - loop.time()
                if left > 0:
                    self._wakeup.clear()
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._wakeup.wait(), left)
                elif self._live > 0 and not yielded:
                    # The deadline passed, maybe while the event loop could not run (env threads
                    # holding the GIL): first let it deliver what the env threads finished.
                    for _ in range(_LATE_TURNS):
                        await asyncio.sleep(0)
                    yielded = True
                else:
                    break
                if self._live > 0 and len(self._pending) > seen:
                    # Counted episodes are still arriving (e.g. all of them resetting their
                    # envs at the start): wait max_wait_s more after each arrival rather than
                    # send part of them and leave the rest waiting for that whole batch.
                    seen, yielded = len(self._pending), False
                    deadline = loop.time() + self.max_wait_s
            batch = self._pending[: self.max_batch_size]
            del self._pending[: self.max_batch_size]
            batch = [request for request in batch if not request.future.done()]
            if batch:
                await self._send(batch)

    async def _send(self, batch: list[_Request]) -> None:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix="arenagym-generate")
        loop = asyncio.get_running_loop()
        if callable(getattr(self.backend, "generate_each", None)):
            groups = [batch]  # one call, one SamplingParams per row
        else:  # seeds aside: per-request seeds would split every batch into ones
            by_params: dict[SamplingParams, list[_Request]] = {}
            for request in batch:
                by_params.setdefault(replace(request.params, seed=None), []).append(request)
            groups = list(by_params.values())
        for requests in groups:
            try:
                results = await loop.run_in_executor(self._executor, self._call, requests)
            except BaseException as error:  # cancelled while generating
                for request in requests:
                    if not request.future.done():
                        request.future.set_exception(error)
                raise
            for request, result in zip(requests, results, strict=True):
                if request.future.done():
                    continue
                if isinstance(result, BaseException):
                    request.future.set_exception(result)
                else:
                    request.future.set_result(result)

    def _generate(self, requests: list[_Request]) -> list[Completion]:
        """One backend call for ``requests`` (all with the same params unless per-row params
        are supported through ``generate_each``)."""
        conversations = [request.conversation for request in requests]
        self.batch_sizes.append(len(requests))
        each = getattr(self.backend, "generate_each", None)
        if callable(each):
            completions = each(conversations, [request.params for request in requests])
        else:
            completions = self.backend.generate(conversations, requests[0].params)
        if len(completions) != len(requests):
            raise RuntimeError(
                f"the backend returned {len(completions)} completions for "
                f"{len(requests)} conversations"
            )
        return list(completions)

    def _call(self, requests: list[_Request]) -> list[Completion | BaseException]:
        """In the generation thread: check contexts, then generate the rest as one batch."""
        results: list[Completion | BaseException | None] = [None] * len(requests)
        todo: list[int] = []
        for index, request in enumerate(requests):
            try:
                limit = request.limit(self.backend)
                if limit is not None:
                    prompt_tokens = self.backend.count_tokens(request.conversation)
                    check_context(prompt_tokens, request.params, limit)
                todo.append(index)
            except Exception as error:  # EpisodeStop, or a backend error counting
                results[index] = error
        if todo:
            batch = [requests[index] for index in todo]
            completions: list[Completion | BaseException]
            try:
                completions = list(self._generate(batch))
            except Exception as error:
                completions = [error] if len(batch) == 1 else self._one_by_one(batch)
            for index, completion in zip(todo, completions, strict=True):
                results[index] = completion
        return [result for result in results if result is not None]  # every slot is set

    def _one_by_one(self, requests: list[_Request]) -> list[Completion | BaseException]:
        """After a failed batch: each request alone, so a bad one fails only itself."""
        out: list[Completion | BaseException] = []
        for request in requests:
            try:
                out.append(self._generate([request])[0])
            except Exception as error:
                out.append(error)
        return out


_SHARED: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[int, BatchingQueue]] = (
    weakref.WeakKeyDictionary()
)


def shared_queue(backend: GenerationBackend) -> BatchingQueue:
    """The :class:`BatchingQueue` of ``backend`` on the running event loop (made on first use).

    Every ``ChatAgent.aact`` on the same backend and loop goes through it, so the benchmark
    runner's concurrent LLM episodes are batched without knowing about the engine (the queue
    then flushes after ``max_wait_s``, as it cannot know how many episodes are live).
    """
    loop = asyncio.get_running_loop()
    queues = _SHARED.setdefault(loop, {})
    queue = queues.get(id(backend))
    if queue is None or queue.backend is not backend:
        queue = queues[id(backend)] = BatchingQueue(backend)
    return queue
