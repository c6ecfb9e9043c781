"""The OpenAI-compatible backend against ``arenagym serve`` and against a scripted stub server."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

pytest.importorskip("openai", reason="the openai extra is not installed")
pytest.importorskip("httpx", reason="the openai extra (httpx) is not installed")

from arenagym.agents.backends import (
    BackendRequestError,
    BackendUnavailableError,
    GenerationBackend,
    OpenAICompatibleBackend,
    SamplingParams,
)
from arenagym.agents.backends.openai_compat import estimate_tokens

CONVERSATIONS = [
    [{"role": "user", "content": f"Question {i}: what is {i} + {2 * i}?"}] for i in range(5)
] + [[{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": "Hi!"}]]
GREEDY = SamplingParams(max_tokens=10, temperature=0)

OK_BODY = {
    "id": "chatcmpl-stub",
    "object": "chat.completion",
    "created": 0,
    "model": "stub",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "four"},
            "logprobs": {
                "content": [{"token": "four", "logprob": -0.25, "bytes": None, "top_logprobs": []}]
            },
            "finish_reason": "stop",
        }
    ],
    "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
}


class StubServer:
    """A loopback HTTP server answering from a script of (status, body, headers); counts requests."""

    def __init__(self, script: list[tuple[int, dict[str, Any], dict[str, str]]]) -> None:
        self.script = script
        self.requests: list[tuple[str, dict[str, Any]]] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                stub.requests.append((self.path, body))
                index = min(len(stub.requests), len(stub.script)) - 1
                status, payload, headers = stub.script[index]
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def __enter__(self) -> StubServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def error_body(message: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": "x", "param": None, "code": None}}


@pytest.fixture
def stub_factory() -> Iterator[Any]:
    servers: list[StubServer] = []

    def make(script: list[tuple[int, dict[str, Any], dict[str, str]]]) -> StubServer:
        server = StubServer(script).__enter__()
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.__exit__()


def fast_backend(url: str, **kwargs: Any) -> OpenAICompatibleBackend:
    options: dict[str, Any] = {
        "max_retries": 2,
        "backoff_s": 0.01,
        "max_backoff_s": 0.05,
        "timeout_s": 10,
    }
    options.update(kwargs)
    return OpenAICompatibleBackend(url, "stub", **options)


# -- against arenagym serve -------------------------------------------------------------------


@pytest.fixture(scope="module")
def served(tiny_server_url: str, tiny_server_model_name: str) -> OpenAICompatibleBackend:
    return OpenAICompatibleBackend(
        tiny_server_url, tiny_server_model_name, max_concurrency=3, return_token_ids=True
    )


def test_batch_matches_the_in_process_backend(
    served: OpenAICompatibleBackend, tiny_backend: Any
) -> None:
    assert isinstance(served, GenerationBackend)
    remote = served.generate(CONVERSATIONS, GREEDY)
    local = [tiny_backend.generate([c], GREEDY)[0] for c in CONVERSATIONS]
    assert len(remote) == len(CONVERSATIONS)
    for r, loc in zip(remote, local, strict=True):
        assert r.text == loc.text
        assert r.finish_reason == loc.finish_reason
        assert r.prompt_token_ids == loc.prompt_token_ids
        assert r.completion_token_ids == loc.completion_token_ids
        assert r.logprobs == pytest.approx(loc.logprobs, abs=1e-4)


def test_without_token_ids_extension(tiny_server_url: str, tiny_server_model_name: str) -> None:
    backend = OpenAICompatibleBackend(tiny_server_url, tiny_server_model_name)
    [completion] = backend.generate(
        CONVERSATIONS[:1], SamplingParams(max_tokens=4, temperature=0.7, seed=5)
    )
    assert completion.prompt_token_ids == [] and completion.completion_token_ids == []
    assert len(completion.logprobs) == 4 and completion.finish_reason == "length"
    [no_logprobs] = backend.generate(
        CONVERSATIONS[:1], SamplingParams(max_tokens=4, logprobs=False)
    )
    assert no_logprobs.logprobs == []


def test_count_tokens_and_max_context_from_the_server(
    served: OpenAICompatibleBackend, tiny_backend: Any
) -> None:
    for conversation in CONVERSATIONS[:3]:
        assert served.count_tokens(conversation) == tiny_backend.count_tokens(conversation)
    assert served.max_context == tiny_backend.max_context == 2048


def test_local_tokenizer_counts(
    tiny_server_url: str, tiny_backend: Any, tiny_model_dir: Any
) -> None:
    backend = OpenAICompatibleBackend(
        tiny_server_url, "tiny", tokenizer=tiny_model_dir, max_context=99
    )
    assert backend.count_tokens(CONVERSATIONS[5]) == tiny_backend.count_tokens(CONVERSATIONS[5])
    assert backend.max_context == 99


def test_agenerate_and_generate_inside_a_running_loop(served: OpenAICompatibleBackend) -> None:
    async def main() -> tuple[list[Any], list[Any]]:
        first = await served.agenerate(CONVERSATIONS[:3], GREEDY)
        second = served.generate(CONVERSATIONS[:2], GREEDY)  # sync call while this loop runs
        await served.aclose()
        return first, second

    first, second = asyncio.run(main())
    assert [c.text for c in first[:2]] == [c.text for c in second]


def test_generate_from_a_thread_while_the_main_loop_runs(served: OpenAICompatibleBackend) -> None:
    async def main() -> list[Any]:
        return await asyncio.to_thread(served.generate, CONVERSATIONS[:2], GREEDY)

    completions = asyncio.run(main())
    assert len(completions) == 2 and all(c.completion_token_ids for c in completions)


def test_unknown_model_is_a_clear_request_error(tiny_server_url: str) -> None:
    backend = OpenAICompatibleBackend(tiny_server_url, "no-such-model", backoff_s=0.01)
    with pytest.raises(BackendRequestError, match="404") as error:
        backend.generate(CONVERSATIONS[:1], GREEDY)
    assert error.value.status == 404 and "no-such-model" in str(error.value)


# -- retries and errors, against a stub -------------------------------------------------------


def test_bad_request_is_not_retried(stub_factory: Any) -> None:
    stub = stub_factory([(400, error_body("max_tokens is too large"), {})])
    with pytest.raises(BackendRequestError) as error:
        fast_backend(stub.url).generate(CONVERSATIONS[:1], GREEDY)
    assert error.value.status == 400
    assert "HTTP 400" in str(error.value) and "max_tokens is too large" in str(error.value)
    assert len(stub.requests) == 1


@pytest.mark.parametrize("status", [500, 503, 429])
def test_server_errors_are_retried_then_reported(stub_factory: Any, status: int) -> None:
    stub = stub_factory([(status, error_body("overloaded"), {})])
    with pytest.raises(BackendUnavailableError) as error:
        fast_backend(stub.url, max_retries=2).generate(CONVERSATIONS[:1], GREEDY)
    assert error.value.status == status and error.value.attempts == 3
    assert f"HTTP {status}" in str(error.value) and "overloaded" in str(error.value)
    assert len(stub.requests) == 3


def test_rate_limit_then_success(stub_factory: Any) -> None:
    limited = (429, error_body("slow down"), {"retry-after": "0"})
    stub = stub_factory([limited, (502, error_body("bad gateway"), {}), (200, OK_BODY, {})])
    [completion] = fast_backend(stub.url, max_retries=3).generate(CONVERSATIONS[:1], GREEDY)
    assert completion.text == "four" and completion.logprobs == [-0.25]
    assert completion.finish_reason == "stop"
    assert len(stub.requests) == 3
    path, body = stub.requests[-1]
    assert path == "/v1/chat/completions"
    assert body["logprobs"] is True and body["max_tokens"] == 10 and body["temperature"] == 0


def test_connection_errors_are_retried(stub_factory: Any) -> None:
    stub = stub_factory([(200, OK_BODY, {})])
    url = stub.url
    stub.__exit__()  # nothing listens there any more
    with pytest.raises(BackendUnavailableError, match="failed 2 times"):
        fast_backend(url, max_retries=1).generate(CONVERSATIONS[:1], GREEDY)


def test_requests_carry_seeds_and_extensions(stub_factory: Any) -> None:
    stub = stub_factory([(200, OK_BODY, {})])
    params = SamplingParams(max_tokens=3, seed=10, top_k=5, stop=("\n",), stop_token_ids=(7,))
    fast_backend(stub.url, return_token_ids=True).generate(CONVERSATIONS[:3], params)
    bodies = sorted((b for _, b in stub.requests), key=lambda b: b["seed"])
    assert [b["seed"] for b in bodies] == [10, 11, 12]
    assert all(b["top_k"] == 5 and b["stop_token_ids"] == [7] for b in bodies)
    assert all(b["return_token_ids"] is True and b["stop"] == ["\n"] for b in bodies)


def test_count_tokens_falls_back_to_an_estimate(stub_factory: Any) -> None:
    stub = stub_factory([(404, {"detail": "Not Found"}, {})])
    backend = fast_backend(stub.url)
    assert backend.count_tokens(CONVERSATIONS[0]) == estimate_tokens(CONVERSATIONS[0])
    assert backend.count_tokens(CONVERSATIONS[1]) == estimate_tokens(CONVERSATIONS[1])
    assert len(stub.requests) == 1  # learnt that /tokenize is missing
