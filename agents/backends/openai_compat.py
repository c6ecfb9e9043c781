"""OpenAI-compatible HTTP backend: ``vllm serve``, SGLang, ``arenagym serve`` or a hosted API.

:class:`OpenAICompatibleBackend` sends one ``/chat/completions`` request per conversation with the
official ``openai`` client (``AsyncOpenAI``), concurrently (``asyncio.gather`` under a semaphore of
``max_concurrency`` requests), and turns the answers into
:class:`~arenagym.agents.backends.interface.Completion` objects.

- Retries: 429, 5xx, timeouts and connection errors are retried up to ``max_retries`` times with
  exponential backoff (``backoff_s * 2**attempt``, capped at ``max_backoff_s``, at least the server's
  ``Retry-After``); then :class:`BackendUnavailableError`. Any other 4xx fails at once with
  :class:`BackendRequestError`, whose message names the HTTP status and the server's message. The
  ``openai`` client's own retries are switched off so that there is one retry policy.
- Several endpoints: ``base_url`` may list several servers of the same model,
  ``"http://a:8000/v1|http://b:8000/v1"`` (or a list of URLs; the spec form is
  ``openai:URL1|URL2,model=NAME``). Each request goes to the endpoint with the fewest requests in
  flight, ties broken round-robin (*least-in-flight*: generation lengths vary a lot, so a slow or
  busy server gets fewer new requests, while idle servers take turns and all share the load). A
  request that fails on one endpoint with a retryable error (above) is retried at once on another
  it has not tried yet (and that is not cooling down); the backoff sleep comes only when there is
  none left, and the request has ``max_retries + number of endpoints`` attempts in all (one URL:
  ``max_retries + 1``, as before). An endpoint that fails
  ``cooldown_after`` times in a row is skipped for ``cooldown_s`` seconds while others work (then
  tried again; a success clears it), and used anyway when all are cooling down. The final
  :class:`BackendUnavailableError` names every endpoint tried with its last error (URLs redacted).
  Token counting (``/tokenize``) and ``/models`` go to the first endpoint that answers. One URL
  behaves exactly as without the list.
- Log-probabilities: requested with ``logprobs=true`` (when ``params.logprobs``) and read from
  ``choices[0].logprobs.content[*].logprob``; a server that does not return them leaves
  ``Completion.logprobs`` empty.
- Token ids: with ``return_token_ids=True`` the request carries vLLM's ``return_token_ids: true``
  extension (vLLM >= 0.10.2; ``arenagym serve`` too), and the ids are read from the response's
  ``prompt_token_ids`` and the choice's ``token_ids``. Off by default, because hosted APIs reject
  unknown parameters; without it the id lists stay empty.
- Other non-OpenAI parameters go in ``extra_body`` only when used: ``top_k`` (when > 0) and
  ``stop_token_ids``. Seeds: row ``i`` of a batch is sent ``params.seed + i`` (so that equal prompts
  in one batch do not get equal samples).
- ``finish_reason``: ``"length"`` stays ``"length"``; everything else (``stop``, ``tool_calls``,
  ``content_filter``) is ``"stop"``.
- ``count_tokens``: with a local ``tokenizer`` (path or object) the chat template is applied
  locally; otherwise vLLM's ``POST /tokenize`` (served by ``arenagym serve`` and ``vllm serve``); if
  the server has none (any 4xx answer), a rough estimate (UTF-8 bytes / 2 + 8 per message, on the
  high side).
- ``max_context``: the constructor's value, else ``max_model_len`` from ``GET /v1/models`` (vLLM,
  ``arenagym serve``), else ``None``: hosted APIs do not report it, and then no limit is assumed
  and prompts are not checked before sending. A request the server refuses as too long (HTTP 400
  with a "context length" message, or OpenAI's ``context_length_exceeded`` code) raises
  :class:`ContextOverflowError`, which is both a
  :class:`~arenagym.agents.backends.interface.ContextLengthError` and an
  :class:`~arenagym.agents.agent.EpisodeStop` with ``stop_reason="context_overflow"``: the chat
  agent's episode ends there, as when the context is checked locally.
- The API key: ``api_key=``, else the environment variable ``api_key_env`` names, else
  ``$OPENAI_API_KEY``, else ``"EMPTY"`` (what local servers accept). It is sent as a bearer token
  and never shown: the backend's ``repr`` and its error messages hide it (``***``), as they hide a
  password in the URL.

:meth:`OpenAICompatibleBackend.generate` is synchronous: it runs its own event loop, or — when
called from a thread whose event loop is running — runs the requests on a helper thread.
:meth:`OpenAICompatibleBackend.agenerate` is the coroutine to await from async code (one client and
one concurrency limit per event loop).

Example (``# doctest: +SKIP``: needs a running server):
    >>> from arenagym.agents.backends import OpenAICompatibleBackend, SamplingParams
    >>> backend = OpenAICompatibleBackend("http://127.0.0.1:8000/v1", "tiny")  # doctest: +SKIP
    >>> backend.generate([[{"role": "user", "content": "hi"}]], SamplingParams(max_tokens=4))  # doctest: +SKIP
    [Completion(text=..., finish_reason='length', ...)]

Several endpoints (nothing is sent until the first request):
    >>> backend = OpenAICompatibleBackend("http://127.0.0.1:8000/v1|http://127.0.0.1:8001/v1", "tiny")
    >>> backend.base_urls
    ('http://127.0.0.1:8000/v1', 'http://127.0.0.1:8001/v1')

Retry delays (without a ``Retry-After``) grow exponentially:
    >>> [backoff_delay(attempt, 0.5, 8.0) for attempt in range(6)]
    [0.5, 1.0, 2.0, 4.0, 8.0, 8.0]
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import os
import re
import threading
import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from arenagym.agents.agent import EpisodeStop
from arenagym.agents.backends.interface import (
    Completion,
    ContextLengthError,
    Conversation,
    SamplingParams,
)
from arenagym.agents.specs import REDACTED, redact_url, split_endpoints

logger = logging.getLogger(__name__)

#: HTTP statuses worth retrying: request timeout, conflict, rate limit, and every 5xx.
RETRYABLE_STATUSES = frozenset({408, 409, 429})


class BackendRequestError(RuntimeError):
    """The server refused the request (a 4xx other than 408/409/429): retrying will not help."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class ContextOverflowError(ContextLengthError, BackendRequestError, EpisodeStop):
    """The server refused a request because it does not fit the model's context.

    Raised for an HTTP 400/413 whose message speaks of the context length (vLLM, SGLang,
    ``arenagym serve``, hosted APIs) or whose code is ``context_length_exceeded`` (OpenAI). It is
    a :class:`~arenagym.agents.backends.interface.ContextLengthError`, a :class:`BackendRequestError`
    and an :class:`~arenagym.agents.agent.EpisodeStop` (``stop_reason="context_overflow"``), so the
    benchmark runner and the rollout engine end the episode as a context overflow, not an error.
    ``prompt_tokens`` and ``max_context`` are read from the server's message when it says them,
    else ``None``.

    >>> error = ContextOverflowError("This model's maximum context length is 2048 tokens. However, "
    ...                              "you requested 2100 tokens (2090 in the messages, 10 in the "
    ...                              "completion).")
    >>> error.stop_reason, error.prompt_tokens, error.max_context, error.status
    ('context_overflow', 2090, 2048, 400)
    """

    def __init__(
        self,
        message: str,
        *,
        status: int = 400,
        prompt_tokens: int | None = None,
        max_context: int | None = None,
    ) -> None:
        Exception.__init__(self, message)
        self.status = status
        self.row = None
        self.prompt_tokens = (
            prompt_tokens if prompt_tokens is not None else _first_int(_PROMPT_TOKENS, message)
        )
        self.max_context = (
            max_context if max_context is not None else _first_int(_MAX_CONTEXT, message)
        )
        self.stop_reason = "context_overflow"
        self.info = {
            key: value
            for key, value in (
                ("prompt_tokens", self.prompt_tokens),
                ("max_context", self.max_context),
                ("status", status),
            )
            if value is not None
        }


