"""``arenagym serve``: an OpenAI-compatible HTTP server over the transformers backend.

Local models become reachable by any OpenAI client (the official ``openai`` package, the
:class:`~arenagym.agents.backends.openai_compat.OpenAICompatibleBackend`, third-party agents):

- ``POST /v1/chat/completions``: ``messages``, ``max_tokens`` / ``max_completion_tokens`` (default:
  the rest of the context), ``temperature``, ``top_p``, ``top_k``, ``stop``, ``seed``, ``n``
  (1-64 choices; with a seed, choice ``i`` samples with ``seed + i``), ``logprobs`` /
  ``top_logprobs`` (→ ``choices[i].logprobs.content[*].token/logprob/bytes/top_logprobs``),
  ``usage`` counts and ``finish_reason``. vLLM extensions: ``stop_token_ids``, and
  ``return_token_ids`` → ``prompt_token_ids`` on the response and ``token_ids`` on the choice.
  No streaming.
- Function calling: ``tools`` (with ``tool_choice`` ``auto`` or ``none``) are rendered by the
  model's own chat template, and the ``<tool_call>{"name", "arguments"}</tool_call>`` blocks of
  the reply come back as ``message.tool_calls`` with ``finish_reason="tool_calls"``; assistant
  messages with ``tool_calls`` and ``tool`` messages in the request go to the template as they
  are. A model whose template does not render tools (SmolLM2's, the tiny model's) gets a 400 that
  says so: tools are never silently dropped.
- ``GET /v1/models`` (one card per served name, with ``max_model_len``), ``GET /health``,
  ``POST /tokenize`` (vLLM's: ``{"messages": [...]}`` → ``{"count", "tokens", "max_model_len"}``).
- Errors are OpenAI-style ``{"error": {"message", "type", "param", "code"}}``: 400 for requests that
  cannot be served (``n`` out of range, streaming, tools the template cannot render, a prompt
  longer than the context, bad ranges, a body that is not JSON), 404 for an unknown model (the message names the served ones) or route, 422 for a
  body that does not match the schema, 500 when generation itself fails.

The model is served under the names given with ``--served-model-name`` (vLLM's flag; several
names may be given; ``--model-name`` is an alias), else under a short default: the registry name
(``arenagym serve --model tiny``) or the model directory's basename. The agent spec
``openai:http://HOST:PORT/v1,model=NAME`` names it. On start the command prints where it listens
(with ``--port 0``, the port the system chose) and that spec.

Why it is fast: concurrent requests are batched. Every request goes onto a queue; a single worker
takes the first waiting request, keeps collecting for ``batch_window_s`` (a few ms) or until
``max_batch_size`` requests, and decodes them all in one ``backend.generate_each`` call (each row
with its own sampling parameters and seed) in a worker thread, while the next batch queues up.

Why FastAPI + uvicorn (the ``serve`` extra): request validation with pydantic, an asyncio server that
holds thousands of idle connections cheaply, and the same stack vLLM's server uses; the stdlib
``http.server`` has neither async batching nor keep-alive performance.

Run it (binds loopback by default)::

    arenagym serve --model DIR_OR_NAME [--host 127.0.0.1] [--port 8000] [--served-model-name NAME]
    python -m arenagym serve --model DIR_OR_NAME

Example (``# doctest: +SKIP``: builds a model and starts a server):
    >>> from arenagym.agents.backends import TransformersBackend
    >>> app = build_app(TransformersBackend("/tmp/tiny"), "tiny")  # doctest: +SKIP
"""

# No ``from __future__ import annotations`` here: FastAPI reads the endpoints' annotations at
# runtime, and the classes they name are imported inside build_app (to keep this module light).
import argparse
import asyncio
import contextlib
import json
import os
import re
import socket
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from arenagym.agents.backends.interface import (
    Completion,
    ContextLengthError,
    Conversation,
    SamplingParams,
)

if TYPE_CHECKING:
    from fastapi import FastAPI

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000


