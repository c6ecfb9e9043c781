"""``arenagym serve``: the official openai client over real HTTP, errors, batching, the CLI."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("torch", reason="the hf extra (torch) is not installed")
pytest.importorskip("transformers", reason="the hf extra (transformers) is not installed")
pytest.importorskip("fastapi", reason="the serve extra (fastapi) is not installed")
pytest.importorskip("uvicorn", reason="the serve extra (uvicorn) is not installed")
openai = pytest.importorskip("openai", reason="the openai extra is not installed")
httpx = pytest.importorskip("httpx", reason="the openai extra (httpx) is not installed")

from arenagym.agents.backends import SamplingParams, TransformersBackend  # noqa: E402
from arenagym.agents.serve import RequestBatcher  # noqa: E402
from arenagym.cli import build_parser, main  # noqa: E402

MESSAGES = [
    {"role": "system", "content": "You are a careful math solver."},
    {"role": "user", "content": "Evaluate $(3 + 4) \\times 2$."},
]


@pytest.fixture(scope="module")
def client(tiny_server_url: str) -> Any:
    with openai.OpenAI(base_url=tiny_server_url, api_key="EMPTY", max_retries=0) as client:
        yield client


def test_openai_client_chat_completion_with_logprobs(
    client: Any, tiny_server_model_name: str, tiny_backend: TransformersBackend
) -> None:
    response = client.chat.completions.create(
        model=tiny_server_model_name,
        messages=MESSAGES,
        max_tokens=12,
        temperature=0,
        logprobs=True,
        top_logprobs=2,
    )
    choice = response.choices[0]
    assert response.object == "chat.completion" and response.model == tiny_server_model_name
    assert choice.message.role == "assistant"
    assert choice.finish_reason in ("stop", "length")
    content = choice.logprobs.content
    assert len(content) == response.usage.completion_tokens
    assert all(len(item.top_logprobs) == 2 for item in content)
    assert response.usage.total_tokens == (
        response.usage.prompt_tokens + response.usage.completion_tokens
    )
    # The same model in-process gives the same greedy completion and log-probabilities.
    [local] = tiny_backend.generate([MESSAGES], SamplingParams(max_tokens=12, temperature=0))
    assert choice.message.content == local.text
    assert response.usage.prompt_tokens == len(local.prompt_token_ids)
    assert [item.logprob for item in content] == pytest.approx(local.logprobs, abs=1e-4)
    tokens = [tiny_backend.tokenizer.decode([t]) for t in local.completion_token_ids]
    assert [item.token for item in content] == tokens


def test_return_token_ids_and_sampling_options(
    client: Any, tiny_server_model_name: str, tiny_backend: TransformersBackend
) -> None:
    def request() -> Any:
        return client.chat.completions.create(
            model=tiny_server_model_name,
            messages=MESSAGES,
            max_completion_tokens=6,
            temperature=0.8,
            top_p=0.9,
            seed=11,
            stop=["@@"],
            extra_body={"return_token_ids": True, "top_k": 20},
        )

    response = request()
    extra = response.model_extra
    assert extra["prompt_token_ids"] == tiny_backend.prompt_ids(MESSAGES)
    token_ids = response.choices[0].model_extra["token_ids"]
    assert len(token_ids) == response.usage.completion_tokens <= 6
    assert response.choices[0].logprobs is None  # not requested
    again = request()
    assert again.choices[0].model_extra["token_ids"] == token_ids  # seeded: reproducible


def test_models_health_and_tokenize(
    tiny_server_url: str, client: Any, tiny_server_model_name: str
) -> None:
    models = client.models.list()
    assert [m.id for m in models.data] == [tiny_server_model_name]
    assert models.data[0].model_extra["max_model_len"] == 2048
    root = tiny_server_url.removesuffix("/v1")
    assert httpx.get(f"{root}/health").json() == {"status": "ok"}
    tokens = httpx.post(f"{root}/tokenize", json={"messages": MESSAGES}).json()
    assert tokens["count"] == len(tokens["tokens"]) > 10
    assert tokens["max_model_len"] == 2048


def test_errors_are_openai_style(
    tiny_server_url: str, client: Any, tiny_server_model_name: str
) -> None:
    with pytest.raises(openai.NotFoundError) as not_found:
        client.chat.completions.create(model="gpt-9", messages=MESSAGES, max_tokens=2)
    assert "gpt-9" in not_found.value.message
    for n in (0, 65):
        with pytest.raises(openai.BadRequestError) as bad:
            client.chat.completions.create(
                model=tiny_server_model_name, messages=MESSAGES, max_tokens=2, n=n
            )
        assert bad.value.status_code == 400 and "n must be between 1 and 64" in bad.value.message
    with pytest.raises(openai.BadRequestError, match="temperature"):
        client.chat.completions.create(
            model=tiny_server_model_name, messages=MESSAGES, max_tokens=2, temperature=-1
        )
    long_prompt = [{"role": "user", "content": " ".join(["word"] * 2100)}]
    with pytest.raises(openai.BadRequestError, match="context"):
        client.chat.completions.create(
            model=tiny_server_model_name, messages=long_prompt, max_tokens=2
        )

    url = f"{tiny_server_url}/chat/completions"
    missing = httpx.post(url, json={"model": tiny_server_model_name})
    assert missing.status_code == 422
    assert "messages" in missing.json()["error"]["message"]
    not_json = httpx.post(url, content=b"{not json", headers={"content-type": "application/json"})
    assert not_json.status_code == 400 and "JSON" in not_json.json()["error"]["message"]
    nowhere = httpx.get(f"{tiny_server_url}/nowhere")
    assert nowhere.status_code == 404 and nowhere.json()["error"]["code"] == 404


def test_concurrent_requests_all_answered(
    tiny_server_url: str, tiny_server_model_name: str
) -> None:
    async def run() -> list[Any]:
        async with openai.AsyncOpenAI(base_url=tiny_server_url, api_key="EMPTY") as aclient:
            return await asyncio.gather(
                *[
                    aclient.chat.completions.create(
                        model=tiny_server_model_name,
                        messages=[{"role": "user", "content": f"Question {i}: what is {i}+{i}?"}],
                        max_tokens=4 + i,
                        temperature=0,
                    )
                    for i in range(6)
                ]
            )

    responses = asyncio.run(run())
    assert [r.usage.completion_tokens for r in responses] == [4 + i for i in range(6)]


class RecordingBackend:
    """Wraps a real backend and records the batch sizes it is asked for."""

    def __init__(self, inner: TransformersBackend) -> None:
        self.inner = inner
        self.batches: list[int] = []

    def generate_each(self, conversations: Any, params: Any) -> Any:
        self.batches.append(len(conversations))
        return self.inner.generate_each(conversations, params)


def test_batcher_decodes_waiting_requests_together(tiny_backend: TransformersBackend) -> None:
    recorder = RecordingBackend(tiny_backend)
    batcher = RequestBatcher(recorder, batch_window_s=0.05, max_batch_size=4)

    async def run() -> list[Any]:
        worker = asyncio.create_task(batcher.run())
        await asyncio.sleep(0)
        try:
            return await asyncio.gather(
                *[
                    batcher.submit(
                        [{"role": "user", "content": f"n={i}"}],
                        SamplingParams(max_tokens=3, temperature=0),
                    )
                    for i in range(6)
                ]
            )
        finally:
            worker.cancel()

    results = asyncio.run(run())
    batcher.close()
    assert len(results) == 6 and all(len(r.completion_token_ids) == 3 for r in results)
    assert recorder.batches == [4, 2]  # all six were waiting: two batches, not six calls


def parse_args(argv: list[str]) -> Any:
    """``arenagym serve ARGV``'s parsed arguments."""
    return build_parser(["serve"]).parse_args(["serve", *argv])