#: What servers say when a request does not fit the context (vLLM, SGLang, TGI, OpenAI,
#: ``arenagym serve``, llama.cpp...).
_CONTEXT_MESSAGE = re.compile(
    r"context[ _-]?(length|window|size)|maximum context|model's context|context is \d+|"
    r"prompt is too long|input is too long|too many (input )?tokens|exceeds? the (available )?"
    r"context",
    re.IGNORECASE,
)
_MAX_CONTEXT = (
    re.compile(r"maximum context length is (\d+)", re.IGNORECASE),
    re.compile(r"context(?: length| window| size)? (?:is|of) (\d+)", re.IGNORECASE),
)
_PROMPT_TOKENS = (
    re.compile(r"(\d+) in the messages", re.IGNORECASE),
    re.compile(r"messages resulted in (\d+) tokens", re.IGNORECASE),
    re.compile(r"prompt (?:of row \d+ )?has (\d+) tokens", re.IGNORECASE),
    re.compile(r"request has (\d+) input tokens", re.IGNORECASE),
    re.compile(r"(\d+) input tokens", re.IGNORECASE),
)


def _first_int(patterns: Sequence[re.Pattern[str]], text: str) -> int | None:
    for pattern in patterns:
        match = pattern.search(text)
        if match:
            return int(match.group(1))
    return None