class APIError(Exception):
    """An error answered as OpenAI-style JSON with an HTTP status."""

    def __init__(
        self, status: int, message: str, *, type_: str | None = None, param: str | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type_ or {404: "NotFoundError", 422: "UnprocessableEntityError"}.get(
            status, "BadRequestError" if status < 500 else "InternalServerError"
        )
        self.param = param

    def body(self) -> dict[str, Any]:
        """The JSON body: ``{"error": {...}}``.

        >>> APIError(400, "n must be 1", param="n").body()["error"]["type"]
        'BadRequestError'
        """
        return {
            "error": {
                "message": self.message,
                "type": self.type,
                "param": self.param,
                "code": self.status,
            }
        }


@dataclass
class _Pending:
    conversation: Conversation
    params: SamplingParams
    future: "asyncio.Future[Completion]" = field(repr=False)
    prompt_ids: list[int] | None = None  # rendered already (a chat template with tools)


class RequestBatcher:
    """Collects concurrent generation requests into batches for one backend.

    ``submit`` is awaited by request handlers; :meth:`run` is the single worker task. Backends with
    ``generate_each`` (per-row params) get one call per batch; others get one ``generate`` call per
    distinct :class:`SamplingParams` in the batch.
    """

    def __init__(self, backend: Any, *, batch_window_s: float = 0.005, max_batch_size: int = 64):
        self.backend = backend
        self.batch_window_s = batch_window_s
        self.max_batch_size = max_batch_size
        self.batches_run = 0
        self._queue: asyncio.Queue[_Pending] | None = None  # created in run(), on the app's loop
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="arenagym-generate")

    async def submit(
        self,
        conversation: Conversation,
        params: SamplingParams,
        prompt_ids: list[int] | None = None,
    ) -> Completion:
        """The completion of one request; ``prompt_ids``: the prompt already rendered (the
        backend needs ``generate_ids`` then)."""
        if self._queue is None:
            raise RuntimeError("the batcher is not running")
        future: asyncio.Future[Completion] = asyncio.get_running_loop().create_future()
        await self._queue.put(_Pending(conversation, params, future, prompt_ids))
        return await future

    async def run(self) -> None:
        """Forever: wait for a request, gather more for ``batch_window_s``, decode them together."""
        self._queue = asyncio.Queue()
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self._queue.get()]
            deadline = loop.time() + self.batch_window_s
            while len(batch) < self.max_batch_size:
                timeout = deadline - loop.time()
                if timeout <= 0:
                    break
                try:
                    batch.append(await asyncio.wait_for(self._queue.get(), timeout))
                except TimeoutError:
                    break
            batch = [p for p in batch if not p.future.done()]  # drop cancelled requests
            if not batch:
                continue
            try:
                results = await loop.run_in_executor(self._executor, self._generate, batch)
            except Exception as error:  # one bad batch must not stop the server
                for pending in batch:
                    if not pending.future.done():
                        pending.future.set_exception(error)
                continue
            self.batches_run += 1
            for pending, result in zip(batch, results, strict=True):
                if not pending.future.done():
                    pending.future.set_result(result)

    def _generate(self, batch: list[_Pending]) -> list[Completion]:
        conversations = [p.conversation for p in batch]
        if any(p.prompt_ids is not None for p in batch):
            prompts = [
                p.prompt_ids
                if p.prompt_ids is not None
                else self.backend.prompt_ids(p.conversation)
                for p in batch
            ]
            return self.backend.generate_ids(prompts, [p.params for p in batch])
        if hasattr(self.backend, "generate_each"):
            return self.backend.generate_each(conversations, [p.params for p in batch])
        results: list[Completion | None] = [None] * len(batch)
        groups: dict[SamplingParams, list[int]] = {}
        for index, pending in enumerate(batch):
            groups.setdefault(pending.params, []).append(index)
        for params, indices in groups.items():
            outputs = self.backend.generate([conversations[i] for i in indices], params)
            for index, output in zip(indices, outputs, strict=True):
                results[index] = output
        return [r for r in results if r is not None]

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


