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
    """A loopback HTTP server answering from a script of (status, body, headers); counts requests.

    ``routes`` maps ``"GET /v1/models"``-style keys to a fixed ``(status, body)`` answer (not
    counted in ``requests``); every other POST is answered from the script, any other GET with 404.
    ``authorizations`` records the Authorization header of every request.
    """

    def __init__(
        self,
        script: list[tuple[int, dict[str, Any], dict[str, str]]],
        routes: dict[str, tuple[int, dict[str, Any]]] | None = None,
    ) -> None:
        self.script = script
        self.routes = dict(routes or {})
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.authorizations: list[str | None] = []
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def answer(self, status: int, payload: dict[str, Any], headers: dict[str, str]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                stub.authorizations.append(self.headers.get("authorization"))
                status, payload = stub.routes.get(f"GET {self.path}", (404, {"detail": "no"}))
                self.answer(status, payload, {})

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                stub.authorizations.append(self.headers.get("authorization"))
                if f"POST {self.path}" in stub.routes:
                    self.answer(*stub.routes[f"POST {self.path}"], {})
                    return
                stub.requests.append((self.path, body))
                index = min(len(stub.requests), len(stub.script)) - 1
                self.answer(*stub.script[index])

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

    def make(
        script: list[tuple[int, dict[str, Any], dict[str, str]]],
        routes: dict[str, tuple[int, dict[str, Any]]] | None = None,
    ) -> StubServer:
        server = StubServer(script, routes).__enter__()
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


# -- hosted APIs: no max_model_len, the key from the environment, context errors ---------------

HOSTED_MODELS = {"object": "list", "data": [{"id": "stub", "object": "model", "owned_by": "x"}]}
VLLM_TOO_LONG = (
    "This model's maximum context length is 2048 tokens. However, you requested 2100 tokens "
    "(2090 in the messages, 10 in the completion). Please reduce the length of the messages."
)
OPENAI_TOO_LONG = {
    "error": {
        "message": "This model's maximum context length is 8192 tokens. However, your messages "
        "resulted in 9000 tokens. Please reduce the length of the messages.",
        "type": "invalid_request_error",
        "param": "messages",
        "code": "context_length_exceeded",
    }
}


def test_no_max_model_len_means_no_limit(stub_factory: Any) -> None:
    """A hosted API lists models without max_model_len and has no /tokenize: the agent still
    plays, with no context check before sending."""
    from arenagym.agents.chat import ChatAgent

    stub = stub_factory([(200, OK_BODY, {})], routes={"GET /v1/models": (200, HOSTED_MODELS)})
    backend = fast_backend(stub.url)
    assert backend.max_context is None
    agent = ChatAgent(backend, SamplingParams(max_tokens=4))
    agent.reset("Be brief.")
    assert agent.act("x" * 5000) == "four"  # a long prompt is sent: the server is the judge
    assert agent.max_context is None
    paths = [path for path, _ in stub.requests]
    assert paths.count("/v1/chat/completions") == 1
    # A server without /v1/models at all: no limit either, and the request still works.
    bare = stub_factory([(200, OK_BODY, {})])
    assert fast_backend(bare.url).max_context is None
    # max_context= from the caller is used without asking the server.
    assert fast_backend(bare.url, max_context=512).max_context == 512


def test_max_context_from_the_spec_is_checked_before_sending(stub_factory: Any) -> None:
    from arenagym.agents.agent import EpisodeStop
    from arenagym.agents.specs import clear_backend_cache, load_agent

    stub = stub_factory([(200, OK_BODY, {})], routes={"GET /v1/models": (200, HOSTED_MODELS)})
    clear_backend_cache()
    try:
        agent = load_agent(f"openai:{stub.url},model=stub,max_context=100,max_tokens=8")
        agent.reset("")
        assert agent.act("short") == "four"
        with pytest.raises(EpisodeStop) as stop:
            agent.act("x" * 400)  # about 200 tokens by the estimate: over 100
    finally:
        clear_backend_cache()
    assert stop.value.stop_reason == "context_overflow" and stop.value.info["max_context"] == 100
    assert [path for path, _ in stub.requests].count("/v1/chat/completions") == 1


def test_a_too_long_request_is_a_context_overflow(stub_factory: Any) -> None:
    from arenagym.agents.agent import EpisodeStop
    from arenagym.agents.backends.interface import ContextLengthError
    from arenagym.agents.backends.openai_compat import ContextOverflowError
    from arenagym.agents.chat import ChatAgent

    stub = stub_factory(
        [(400, error_body(VLLM_TOO_LONG), {})], routes={"GET /v1/models": (200, HOSTED_MODELS)}
    )
    backend = fast_backend(stub.url)
    with pytest.raises(ContextOverflowError) as caught:
        backend.generate(CONVERSATIONS[:1], GREEDY)
    error = caught.value
    assert isinstance(error, ContextLengthError) and isinstance(error, EpisodeStop)
    assert isinstance(error, BackendRequestError) and error.status == 400
    assert (error.stop_reason, error.prompt_tokens, error.max_context) == (
        "context_overflow",
        2090,
        2048,
    )
    assert len(stub.requests) == 1  # not retried

    agent = ChatAgent(backend, GREEDY)
    agent.reset("Be brief.")
    with pytest.raises(EpisodeStop) as stop:
        agent.act("a very long question")
    assert stop.value.stop_reason == "context_overflow"
    assert stop.value.info == {"prompt_tokens": 2090, "max_context": 2048, "status": 400}
    assert [m["role"] for m in agent.messages] == ["system"]  # the failed turn is not kept

    openai_style = stub_factory([(400, OPENAI_TOO_LONG, {})])
    with pytest.raises(ContextOverflowError) as caught:
        fast_backend(openai_style.url).generate(CONVERSATIONS[:1], GREEDY)
    assert (caught.value.prompt_tokens, caught.value.max_context) == (9000, 8192)


def test_arenagym_serve_context_error_is_a_context_overflow(
    tiny_server_url: str, tiny_server_model_name: str
) -> None:
    from arenagym.agents.backends.openai_compat import ContextOverflowError

    backend = OpenAICompatibleBackend(tiny_server_url, tiny_server_model_name, max_retries=0)
    long_prompt = [[{"role": "user", "content": " ".join(["word"] * 2100)}]]
    with pytest.raises(ContextOverflowError) as caught:
        backend.generate(long_prompt, SamplingParams(max_tokens=2))
    assert caught.value.max_context == 2048 and caught.value.prompt_tokens > 2048


def test_runner_records_a_server_context_refusal_as_context_overflow(
    stub_factory: Any, tmp_path: Any
) -> None:
    from arenagym.agents.specs import clear_backend_cache
    from arenagym.benchmarks.runner import run_suite
    from arenagym.benchmarks.store import ResultsStore
    from arenagym.benchmarks.suite import load_suite

    stub = stub_factory(
        [(400, error_body(VLLM_TOO_LONG), {})], routes={"GET /v1/models": (200, HOSTED_MODELS)}
    )
    clear_backend_cache()
    try:
        with ResultsStore(tmp_path / "runs.sqlite") as store:
            summary = run_suite(
                load_suite("smoke"), f"openai:{stub.url},model=stub,max_retries=0", None, store,
                progress=False,
            )  # fmt: skip
            rows = store.rows(suite="smoke")
    finally:
        clear_backend_cache()
    assert summary.failed == 0 and summary.stop_reasons == {"context_overflow": 4}
    assert all(row.turns == 0 for row in rows)
    assert rows[0].info["stop"]["max_context"] == 2048
    assert "maximum context length" in rows[0].info["stop"]["message"]


def test_the_key_comes_from_the_environment(
    stub_factory: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    stub = stub_factory([(200, OK_BODY, {})])
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-openai-env")
    monkeypatch.setenv("ARENAGYM_TEST_KEY", "sk-from-named-env")
    fast_backend(stub.url).generate(CONVERSATIONS[:1], GREEDY)
    fast_backend(stub.url, api_key_env="ARENAGYM_TEST_KEY").generate(CONVERSATIONS[:1], GREEDY)
    fast_backend(stub.url, api_key="sk-given").generate(CONVERSATIONS[:1], GREEDY)
    assert stub.authorizations == [
        "Bearer sk-from-openai-env",
        "Bearer sk-from-named-env",
        "Bearer sk-given",
    ]
    monkeypatch.delenv("OPENAI_API_KEY")
    fast_backend(stub.url).generate(CONVERSATIONS[:1], GREEDY)
    assert stub.authorizations[-1] == "Bearer EMPTY"  # what local servers accept
    with pytest.raises(ValueError, match="ARENAGYM_UNSET_KEY"):
        fast_backend(stub.url, api_key_env="ARENAGYM_UNSET_KEY")


def test_the_key_never_shows_in_errors_or_repr(stub_factory: Any) -> None:
    secret = "sk-very-secret-4242"
    echo = error_body(f"Incorrect API key provided: {secret}")
    stub = stub_factory([(401, echo, {})])
    backend = fast_backend(stub.url, api_key=secret)
    assert secret not in repr(backend)
    with pytest.raises(BackendRequestError) as error:
        backend.generate(CONVERSATIONS[:1], GREEDY)
    assert error.value.status == 401 and "Incorrect API key provided: ***" in str(error.value)
    chain = [error.value, error.value.__cause__, error.value.__context__]
    assert all(secret not in str(e) for e in chain if e is not None)
    retried = stub_factory([(503, echo, {})])
    with pytest.raises(BackendUnavailableError) as unavailable:
        fast_backend(retried.url, api_key=secret, max_retries=1).generate(CONVERSATIONS[:1], GREEDY)
    assert secret not in str(unavailable.value)
    password_url = stub.url.replace("http://", "http://user:pa55word@")
    assert "pa55word" not in repr(fast_backend(password_url))


def test_tokenize_refused_falls_back_to_an_estimate(stub_factory: Any) -> None:
    stub = stub_factory([(200, OK_BODY, {})], routes={"POST /tokenize": (401, {"error": "no"})})
    backend = fast_backend(stub.url)
    assert backend.count_tokens(CONVERSATIONS[0]) == estimate_tokens(CONVERSATIONS[0])