def test_parse_args_defaults_to_loopback() -> None:
    args = parse_args(["--model", "/some/model"])
    assert (args.host, args.port, args.model_name) == ("127.0.0.1", 8000, None)
    assert parse_args(["--model", "m", "--served-model-name", "a", "b"]).model_name == ["a", "b"]
    assert parse_args(["--model", "m", "--model-name", "a"]).model_name == ["a"]


def serve_main(argv: list[str], monkeypatch: pytest.MonkeyPatch, model: str) -> dict[str, Any]:
    """Run ``arenagym serve ARGV`` with its server in a thread: list the models, ask ``model`` and a
    model the server does not have, then stop. Returns what was seen."""
    import threading

    import uvicorn

    from arenagym.agents import serve

    seen: dict[str, Any] = {}

    def run_server(app: Any, sock: Any, log_level: str = "warning") -> None:
        seen["port"] = sock.getsockname()[1]
        server = uvicorn.Server(uvicorn.Config(app, log_level=log_level, lifespan="on"))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        try:
            while not server.started:
                assert thread.is_alive(), "the server did not start"
                threading.Event().wait(0.01)
            url = f"http://127.0.0.1:{seen['port']}/v1"
            with openai.OpenAI(base_url=url, api_key="EMPTY", max_retries=0) as cli_client:
                seen["models"] = [m.id for m in cli_client.models.list().data]
                seen["response"] = cli_client.chat.completions.create(
                    model=model, messages=MESSAGES, max_tokens=3, temperature=0
                )
            seen["missing"] = httpx.post(
                f"{url}/chat/completions", json={"model": "gpt-9", "messages": MESSAGES}
            )
        finally:
            server.should_exit = True
            thread.join(10)

    monkeypatch.setattr(serve, "run_server", run_server)
    seen["status"] = main(["serve", *argv])
    return seen