def build_app(
    backend: Any,
    model_name: str | Sequence[str],
    *,
    batch_window_s: float = 0.005,
    max_batch_size: int = 64,
) -> "FastAPI":
    """The FastAPI application serving ``backend`` under the name ``model_name`` (or several
    names: a request may use any of them; ``/v1/models`` lists them all).

    ``backend`` is a :class:`~arenagym.agents.backends.hf.TransformersBackend` (or any
    ``GenerationBackend``; ``/tokenize`` and token strings in logprobs need a ``tokenizer``
    attribute). The batching worker starts and stops with the app (ASGI lifespan).
    """
    from fastapi import FastAPI, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from pydantic import ValidationError
    from starlette.exceptions import HTTPException as StarletteHTTPException

    names = [model_name] if isinstance(model_name, str) else list(model_name)
    if not names or not all(isinstance(n, str) and n for n in names):
        raise ValueError(
            f"model_name must be a non-empty name or list of names, got {model_name!r}"
        )
    model_name = names[0]
    models = _request_models()
    batcher = RequestBatcher(backend, batch_window_s=batch_window_s, max_batch_size=max_batch_size)
    created = int(time.time())

    @contextlib.asynccontextmanager
    async def lifespan(app: "FastAPI") -> AsyncIterator[None]:
        worker = asyncio.create_task(batcher.run())
        await asyncio.sleep(0)  # let the worker create its queue
        try:
            yield
        finally:
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await worker
            batcher.close()

    app = FastAPI(title="arenagym serve", lifespan=lifespan)
    app.state.batcher = batcher
    app.state.backend = backend
    app.state.model_name = model_name
    app.state.model_names = names

    @app.exception_handler(APIError)
    async def _api_error(request: Request, error: APIError) -> JSONResponse:
        return JSONResponse(error.body(), status_code=error.status)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, error: RequestValidationError) -> JSONResponse:
        return JSONResponse(APIError(422, _describe(error.errors())).body(), status_code=422)

    async def parse(request: Request, schema: Any) -> Any:
        try:
            data = await request.json()
        except ValueError as error:
            raise APIError(400, f"the request body is not valid JSON: {error}") from error
        try:
            return schema.model_validate(data)
        except ValidationError as error:
            raise APIError(422, _describe(error.errors())) from error

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, error: StarletteHTTPException) -> JSONResponse:
        message = str(error.detail)
        if error.status_code == 404:
            message = f"no route {request.method} {request.url.path}"
        return JSONResponse(APIError(error.status_code, message).body(), error.status_code)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/v1/models")
    async def list_models() -> dict[str, Any]:
        return {"object": "list", "data": [_model_card(n, created, backend) for n in names]}

    @app.get("/v1/models/{name:path}")
    async def get_model(name: str) -> dict[str, Any]:
        _check_model(name, names)
        return _model_card(name, created, backend)

    @app.post("/tokenize")
    async def tokenize(raw: Request) -> dict[str, Any]:
        request = await parse(raw, models.TokenizeRequest)
        if request.model is not None:
            _check_model(request.model, names)
        conversation = [_message(m) for m in request.messages]
        tokens = list(backend.prompt_ids(conversation)) if hasattr(backend, "prompt_ids") else []
        count = len(tokens) if tokens else backend.count_tokens(conversation)
        return {"count": count, "tokens": tokens, "max_model_len": backend.max_context}

    @app.post("/v1/chat/completions")
    async def chat_completions(raw: Request) -> dict[str, Any]:
        request = await parse(raw, models.ChatRequest)
        _check_model(request.model, names)
        conversation = [_message(m) for m in request.messages]
        prompt_ids = _tool_prompt_ids(request, conversation, backend)
        params = _sampling_params(request, conversation, backend, prompt_ids)
        rows = [replace(params, seed=_row_seed(params.seed, i)) for i in range(request.n or 1)]
        try:
            completions = await asyncio.gather(
                *(batcher.submit(conversation, row, prompt_ids) for row in rows)
            )
        except ContextLengthError as error:
            raise APIError(400, str(error), param="messages") from error
        except Exception as error:  # a failed generation is the server's fault: 500, retryable
            raise APIError(500, f"generation failed: {type(error).__name__}: {error}") from error
        return _response(request, list(completions), request.model, backend)

    return app