def is_context_length_error(status: int, message: str, code: Any = None) -> bool:
    """Whether an HTTP error answer means "the request does not fit the model's context".

    >>> is_context_length_error(400, "This model's maximum context length is 4096 tokens.")
    True
    >>> is_context_length_error(400, "max_tokens is too large")
    False
    >>> is_context_length_error(400, "whatever", code="context_length_exceeded")
    True
    """
    if status not in (400, 413):
        return False
    return code == "context_length_exceeded" or bool(_CONTEXT_MESSAGE.search(message))


class BackendUnavailableError(RuntimeError):
    """The server kept failing (429, 5xx, timeouts, connection errors) after every retry."""

    def __init__(self, message: str, status: int | None = None, attempts: int = 0) -> None:
        super().__init__(message)
        self.status = status
        self.attempts = attempts


def backoff_delay(
    attempt: int, backoff_s: float, max_backoff_s: float, retry_after: float | None = None
) -> float:
    """Seconds to wait before retry number ``attempt + 1``: ``backoff_s * 2**attempt``, capped.

    A server's ``Retry-After`` raises the delay (still capped at ``max_backoff_s``).
    """
    delay = backoff_s * (2**attempt)
    if retry_after is not None:
        delay = max(delay, retry_after)
    return min(delay, max_backoff_s)


@dataclass
class _Endpoint:
    """One server of a backend's endpoint list and what the balancer knows about it."""

    url: str
    in_flight: int = 0
    failures: int = 0  # retryable failures in a row
    cool_until: float = 0.0  # time.monotonic() until which it is skipped while others work