def test_main_serves_the_model_over_http(
    tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """main() binds the port (0: any free one), prints where it listens and the agent spec,
    and serves the model under --served-model-name."""
    argv = ["--model", str(tiny_model_dir), "--model-name", "cli-tiny", "--device", "cpu"]
    seen = serve_main([*argv, "--port", "0"], monkeypatch, "cli-tiny")
    assert seen["status"] == 0 and seen["port"] != 0
    assert seen["response"].usage.completion_tokens == 3
    assert seen["response"].model == "cli-tiny" and seen["models"] == ["cli-tiny"]
    url = f"http://127.0.0.1:{seen['port']}/v1"
    out = capsys.readouterr().out
    assert url in out and f"openai:{url},model=cli-tiny" in out
    missing = seen["missing"]
    assert missing.status_code == 404
    error = missing.json()["error"]
    assert error["type"] == "NotFoundError" and error["param"] == "model" and error["code"] == 404
    assert "`gpt-9` does not exist" in error["message"] and "`cli-tiny`" in error["message"]


def test_main_takes_a_registry_name_and_defaults_to_short_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from arenagym.agents.serve import default_model_name

    monkeypatch.setenv("ARENAGYM_HOME", str(tmp_path / "home"))
    seen = serve_main(["--model", "tiny", "--port", "0", "--device", "cpu"], monkeypatch, "tiny")
    assert seen["status"] == 0 and seen["models"] == ["tiny"]
    assert f"openai:http://127.0.0.1:{seen['port']}/v1,model=tiny" in capsys.readouterr().out
    assert default_model_name("tiny") == "tiny"
    assert default_model_name(str(tmp_path / "home" / "models" / "tiny")) == "tiny"
    assert default_model_name("/models/Qwen2.5-0.5B-Instruct/") == "Qwen2.5-0.5B-Instruct"


def test_main_reports_a_bad_model_or_port(
    tmp_path: Path, tiny_model_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from arenagym.agents.serve import bind_socket

    assert main(["serve", "--model", str(tmp_path / "absent")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("arenagym serve: error: ") and "no model directory" in err
    with bind_socket("127.0.0.1", 0) as taken:
        port = taken.getsockname()[1]
        assert main(["serve", "--model", str(tiny_model_dir), "--port", str(port)]) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"arenagym serve: error: cannot listen on 127.0.0.1:{port}")


def test_several_served_names(tiny_backend: TransformersBackend, serve_asgi_in_thread: Any) -> None:
    import uvicorn

    from arenagym.agents.serve import build_app

    app = build_app(tiny_backend, ["tiny-a", "tiny-b"])
    with (
        serve_asgi_in_thread(app, uvicorn) as url,
        openai.OpenAI(base_url=f"{url}/v1", api_key="EMPTY", max_retries=0) as client,
    ):
        assert [m.id for m in client.models.list().data] == ["tiny-a", "tiny-b"]
        reply = client.chat.completions.create(model="tiny-b", messages=MESSAGES, max_tokens=2)
        assert reply.model == "tiny-b"
        assert client.models.retrieve("tiny-a").id == "tiny-a"
        with pytest.raises(openai.NotFoundError, match="tiny-a"):
            client.chat.completions.create(model="tiny-c", messages=MESSAGES, max_tokens=2)


def test_python_m_arenagym_serve_is_a_cli() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "arenagym", "serve", "--help"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert "--model" in result.stdout and "--model-name" in result.stdout
    assert "--served-model-name" in result.stdout and "registry name" in result.stdout


class GenerateOnly:
    """A backend with only the GenerationBackend methods (no generate_each), recording its calls."""

    def __init__(self, inner: TransformersBackend, fail: bool = False) -> None:
        self.inner = inner
        self.fail = fail
        self.calls: list[tuple[int, SamplingParams]] = []
        self.tokenizer = inner.tokenizer

    def generate(self, conversations: Any, params: SamplingParams) -> Any:
        self.calls.append((len(conversations), params))
        if self.fail:
            raise RuntimeError("the GPU caught fire")
        return self.inner.generate(conversations, params)

    def count_tokens(self, conversation: Any) -> int:
        return self.inner.count_tokens(conversation)

    @property
    def max_context(self) -> int:
        return self.inner.max_context


def test_batcher_groups_by_params_for_plain_backends(tiny_backend: TransformersBackend) -> None:
    backend = GenerateOnly(tiny_backend)
    batcher = RequestBatcher(backend, batch_window_s=0.05)
    a, b = SamplingParams(max_tokens=2, temperature=0), SamplingParams(max_tokens=3, temperature=0)

    async def run() -> list[Any]:
        worker = asyncio.create_task(batcher.run())
        await asyncio.sleep(0)
        try:
            conversation = [{"role": "user", "content": "hi"}]
            return await asyncio.gather(*[batcher.submit(conversation, p) for p in (a, b, a, b, a)])
        finally:
            worker.cancel()

    results = asyncio.run(run())
    batcher.close()
    assert [len(r.completion_token_ids) for r in results] == [2, 3, 2, 3, 2]
    assert sorted(backend.calls, key=lambda c: c[1].max_tokens) == [(3, a), (2, b)]


def test_a_failing_backend_answers_500(
    tiny_backend: TransformersBackend, serve_asgi_in_thread: Any
) -> None:
    import uvicorn

    from arenagym.agents.serve import build_app

    app = build_app(GenerateOnly(tiny_backend, fail=True), "broken")
    with serve_asgi_in_thread(app, uvicorn) as url:
        body = {"model": "broken", "messages": MESSAGES, "max_tokens": 2}
        response = httpx.post(f"{url}/v1/chat/completions", json=body)
        assert response.status_code == 500
        assert "the GPU caught fire" in response.json()["error"]["message"]
        # The server survives a failed batch.
        assert httpx.get(f"{url}/health").status_code == 200
        assert httpx.post(f"{url}/v1/chat/completions", json=body).status_code == 500