def _request_models() -> Any:
    """Pydantic request schemas, built lazily so that importing this module stays light."""
    from pydantic import BaseModel, ConfigDict

    class ChatMessage(BaseModel):
        model_config = ConfigDict(extra="allow")
        role: str
        content: str | list[dict[str, Any]] | None = None
        tool_calls: list[dict[str, Any]] | None = None
        tool_call_id: str | None = None
        name: str | None = None

    class ChatRequest(BaseModel):
        model_config = ConfigDict(extra="allow")
        model: str
        messages: list[ChatMessage]
        max_tokens: int | None = None
        max_completion_tokens: int | None = None
        temperature: float | None = None
        top_p: float | None = None
        top_k: int | None = None
        stop: str | list[str] | None = None
        seed: int | None = None
        n: int | None = None
        stream: bool | None = None
        logprobs: bool | None = None
        top_logprobs: int | None = None
        stop_token_ids: list[int] | None = None
        return_token_ids: bool | None = None
        tools: list[dict[str, Any]] | None = None
        tool_choice: str | dict[str, Any] | None = None

    class TokenizeRequest(BaseModel):
        model_config = ConfigDict(extra="allow")
        model: str | None = None
        messages: list[ChatMessage]

    return argparse.Namespace(
        ChatMessage=ChatMessage, ChatRequest=ChatRequest, TokenizeRequest=TokenizeRequest
    )


def _describe(errors: Sequence[Any]) -> str:
    """One line from pydantic's error list: ``messages.0.role: Field required; …``."""
    parts = []
    for error in errors:
        location = ".".join(str(x) for x in error.get("loc", ()) if x != "body")
        parts.append(f"{location}: {error.get('msg')}" if location else str(error.get("msg")))
    return "invalid request: " + "; ".join(parts)


def _check_model(requested: str, served: Sequence[str]) -> None:
    """A 404 in OpenAI's error format unless ``requested`` is one of the ``served`` names."""
    if requested not in served:
        names = ", ".join(f"`{name}`" for name in served)
        raise APIError(
            404,
            f"The model `{requested}` does not exist; this server serves {names} "
            f"(GET /v1/models lists them).",
            param="model",
        )


def _message(message: Any) -> dict[str, Any]:
    content = message.content
    if isinstance(content, list):  # content parts: keep the text ones
        content = "".join(str(p.get("text", "")) for p in content if p.get("type") == "text")
    rendered: dict[str, Any] = {"role": message.role, "content": content or ""}
    if message.tool_calls:  # an assistant turn that called tools: as chat templates expect them
        rendered["tool_calls"] = [_template_tool_call(call) for call in message.tool_calls]
    if message.tool_call_id is not None:
        rendered["tool_call_id"] = message.tool_call_id
    if message.name is not None:
        rendered["name"] = message.name
    return rendered


def _template_tool_call(call: dict[str, Any]) -> dict[str, Any]:
    """An OpenAI ``tool_calls`` entry with its JSON ``arguments`` string parsed, the form Hugging
    Face chat templates render."""
    function = dict(call.get("function") or {})
    arguments = function.get("arguments")
    if isinstance(arguments, str):
        try:
            function["arguments"] = json.loads(arguments) if arguments.strip() else {}
        except json.JSONDecodeError as error:
            raise APIError(
                400, f"tool_calls: arguments is not JSON ({error.msg})", param="messages"
            ) from None
    return {**call, "type": call.get("type", "function"), "function": function}