class OpenAICompatibleBackend:
    """A :class:`~arenagym.agents.backends.interface.GenerationBackend` over an OpenAI-compatible server.

    Args:
        base_url: the API root including ``/v1``, e.g. ``http://127.0.0.1:8000/v1``; or several
            servers of the same model, ``"URL1|URL2|..."`` or a list of URLs, over which requests
            are balanced with failover (see the module docs).
        model: the model name the server knows.
        api_key: sent as a bearer token; default: the environment variable ``api_key_env`` names,
            else ``$OPENAI_API_KEY``, else ``"EMPTY"`` (what local servers accept).
        api_key_env: the environment variable to read the key from (instead of
            ``OPENAI_API_KEY``); it must be set.
        max_concurrency: the most requests in flight at once (per event loop).
        timeout_s: per-request timeout.
        max_retries: retries after the first attempt for retryable failures (with several
            endpoints a request also gets one more attempt per extra endpoint).
        backoff_s, max_backoff_s: the exponential backoff schedule (see :func:`backoff_delay`).
        return_token_ids: ask for vLLM's token-id extension (see the module docs).
        max_context: the model's context length, if the server does not report it (default:
            the server's ``max_model_len``; where there is none, no limit is assumed).
        tokenizer: a tokenizer object or path for local :meth:`count_tokens`.
        extra_body: extra JSON fields for every request (server-specific options).

    With several endpoints, ``cooldown_after`` (failures in a row, default 2) and ``cooldown_s``
    (seconds, default 5) set when an endpoint is skipped and for how long; they are class
    attributes, so set them on the instance (or a subclass) to change them.

    >>> backend = OpenAICompatibleBackend("http://a:8000/v1/|http://b:8000/v1", "m")
    >>> backend.base_urls, backend.base_url
    (('http://a:8000/v1', 'http://b:8000/v1'), 'http://a:8000/v1')
    >>> backend
    OpenAICompatibleBackend('http://a:8000/v1|http://b:8000/v1', model='m')
    """

    #: With several endpoints: retryable failures in a row after which one is skipped for a while.
    cooldown_after: int = 2
    #: With several endpoints: how long (seconds) a failing one is skipped while others work.
    cooldown_s: float = 5.0

    def __init__(
        self,
        base_url: str | Sequence[str],
        model: str,
        api_key: str | None = None,
        max_concurrency: int = 16,
        timeout_s: float = 60,
        max_retries: int = 3,
        *,
        api_key_env: str | None = None,
        backoff_s: float = 0.5,
        max_backoff_s: float = 8.0,
        return_token_ids: bool = False,
        max_context: int | None = None,
        tokenizer: Any | None = None,
        extra_body: dict[str, Any] | None = None,
    ) -> None:
        if max_concurrency < 1:
            raise ValueError(f"max_concurrency must be >= 1, got {max_concurrency}")
        if max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {max_retries}")
        if not isinstance(base_url, str):
            if not base_url:
                raise ValueError("base_url: give at least one URL")
            base_url = "|".join(map(str, base_url))
        urls = split_endpoints(base_url)  # the checks of an openai: spec's URL list
        #: Every endpoint's API root, in the order given.
        self.base_urls: tuple[str, ...] = tuple(url.rstrip("/") for url in urls)
        #: The first endpoint (the only one, usually).
        self.base_url = self.base_urls[0]
        self._endpoints = [_Endpoint(url) for url in self.base_urls]
        self._endpoints_lock = threading.Lock()
        self._cursor = 0  # round-robin start among equally loaded endpoints
        self.model = model
        if api_key is None and api_key_env is not None:
            api_key = os.environ.get(api_key_env)
            if not api_key:
                raise ValueError(
                    f"api_key_env={api_key_env}: the environment variable {api_key_env} is not "
                    "set (export it, or leave api_key_env out to read $OPENAI_API_KEY)"
                )
        elif api_key is None:
            api_key = os.environ.get("OPENAI_API_KEY")
        self.api_key = api_key or "EMPTY"
        self.api_key_env = api_key_env
        self.max_concurrency = max_concurrency
        self.timeout_s = timeout_s
        self.max_retries = max_retries
        self.backoff_s = backoff_s
        self.max_backoff_s = max_backoff_s
        self.return_token_ids = return_token_ids
        self.extra_body = dict(extra_body or {})
        self._max_context = max_context
        self._max_context_asked = max_context is not None
        if isinstance(tokenizer, str | Path):
            from transformers import AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(str(tokenizer))
        self.tokenizer = tokenizer
        self._tokenize_endpoint = True
        self._per_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, tuple[Any, Any]] = (
            weakref.WeakKeyDictionary()
        )
        self._per_loop_lock = threading.Lock()

    def __repr__(self) -> str:
        shown = "|".join(redact_url(url) for url in self.base_urls)
        return f"{type(self).__name__}({shown!r}, model={self.model!r})"

    @property
    def _where(self) -> str:
        """The (first) base URL as messages show it (any password hidden)."""
        return redact_url(self.base_url)

    # -- endpoints -----------------------------------------------------------------------------

    def _acquire(self, exclude: set[int]) -> int | None:
        """Pick an endpoint for one attempt and count it in flight; ``None`` when every endpoint
        not in ``exclude`` is cooling down (or there is none) and ``exclude`` is not empty.

        Least-in-flight among the endpoints that are not cooling down, ties broken round-robin;
        when all are cooling down (and none was tried yet), the one whose cool-down ends first.
        """
        with self._endpoints_lock:
            now = time.monotonic()
            count = len(self._endpoints)
            candidates = [i for i in range(count) if i not in exclude]
            ready = [i for i in candidates if self._endpoints[i].cool_until <= now]
            if not ready:
                if exclude or not candidates:
                    return None
                ready = [min(candidates, key=lambda i: self._endpoints[i].cool_until)]
            chosen = min(
                ready, key=lambda i: (self._endpoints[i].in_flight, (i - self._cursor) % count)
            )
            self._cursor = (chosen + 1) % count
            self._endpoints[chosen].in_flight += 1
            return chosen

    def _release(self, index: int, failed: bool | None) -> None:
        """End an attempt on endpoint ``index``: ``failed`` True (retryable failure), False
        (the server answered) or ``None`` (cancelled: no verdict)."""
        with self._endpoints_lock:
            endpoint = self._endpoints[index]
            endpoint.in_flight -= 1
            if failed is None:
                return
            if not failed:
                endpoint.failures, endpoint.cool_until = 0, 0.0
                return
            endpoint.failures += 1
            if len(self._endpoints) > 1 and endpoint.failures >= self.cooldown_after:
                if endpoint.cool_until <= time.monotonic():
                    logger.warning(
                        "%s failed %d times in a row: skipping it for %.1f s",
                        redact_url(endpoint.url), endpoint.failures, self.cooldown_s,
                    )  # fmt: skip
                endpoint.cool_until = time.monotonic() + self.cooldown_s

    def _endpoint_order(self) -> list[int]:
        """Every endpoint's index, those not cooling down first (for /tokenize and /models)."""
        now = time.monotonic()
        with self._endpoints_lock:
            return sorted(
                range(len(self._endpoints)), key=lambda i: self._endpoints[i].cool_until > now
            )

    def _scrub(self, text: str) -> str:
        """``text`` with the API key hidden (a server may echo it in an error message)."""
        if len(self.api_key) >= 4 and self.api_key != "EMPTY":
            text = text.replace(self.api_key, REDACTED)
        return redact_url(text) if "://" in text else text

    # -- generation ----------------------------------------------------------------------------

    def generate(
        self, conversations: Sequence[Conversation], params: SamplingParams
    ) -> list[Completion]:
        """One completion per conversation, in order; requests run concurrently."""
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(self._generate_with_own_client(conversations, params))
        # This thread's loop is busy running us: do the work on a helper thread with its own loop.
        with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
            future = pool.submit(asyncio.run, self._generate_with_own_client(conversations, params))
            return future.result()

    async def agenerate(
        self, conversations: Sequence[Conversation], params: SamplingParams
    ) -> list[Completion]:
        """The coroutine form of :meth:`generate` (shares clients and limit per event loop)."""
        clients, semaphore = self._loop_state()
        return await self._gather(clients, semaphore, conversations, params)

    async def aclose(self) -> None:
        """Close the clients that belong to the running event loop, if any."""
        state = self._per_loop.pop(asyncio.get_running_loop(), None)
        if state is not None:
            for client in state[0]:
                await client.close()

    def _new_client(self, base_url: str | None = None) -> Any:
        from openai import AsyncOpenAI

        return AsyncOpenAI(
            base_url=base_url or self.base_url,
            api_key=self.api_key,
            timeout=self.timeout_s,
            max_retries=0,
        )

    def _new_clients(self) -> list[Any]:
        """One client per endpoint, in the order of :attr:`base_urls`."""
        return [self._new_client(url) for url in self.base_urls]

    def _loop_state(self) -> tuple[list[Any], asyncio.Semaphore]:
        loop = asyncio.get_running_loop()
        with self._per_loop_lock:
            state = self._per_loop.get(loop)
            if state is None:
                state = (self._new_clients(), asyncio.Semaphore(self.max_concurrency))
                self._per_loop[loop] = state
        return state

    async def _generate_with_own_client(
        self, conversations: Sequence[Conversation], params: SamplingParams
    ) -> list[Completion]:
        clients = self._new_clients()
        try:
            semaphore = asyncio.Semaphore(self.max_concurrency)
            return await self._gather(clients, semaphore, conversations, params)
        finally:
            for client in clients:
                await client.close()

    async def _gather(
        self,
        clients: Sequence[Any],
        semaphore: asyncio.Semaphore,
        conversations: Sequence[Conversation],
        params: SamplingParams,
    ) -> list[Completion]:
        async def one(row: int, conversation: Conversation) -> Completion:
            async with semaphore:
                return await self._request(clients, conversation, params, row)

        tasks = [asyncio.ensure_future(one(i, c)) for i, c in enumerate(conversations)]
        try:
            return list(await asyncio.gather(*tasks))
        except BaseException:
            for task in tasks:  # a failed row fails the batch: stop the others
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            raise

    def request_kwargs(
        self, conversation: Conversation, params: SamplingParams, row: int = 0
    ) -> dict[str, Any]:
        """The keyword arguments for ``client.chat.completions.create`` for one row.

        >>> backend = OpenAICompatibleBackend("http://localhost:8000/v1", "m")
        >>> kwargs = backend.request_kwargs([{"role": "user", "content": "hi"}],
        ...                                 SamplingParams(max_tokens=5, top_k=3, seed=7), row=2)
        >>> kwargs["max_tokens"], kwargs["seed"], kwargs["logprobs"], kwargs["extra_body"]
        (5, 9, True, {'top_k': 3})
        """
        kwargs: dict[str, Any] = {
            "model": self.model,
            "messages": [dict(m) for m in conversation],
            "max_tokens": params.max_tokens,
            "temperature": params.temperature,
            "top_p": params.top_p,
        }
        if params.stop:
            kwargs["stop"] = list(params.stop)
        if params.seed is not None:
            kwargs["seed"] = params.seed + row
        if params.logprobs:
            kwargs["logprobs"] = True
            if params.top_logprobs:
                kwargs["top_logprobs"] = params.top_logprobs
        extra = dict(self.extra_body)
        if params.top_k:
            extra["top_k"] = params.top_k
        if params.stop_token_ids:
            extra["stop_token_ids"] = list(params.stop_token_ids)
        if self.return_token_ids:
            extra["return_token_ids"] = True
        if extra:
            kwargs["extra_body"] = extra
        return kwargs

    async def _request(
        self, clients: Sequence[Any], conversation: Conversation, params: SamplingParams, row: int
    ) -> Completion:
        """One row: attempts spread over the endpoints (see the module docs), then the answer or
        an error. With one endpoint: up to ``max_retries + 1`` attempts with backoff between."""
        import openai

        kwargs = self.request_kwargs(conversation, params, row)
        attempts = self.max_retries + len(self._endpoints)
        errors: dict[int, tuple[str, int | None]] = {}  # endpoint -> its last error, this row
        last: tuple[str, int | None] = ("", None)
        this_pass: set[int] = set()  # endpoints tried since the last backoff sleep
        backoffs = 0
        retry_after: float | None = None
        for _attempt in range(attempts):
            index = self._acquire(this_pass)
            if index is None:  # every endpoint tried (or cooling down): back off, start again
                await asyncio.sleep(
                    backoff_delay(backoffs, self.backoff_s, self.max_backoff_s, retry_after)
                )
                backoffs += 1
                this_pass.clear()
                retry_after = None
                index = self._acquire(this_pass)
                assert index is not None
            this_pass.add(index)
            where = redact_url(self.base_urls[index])
            failed: bool | None = None
            try:
                response = await clients[index].chat.completions.create(**kwargs)
                failed = False
                return self.parse_response(response)
            except openai.APIStatusError as error:
                status = error.status_code
                message = self._scrub(_server_message(error))
                # the client's own error text may quote the key: then do not chain it
                cause = None if self._scrub(str(error)) != str(error) else error
                if is_context_length_error(status, message, _server_code(error)):
                    failed = False
                    raise ContextOverflowError(
                        f"{where}/chat/completions answered HTTP {status}: {message}",
                        status=status,
                    ) from cause
                if status not in RETRYABLE_STATUSES and status < 500:
                    failed = False
                    raise BackendRequestError(
                        f"{where}/chat/completions answered HTTP {status}: {message}",
                        status=status,
                    ) from cause
                failed = True
                after = _retry_after(error)
                if after is not None:
                    retry_after = after if retry_after is None else max(retry_after, after)
                last = (f"HTTP {status}: {message}", status)
            except openai.APIConnectionError as error:  # includes APITimeoutError
                failed = True
                last = (self._scrub(f"{type(error).__name__}: {error}"), None)
            finally:
                self._release(index, failed)
            errors[index] = last
        if len(self._endpoints) == 1:
            raise BackendUnavailableError(
                f"{self._where}/chat/completions failed {attempts} times; last: {last[0]}",
                status=last[1],
                attempts=attempts,
            )
        each = "; ".join(
            f"{redact_url(self.base_urls[i])}/chat/completions: {text}"
            for i, (text, _status) in sorted(errors.items())
        )
        untried = [redact_url(u) for i, u in enumerate(self.base_urls) if i not in errors]
        skipped = f" (not tried, cooling down: {', '.join(untried)})" if untried else ""
        raise BackendUnavailableError(
            f"{len(errors)} of {len(self.base_urls)} endpoints of model {self.model!r} failed "
            f"({attempts} attempts); the last error of each: {each}{skipped}",
            status=last[1],
            attempts=attempts,
        )

    @staticmethod
    def parse_response(response: Any) -> Completion:
        """A :class:`Completion` from a ``ChatCompletion`` (uses the first choice)."""
        choice = response.choices[0]
        logprobs: list[float] = []
        content = getattr(getattr(choice, "logprobs", None), "content", None)
        if content:
            logprobs = [float(item.logprob) for item in content]
        completion_ids = _extra(choice, "token_ids") or []
        prompt_ids = _extra(response, "prompt_token_ids") or []
        return Completion(
            text=choice.message.content or "",
            prompt_token_ids=[int(t) for t in prompt_ids],
            completion_token_ids=[int(t) for t in completion_ids],
            logprobs=logprobs,
            finish_reason="length" if choice.finish_reason == "length" else "stop",
        )

    # -- tokens and context --------------------------------------------------------------------

    @property
    def server_root(self) -> str:
        """The (first) base URL without its trailing ``/v1`` (where vLLM serves ``/tokenize``)."""
        return self.base_url.removesuffix("/v1")

    def count_tokens(self, conversation: Conversation) -> int:
        """The prompt length of ``conversation`` in tokens (chat template applied; see module docs).

        With several endpoints, ``/tokenize`` is asked of each in turn (those not cooling down
        first) until one answers; one that cannot be reached or answers 5xx is passed over.
        """
        if self.tokenizer is not None:
            text = self.tokenizer.apply_chat_template(
                list(conversation), tokenize=False, add_generation_prompt=True
            )
            return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])
        if self._tokenize_endpoint:
            import httpx

            order = self._endpoint_order()
            failures: list[str] = []
            status: int | None = None
            for index in order:
                root = self.base_urls[index].removesuffix("/v1")
                shown = redact_url(self.base_urls[index]).removesuffix("/v1")
                try:
                    response = httpx.post(
                        f"{root}/tokenize",
                        json={"model": self.model, "messages": list(conversation)},
                        headers={"Authorization": f"Bearer {self.api_key}"},
                        timeout=self.timeout_s,
                    )
                except httpx.TransportError as error:
                    if len(order) == 1:
                        raise
                    failures.append(
                        f"{shown}/tokenize: {self._scrub(f'{type(error).__name__}: {error}')}"
                    )
                    continue
                if 400 <= response.status_code < 500:  # no such route here (a hosted API)
                    self._tokenize_endpoint = False
                elif response.status_code >= 500:
                    status = response.status_code
                    failures.append(f"{shown}/tokenize answered HTTP {status}")
                    continue
                else:
                    try:
                        return int(response.json()["count"])
                    except (ValueError, KeyError, TypeError):  # not vLLM's /tokenize
                        self._tokenize_endpoint = False
                break
            else:
                raise BackendUnavailableError("; ".join(failures), status=status)
        return estimate_tokens(conversation)

    @property
    def max_context(self) -> int | None:
        """The model's context length: the constructor's ``max_context``, else the server's
        ``max_model_len`` (asked once), else ``None`` — no limit known (hosted APIs)."""
        if not self._max_context_asked:
            self._max_context = self._server_max_context()
        return self._max_context

    def _server_max_context(self) -> int | None:
        import httpx

        for index in self._endpoint_order():  # the first endpoint that answers
            try:
                response = httpx.get(
                    f"{self.base_urls[index]}/models",
                    headers={"Authorization": f"Bearer {self.api_key}"},
                    timeout=self.timeout_s,
                )
                break
            except httpx.HTTPError:
                continue
        else:  # unreachable now: ask again next time
            return None
        self._max_context_asked = True
        try:
            cards = response.json().get("data", []) if response.status_code == 200 else []
            for card in cards:
                if card.get("id") == self.model and card.get("max_model_len"):
                    return int(card["max_model_len"])
        except (ValueError, TypeError, AttributeError):
            pass
        logger.info(
            "%s/models reports no max_model_len for %r: prompts are not checked against a "
            "context length before sending (pass max_context= to check them)",
            self._where,
            self.model,
        )
        return None


def estimate_tokens(conversation: Conversation) -> int:
    """A rough, high-side token count when no tokenizer is available.

    >>> estimate_tokens([{"role": "user", "content": "abcd"}])
    10
    """
    return sum(len(str(m.get("content", "")).encode("utf-8")) // 2 + 8 for m in conversation)


def _extra(obj: Any, name: str) -> Any:
    """A field the OpenAI schema does not define (vLLM extensions), if the server sent it."""
    value = getattr(obj, name, None)
    if value is None:
        value = (getattr(obj, "model_extra", None) or {}).get(name)
    return value


def _server_message(error: Any) -> str:
    body = getattr(error, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])
        if body.get("detail"):
            return str(body["detail"])
    return str(getattr(error, "message", error))


def _server_code(error: Any) -> Any:
    body = getattr(error, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict):
            return inner.get("code")
    return getattr(error, "code", None)


def _retry_after(error: Any) -> float | None:
    response = getattr(error, "response", None)
    value = response.headers.get("retry-after") if response is not None else None
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None
