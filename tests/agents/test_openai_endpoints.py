"""Several endpoints for one ``openai:`` agent: ``openai:URL1|URL2,model=NAME``.

Real HTTP on 127.0.0.1: small FastAPI apps served by uvicorn (``serve_asgi_in_thread`` from
``tests/agents/conftest.py``) that count the requests they get and answer from a fixed status;
a "dead" endpoint is a loopback port nothing listens on. Plus hypothesis for the parsing of the
``|`` list in a spec.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

pytest.importorskip("openai", reason="the openai extra is not installed")
pytest.importorskip("httpx", reason="the openai extra (httpx) is not installed")
pytest.importorskip("fastapi", reason="the serve extra (fastapi) is not installed")
uvicorn = pytest.importorskip("uvicorn", reason="the serve extra (uvicorn) is not installed")

from fastapi import FastAPI, Request  # noqa: E402  (module level: the handlers' annotations)
from fastapi.responses import JSONResponse  # noqa: E402

from arenagym.agents.backends import (  # noqa: E402
    BackendUnavailableError,
    OpenAICompatibleBackend,
    SamplingParams,
)
from arenagym.agents.specs import (  # noqa: E402
    parse_llm_spec,
    redact_spec,
    resolve_agent_factory,
    secret_values,
    split_endpoints,
)

CONVERSATIONS = [[{"role": "user", "content": f"What is {i} + {i}?"}] for i in range(8)]
GREEDY = SamplingParams(max_tokens=4, temperature=0)


def ok_body(text: str) -> dict[str, Any]:
    return {
        "id": "chatcmpl-stub",
        "object": "chat.completion",
        "created": 0,
        "model": "stub",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": text},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
    }


class Counting:
    """A FastAPI app answering ``/v1/chat/completions`` with ``status`` (200: the text ``name``)
    and ``/tokenize`` with ``count``; counts the chat requests it gets."""

    def __init__(self, name: str, status: int = 200, count: int = 42, delay_s: float = 0) -> None:
        self.name = name
        self.status = status
        self.delay_s = delay_s
        self.requests = 0
        self.tokenize_requests = 0
        self._lock = threading.Lock()
        app = FastAPI()

        @app.post("/v1/chat/completions")
        async def chat(request: Request) -> JSONResponse:
            await request.json()
            with self._lock:
                self.requests += 1
            if self.delay_s:
                await asyncio.sleep(self.delay_s)
            if self.status != 200:
                error = {"message": f"{name} is overloaded", "type": "x", "code": None}
                return JSONResponse({"error": error}, status_code=self.status)
            return JSONResponse(ok_body(name))

        @app.post("/tokenize")
        async def tokenize(request: Request) -> JSONResponse:
            await request.json()
            self.tokenize_requests += 1
            return JSONResponse({"count": count})

        @app.get("/v1/models")
        async def models() -> JSONResponse:
            return JSONResponse({"object": "list", "data": [{"id": "stub", "max_model_len": 321}]})

        self.app = app


@pytest.fixture
def serve(serve_asgi_in_thread: Any) -> Iterator[Any]:
    """``serve(name, status=200, delay_s=0)`` -> (the app, its ``http://127.0.0.1:PORT/v1``)."""
    running: list[Any] = []

    def start(name: str, status: int = 200, delay_s: float = 0) -> tuple[Counting, str]:
        app = Counting(name, status, delay_s=delay_s)
        server = serve_asgi_in_thread(app.app, uvicorn)
        url = server.__enter__()
        running.append(server)
        return app, f"{url}/v1"

    yield start
    for server in running:
        server.__exit__()


def dead_url(password: str | None = None) -> str:
    """A loopback URL nothing listens on (with ``user:password@`` when given)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    user = f"user:{password}@" if password else ""
    return f"http://{user}127.0.0.1:{port}/v1"


def backend(urls: str, **kwargs: Any) -> OpenAICompatibleBackend:
    options: dict[str, Any] = {"max_retries": 1, "backoff_s": 0.01, "max_backoff_s": 0.02}
    options.update(kwargs)
    return OpenAICompatibleBackend(urls, "stub", timeout_s=5, **options)


# -- balancing and failover over real HTTP ----------------------------------------------------


def test_two_live_servers_share_the_load(serve: Any) -> None:
    a, url_a = serve("a")
    b, url_b = serve("b")
    both = backend(f"{url_a}|{url_b}", max_concurrency=4)
    completions = both.generate(CONVERSATIONS, GREEDY)
    assert len(completions) == len(CONVERSATIONS)
    assert {c.text for c in completions} == {"a", "b"}
    assert a.requests > 0 and b.requests > 0 and a.requests + b.requests == len(CONVERSATIONS)
    # one request at a time: the endpoints take turns (ties are broken round-robin)
    a.requests = b.requests = 0
    one_at_a_time = backend([url_a, url_b], max_concurrency=1)
    texts = [c.text for c in one_at_a_time.generate(CONVERSATIONS, GREEDY)]
    assert texts == ["a", "b"] * (len(CONVERSATIONS) // 2)
    assert a.requests == b.requests == len(CONVERSATIONS) // 2


@pytest.mark.parametrize("dead_first", [True, False])
def test_one_dead_one_live_every_request_succeeds(serve: Any, dead_first: bool) -> None:
    live, url = serve("live")
    urls = [dead_url(), url] if dead_first else [url, dead_url()]
    failover = backend("|".join(urls), max_retries=0, max_concurrency=3)
    for _ in range(3):
        completions = failover.generate(CONVERSATIONS, GREEDY)
        assert [c.text for c in completions] == ["live"] * len(CONVERSATIONS)
    assert live.requests == 3 * len(CONVERSATIONS)


def test_a_failing_endpoint_cools_down_while_the_other_works(
    serve: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from arenagym.agents.backends import openai_compat

    broken, url_broken = serve("broken", status=503)
    live, url_live = serve("live")
    both = backend(f"{url_broken}|{url_live}", max_retries=0, max_concurrency=1)
    assert both.cooldown_after == 2
    texts = [c.text for c in both.generate(CONVERSATIONS, GREEDY)]
    assert texts == ["live"] * len(CONVERSATIONS)
    assert broken.requests == both.cooldown_after  # then skipped for cooldown_s
    assert live.requests == len(CONVERSATIONS)
    # after the cool-down it is tried again, and a success clears it
    later = time.monotonic() + both.cooldown_s + 1  # the backend's clock, past the cool-down
    monkeypatch.setattr(openai_compat, "time", SimpleNamespace(monotonic=lambda: later))
    broken.status = 200
    texts = [c.text for c in both.generate(CONVERSATIONS[:4], GREEDY)]
    assert sorted(texts) == ["broken", "broken", "live", "live"]


def test_a_timeout_is_retried_on_the_other_endpoint(serve: Any) -> None:
    slow, url_slow = serve("slow", delay_s=3)
    live, url_live = serve("live")
    both = backend(f"{url_slow}|{url_live}", max_retries=0, max_concurrency=2)
    both.timeout_s = 0.5
    texts = [c.text for c in both.generate(CONVERSATIONS[:2], GREEDY)]
    assert texts == ["live", "live"]
    assert slow.requests == 1 and live.requests == 2  # one row timed out there, then moved


def test_all_dead_is_a_clear_error_naming_each(serve: Any) -> None:
    overloaded, url_503 = serve("busy", status=503)
    secret = "pa55word-42"
    url_dead = dead_url(password=secret)
    failing = backend(f"{url_503}|{url_dead}", max_retries=1)
    with pytest.raises(BackendUnavailableError) as error:
        failing.generate(CONVERSATIONS[:1], GREEDY)
    message = str(error.value)
    assert error.value.attempts == 3  # max_retries + one per endpoint
    assert "2 of 2 endpoints of model 'stub' failed (3 attempts)" in message
    assert f"{url_503}/chat/completions: HTTP 503: busy is overloaded" in message
    assert url_dead.replace(secret, "***") + "/chat/completions: APIConnectionError" in message
    assert secret not in message and secret not in repr(failing)
    assert overloaded.requests >= 1


def test_one_url_keeps_its_error_message() -> None:
    with pytest.raises(BackendUnavailableError, match=r"/chat/completions failed 2 times; last: "):
        backend(dead_url(), max_retries=1).generate(CONVERSATIONS[:1], GREEDY)


def test_tokens_and_max_context_come_from_a_live_endpoint(serve: Any) -> None:
    live, url = serve("live")
    both = backend(f"{dead_url()}|{url}")
    assert both.count_tokens(CONVERSATIONS[0]) == 42
    assert live.tokenize_requests == 1
    assert both.max_context == 321
    with pytest.raises(BackendUnavailableError, match="tokenize") as error:
        backend(f"{dead_url()}|{dead_url(password='hunter22')}").count_tokens(CONVERSATIONS[0])
    assert "hunter22" not in str(error.value)


def test_a_spec_with_several_urls_builds_a_balanced_agent(serve: Any) -> None:
    from arenagym.agents.specs import _build_backend
    from arenagym.benchmarks.suite import parse_suite

    a, url_a = serve("a")
    b, url_b = serve("b")
    spec = f"openai:{url_a} | {url_b},model=stub,max_retries=0"
    built = _build_backend(parse_llm_spec(spec))
    assert built.base_urls == (url_a, url_b)
    built.generate(CONVERSATIONS[:2], GREEDY)
    assert a.requests == b.requests == 1
    assert callable(resolve_agent_factory(spec))
    suite = parse_suite(
        'tasks = [{env = "Math-v0", episodes = 1, seeds = [0]}]\n'
        f'[[players]]\nname = "pair"\nagent = "openai:{url_a}|{url_b},model=stub"\n',
        default_name="demo",
    )
    assert parse_llm_spec(suite.players[0].agent).target == f"{url_a}|{url_b}"


# -- parsing the | list (hypothesis) ----------------------------------------------------------

hosts = st.lists(
    st.tuples(st.sampled_from(["127.0.0.1", "localhost", "gpu-node"]), st.integers(1, 65535)),
    min_size=2,
    max_size=5,
    unique=True,
)
spaces = st.sampled_from(["", " ", "  ", "\t"])


@settings(max_examples=60, deadline=None)
@given(hosts=hosts, pads=st.lists(st.tuples(spaces, spaces), min_size=5, max_size=5))
def test_spaces_around_items_are_dropped(
    hosts: list[tuple[str, int]], pads: list[tuple[str, str]]
) -> None:
    urls = [f"http://{h}:{p}/v1" for h, p in hosts]
    target = "|".join(
        f"{before}{url}{after}" for url, (before, after) in zip(urls, pads, strict=False)
    )
    spec = parse_llm_spec(f"openai:{target},model=m")
    assert spec is not None and spec.target == "|".join(urls)
    assert split_endpoints(target) == tuple(urls)
    assert OpenAICompatibleBackend(target, "m").base_urls == tuple(urls)


@settings(max_examples=60, deadline=None)
@given(hosts=hosts, where=st.integers(0, 5), blank=spaces)
def test_empty_items_are_rejected(hosts: list[tuple[str, int]], where: int, blank: str) -> None:
    urls = [f"http://u:sekret99@{h}:{p}/v1" for h, p in hosts]
    urls.insert(min(where, len(urls)), blank)
    spec = f"openai:{'|'.join(urls)},model=m"
    with pytest.raises(ValueError, match=r"item \d+ is empty") as error:
        parse_llm_spec(spec)
    assert "sekret99" not in str(error.value)
    with pytest.raises(ValueError, match="empty"):
        OpenAICompatibleBackend("|".join(urls), "m")


@settings(max_examples=60, deadline=None)
@given(hosts=hosts, data=st.data())
def test_duplicates_are_rejected(hosts: list[tuple[str, int]], data: st.DataObject) -> None:
    urls = [f"http://u:sekret99@{h}:{p}/v1" for h, p in hosts]
    twice = data.draw(st.sampled_from(urls))
    slash = data.draw(st.sampled_from(["", "/"]))
    urls.insert(data.draw(st.integers(0, len(urls))), f" {twice}{slash}")
    with pytest.raises(ValueError, match="is listed twice") as error:
        parse_llm_spec(f"openai:{'|'.join(urls)},model=m")
    assert "sekret99" not in str(error.value)
    assert twice.replace("sekret99", "***") in str(error.value)


@settings(max_examples=30, deadline=None)
@given(hosts=hosts, inner=st.sampled_from([" ", "\t"]))
def test_a_space_inside_a_url_is_rejected(hosts: list[tuple[str, int]], inner: str) -> None:
    urls = [f"http://{h}:{p}/v1" for h, p in hosts]
    urls[-1] = urls[-1].replace("/v1", f"/{inner}v1")
    with pytest.raises(ValueError, match="contains a space"):
        parse_llm_spec(f"openai:{'|'.join(urls)},model=m")


def test_every_password_in_the_list_is_a_secret() -> None:
    spec = "openai:http://u:first-pw1@a/v1|http://u:second-pw2@b/v1?key=k123456,model=m"
    assert {"first-pw1", "second-pw2"} <= secret_values(spec)
    shown = redact_spec(spec)
    assert "first-pw1" not in shown and "second-pw2" not in shown and "k123456" not in shown
    assert shown == "openai:http://u:***@a/v1|http://u:***@b/v1?key=***,model=m"
    assert "second-pw2" not in repr(parse_llm_spec(spec))