def template_renders_tools(tokenizer: Any) -> bool:
    """Whether ``tokenizer``'s chat template uses the ``tools`` it is given (a template that
    never mentions them would silently drop them).

    >>> from types import SimpleNamespace
    >>> template_renders_tools(SimpleNamespace(chat_template="{% for m in messages %}{% endfor %}"))
    False
    >>> template_renders_tools(SimpleNamespace(chat_template="{% if tools %}{{ tools }}{% endif %}"))
    True
    """
    template = getattr(tokenizer, "chat_template", None)
    if isinstance(template, dict):  # named templates: the default, or one called tool_use
        template = template.get("tool_use") or template.get("default")
    return isinstance(template, str) and re.search(r"\btools\b", template) is not None


def _tool_prompt_ids(request: Any, conversation: Conversation, backend: Any) -> list[int] | None:
    """The prompt rendered with ``tools`` by the model's chat template, or ``None`` when the
    request has no tools (the backend renders it as usual). A request with tools the server
    cannot honour is refused with a 400 rather than served without them."""
    if not request.tools:
        if request.tool_choice not in (None, "none", "auto"):
            raise APIError(400, "tool_choice needs tools", param="tool_choice")
        return None
    if request.tool_choice not in (None, "auto", "none"):
        raise APIError(
            400,
            "tool_choice: only 'auto' and 'none' are supported (forcing a call needs guided "
            "decoding, which this server does not do)",
            param="tool_choice",
        )
    tokenizer = getattr(backend, "tokenizer", None)
    if not template_renders_tools(tokenizer) or not hasattr(backend, "generate_ids"):
        raise APIError(
            400,
            "tools: this model's chat template does not render tools, so the model would never "
            "see them; serve a model whose template supports tool use (e.g. Qwen2.5 or Hermes "
            "models, which call tools in <tool_call> blocks), or send the request without tools",
            param="tools",
        )
    for index, tool in enumerate(request.tools):
        function = tool.get("function") if isinstance(tool, dict) else None
        if (
            not isinstance(function, dict)
            or tool.get("type", "function") != "function"
            or not (isinstance(function.get("name"), str) and function["name"])
        ):
            raise APIError(
                400,
                f"tools.{index}: expected {{'type': 'function', 'function': {{'name': ..., "
                "'parameters': {...}}}",
                param="tools",
            )
    tools = None if request.tool_choice == "none" else list(request.tools)
    try:
        text = tokenizer.apply_chat_template(
            list(conversation), tools=tools, tokenize=False, add_generation_prompt=True
        )
    except Exception as error:  # a template error names what it could not render
        raise APIError(
            400, f"the chat template cannot render this request: {error}", param="messages"
        ) from None
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


_TOOL_CALL = re.compile(r"<tool_call>\s*(.*?)\s*</tool_call>", re.DOTALL)


def parse_tool_calls(text: str) -> tuple[str | None, list[dict[str, Any]]]:
    """The reply's text outside tool calls (``None`` when empty) and its tool calls in OpenAI's
    format, from the ``<tool_call>{"name": ..., "arguments": {...}}</tool_call>`` blocks that
    Hermes-style templates (Qwen2.5, Hermes, SmolLM3) teach models to write. A block that is not
    such JSON stays in the text, so nothing the model wrote is lost.

    >>> content, calls = parse_tool_calls(
    ...     'Let me look.<tool_call>{"name": "ls", "arguments": {"path": "/"}}</tool_call>')
    >>> content, calls[0]["function"], calls[0]["type"]
    ('Let me look.', {'name': 'ls', 'arguments': '{"path": "/"}'}, 'function')
    >>> parse_tool_calls("<tool_call>not json</tool_call>")
    ('<tool_call>not json</tool_call>', [])
    """
    calls: list[dict[str, Any]] = []

    def take(match: re.Match[str]) -> str:
        try:
            call = json.loads(match.group(1))
        except json.JSONDecodeError:
            return match.group(0)
        name = call.get("name") if isinstance(call, dict) else None
        arguments = call.get("arguments", {}) if isinstance(call, dict) else None
        if not isinstance(name, str) or not name or not isinstance(arguments, (dict, str)):
            return match.group(0)
        if isinstance(arguments, dict):
            arguments = json.dumps(arguments)
        calls.append(
            {
                "id": f"call_{uuid.uuid4().hex[:24]}",
                "type": "function",
                "function": {"name": name, "arguments": arguments},
            }
        )
        return ""

    rest = _TOOL_CALL.sub(take, text).strip()
    return (rest or None) if calls else text, calls


def _row_seed(seed: int | None, index: int) -> int | None:
    """The seed of choice ``index`` of an ``n > 1`` request: the request's seed for the first,
    the next integers for the others (so the choices differ and each is reproducible)."""
    return None if seed is None else seed + index


#: The most choices one request may ask for (``n``).
MAX_CHOICES = 64


def _sampling_params(
    request: Any, conversation: Conversation, backend: Any, prompt_ids: list[int] | None = None
) -> SamplingParams:
    if request.n is not None and not 1 <= request.n <= MAX_CHOICES:
        raise APIError(400, f"n must be between 1 and {MAX_CHOICES}, got {request.n}", param="n")
    if request.stream:
        raise APIError(400, "streaming is not supported", param="stream")
    if request.top_logprobs and not request.logprobs:
        raise APIError(400, "top_logprobs needs logprobs=true", param="top_logprobs")
    prompt_tokens = (
        len(prompt_ids) if prompt_ids is not None else backend.count_tokens(conversation)
    )
    if prompt_tokens >= backend.max_context:
        raise APIError(
            400, str(ContextLengthError(prompt_tokens, backend.max_context)), param="messages"
        )
    max_tokens = request.max_completion_tokens or request.max_tokens
    if max_tokens is None:
        max_tokens = backend.max_context - prompt_tokens
    stop = request.stop if request.stop is not None else ()
    top_k = request.top_k if request.top_k is not None and request.top_k > 0 else 0
    try:
        return SamplingParams(
            max_tokens=max_tokens,
            temperature=1.0 if request.temperature is None else request.temperature,
            top_p=1.0 if request.top_p is None else request.top_p,
            top_k=top_k,
            stop=stop,
            seed=request.seed,
            logprobs=bool(request.logprobs),
            stop_token_ids=tuple(request.stop_token_ids or ()),
            top_logprobs=request.top_logprobs or 0,
        )
    except ValueError as error:
        param = str(error).split(" ", 1)[0]
        raise APIError(400, str(error), param=param) from error


def _token_entry(token_id: int, logprob: float, tokenizer: Any) -> dict[str, Any]:
    token = tokenizer.decode([token_id]) if tokenizer is not None else str(token_id)
    return {"token": token, "logprob": logprob, "bytes": list(token.encode("utf-8"))}


def _choice(request: Any, index: int, completion: Completion, tokenizer: Any) -> dict[str, Any]:
    logprobs = None
    if request.logprobs:
        content = []
        for i, (token_id, logprob) in enumerate(
            zip(completion.completion_token_ids, completion.logprobs, strict=False)
        ):
            entry = _token_entry(token_id, logprob, tokenizer)
            top = completion.top_logprobs[i] if i < len(completion.top_logprobs) else {}
            entry["top_logprobs"] = [_token_entry(t, lp, tokenizer) for t, lp in top.items()]
            content.append(entry)
        logprobs = {"content": content}
    message: dict[str, Any] = {"role": "assistant", "content": completion.text}
    finish_reason = completion.finish_reason
    if request.tools and request.tool_choice != "none":
        text, calls = parse_tool_calls(completion.text)
        if calls:
            message = {"role": "assistant", "content": text, "tool_calls": calls}
            finish_reason = "tool_calls"
    choice: dict[str, Any] = {
        "index": index,
        "message": message,
        "logprobs": logprobs,
        "finish_reason": finish_reason,
    }
    if request.return_token_ids:
        choice["token_ids"] = list(completion.completion_token_ids)
    return choice


def _response(
    request: Any, completions: list[Completion], model_name: str, backend: Any
) -> dict[str, Any]:
    tokenizer = getattr(backend, "tokenizer", None)
    choices = [_choice(request, i, c, tokenizer) for i, c in enumerate(completions)]
    prompt_tokens = len(completions[0].prompt_token_ids)
    completion_tokens = sum(len(c.completion_token_ids) for c in completions)
    body: dict[str, Any] = {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model_name,
        "choices": choices,
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }
    if request.return_token_ids:
        body["prompt_token_ids"] = list(completions[0].prompt_token_ids)
    return body


def _model_card(name: str, created: int, backend: Any) -> dict[str, Any]:
    return {
        "id": name,
        "object": "model",
        "created": created,
        "owned_by": "arenagym",
        "max_model_len": backend.max_context,
    }


def default_model_name(model: str) -> str:
    """The name a model is served under by default: a registry name as it is, else the basename
    of its directory.

    >>> default_model_name("tiny"), default_model_name("/models/qwen2.5-0.5b-instruct/")
    ('tiny', 'qwen2.5-0.5b-instruct')
    """
    from arenagym.agents.models import MODELS

    if model in MODELS and not Path(model).expanduser().is_dir():
        return model
    path = Path(model).expanduser()
    return path.name or path.resolve().name or "model"


def bind_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (``port`` 0: a free one the system picks)."""
    family, kind, protocol, _, address = socket.getaddrinfo(
        host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    sock = socket.socket(family, kind, protocol)
    try:
        if os.name != "nt":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except BaseException:
        sock.close()
        raise
    return sock


def base_url(sock: socket.socket) -> str:
    """``http://HOST:PORT/v1`` for a bound socket (IPv6 hosts in brackets)."""
    host, port = sock.getsockname()[:2]
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}:{port}/v1"


class ListenError(OSError):
    """The server cannot listen on the host and port asked for (exit status 1)."""


def command(args: argparse.Namespace) -> int:
    """``arenagym serve``, given its parsed arguments (the parser is :mod:`arenagym.cli`'s): serve
    the model until interrupted; the exit status. A model that cannot be used raises
    ``ModelError`` (exit status 2), an address that cannot be bound :class:`ListenError` (1)."""
    from arenagym.agents.models import MODELS, fetch_model, resolve_model

    if args.model in MODELS and not Path(args.model).expanduser().is_dir():
        model_dir = fetch_model(args.model, progress=True)
    else:
        model_dir = resolve_model(args.model)
    names = args.model_name or [default_model_name(args.model)]
    try:
        sock = bind_socket(args.host, args.port)
    except OSError as error:
        raise ListenError(f"cannot listen on {args.host}:{args.port} ({error})") from None
    try:
        from arenagym.agents.backends.hf import TransformersBackend

        backend = TransformersBackend(
            model_dir, device=args.device, dtype=args.dtype, max_context=args.max_context
        )
        app = build_app(
            backend,
            names,
            batch_window_s=args.batch_window_ms / 1000,
            max_batch_size=args.max_batch_size,
        )
        url = base_url(sock)
        print(
            f"arenagym serve: serving {model_dir} as {', '.join(repr(n) for n in names)} on "
            f"{url} (context {backend.max_context} tokens)\n"
            f"  agent spec: openai:{url},model={names[0]}\n"
            "  press Ctrl-C to stop",
            flush=True,
        )
        run_server(app, sock, args.log_level)
    finally:
        sock.close()
    return 0


def run_server(app: Any, sock: socket.socket, log_level: str = "warning") -> None:
    """Serve ``app`` with uvicorn on the already bound ``sock`` until interrupted."""
    import uvicorn

    config = uvicorn.Config(app, log_level=log_level, lifespan="on")
    uvicorn.Server(config).run(sockets=[sock])
