"""An API key given to an ``openai:`` agent never reaches the results, the terminal or a log.

A real ``arenagym serve`` app on the tiny model serves over loopback HTTP; the ``arenagym`` CLI runs
a small suite (single-agent tasks and rated games) with the key in the spec, in ``--agent-kwargs``
or in the environment, then writes the Markdown leaderboard. Every byte of the results folder (the
SQLite file and anything beside it), everything printed, and every log record is searched for the
key. The server records the bearer tokens it received, to prove the key was really used.
"""

from __future__ import annotations

import json
import logging
import socket
import sqlite3
import threading
import time
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("torch", reason="the hf extra (torch) is not installed")
pytest.importorskip("transformers", reason="the hf extra (transformers) is not installed")
fastapi = pytest.importorskip("fastapi", reason="the serve extra (fastapi) is not installed")
uvicorn = pytest.importorskip("uvicorn", reason="the serve extra (uvicorn) is not installed")
pytest.importorskip("openai", reason="the openai extra is not installed")

from fastapi import Request  # noqa: E402  (module level: FastAPI resolves the annotation)
from fastapi.responses import JSONResponse  # noqa: E402

from arenagym.agents.specs import clear_backend_cache  # noqa: E402
from arenagym.benchmarks.store import ResultsStore  # noqa: E402
from arenagym.cli import main  # noqa: E402

SUITE = """\
name = "secrets"

[[tasks]]
name = "math"
env = "Math-v0"
kwargs = { difficulty = 1, max_turns = 2, max_invalid_actions = 1 }
episodes = 1
seeds = [0, 1]
max_steps = 4

[[players]]
name = "first-legal"
agent = "arenagym.envs.textarena.opponents:FirstLegalOpponent"

[[matches]]
name = "nim"
env = "TextArena/Nim-AEC-v0"
episodes = 1
seeds = [0]
max_steps = 40
"""


class Server:
    """``arenagym serve``'s app on the tiny model, in a thread on a free loopback port.

    ``/v1`` is the real API; ``/echo/v1`` answers every chat request with a 401 whose message
    repeats the bearer token it got (as careless servers do). ``tokens`` lists every bearer token
    received.
    """

    def __init__(self, model_dir: Path) -> None:
        from arenagym.agents.backends.hf import TransformersBackend
        from arenagym.agents.serve import build_app

        app = build_app(TransformersBackend(model_dir, device="cpu", dtype="float32"), "tiny")
        self.tokens: list[str] = []

        @app.middleware("http")
        async def record(request: Request, call_next: Any) -> Any:
            self.tokens.append(request.headers.get("authorization", ""))
            return await call_next(request)

        @app.post("/echo/v1/chat/completions")
        async def echo(request: Request) -> JSONResponse:
            message = f"invalid API key: {request.headers.get('authorization')}"
            body = {"error": {"message": message, "type": "AuthenticationError", "code": 401}}
            return JSONResponse(body, status_code=401)

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.root = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )

    def __enter__(self) -> Server:
        self.thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            assert self.thread.is_alive() and time.monotonic() < deadline, "no server"
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()


@pytest.fixture(scope="module")
def server(tiny_model_dir: Path) -> Iterator[Server]:
    with Server(tiny_model_dir) as running:
        yield running


def run_and_search(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    secret: str,
    agent: str,
    agent_kwargs: dict[str, Any] | None = None,
    *,
    expect_status: int = 0,
) -> Path:
    """Run the suite and the leaderboard through the CLI; fail if ``secret`` shows anywhere."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    suite = tmp_path / "secrets.toml"
    suite.write_text(SUITE)
    results = tmp_path / "results"
    store = results / "runs.sqlite"
    argv = ["run", "--suite", str(suite), "--agent", agent, "--store", str(store)]
    if agent_kwargs is not None:
        argv += ["--agent-kwargs", json.dumps(agent_kwargs)]
    caplog.set_level(logging.DEBUG)
    clear_backend_cache()
    try:
        assert main([*argv, "--concurrency", "2"]) == expect_status
        if expect_status == 0:
            markdown = results / "leaderboard.md"
            assert main(["leaderboard", "--store", str(store), "--markdown", str(markdown)]) == 0
            assert markdown.is_file()
    finally:
        clear_backend_cache()
    printed = capsys.readouterr()
    logged = caplog.text + "".join(repr(r.args) + r.getMessage() for r in caplog.records)
    for where, text in (("stdout", printed.out), ("stderr", printed.err), ("logs", logged)):
        assert secret not in text, f"the key shows in {where}"
    files = [p for p in results.rglob("*") if p.is_file()] if results.exists() else []
    assert expect_status != 0 or store in files
    for path in files:
        assert secret.encode() not in path.read_bytes(), f"the key is in {path}"
    if store.is_file():  # transcripts are stored compressed: look inside them too
        with sqlite3.connect(store) as db:
            for table in ("transcripts", "match_transcripts"):
                for (data,) in db.execute(f"SELECT data FROM {table}"):
                    assert secret.encode() not in zlib.decompress(data), f"the key is in {table}"
    return store


def test_key_in_the_spec(
    server: Server, tmp_path: Path, capsys: Any, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "SECRET-XYZ-1234"
    url = f"{server.root}/v1"
    spec = f"openai:{url},model=tiny,api_key={secret},temperature=0,max_tokens=4"
    store = run_and_search(tmp_path, capsys, caplog, secret, spec)
    assert f"Bearer {secret}" in server.tokens  # the key was used
    with ResultsStore(store) as results:
        rows = results.rows(suite="secrets")
        matches = results.match_rows(suite="secrets")
    shown = f"openai:{url},model=tiny,api_key=***,temperature=0,max_tokens=4"
    assert len(rows) == 2 and {(row.agent, row.agent_spec) for row in rows} == {(shown, shown)}
    assert not any(row.is_error for row in rows)
    assert len(matches) == 2 and all(shown in match.lineup for match in matches)
    assert "api_key=***" in (store.parent / "leaderboard.md").read_text()


def test_key_in_agent_kwargs(
    server: Server, tmp_path: Path, capsys: Any, caplog: pytest.LogCaptureFixture
) -> None:
    secret = "SECRET-KWARGS-5678"
    spec = f"openai:{server.root}/v1,model=tiny,temperature=0,max_tokens=4"
    store = run_and_search(tmp_path, capsys, caplog, secret, spec, {"api_key": secret})
    assert f"Bearer {secret}" in server.tokens
    with ResultsStore(store) as results:
        rows = results.rows(suite="secrets")
    assert len(rows) == 2 and all(row.agent_kwargs == {"api_key": "***"} for row in rows)
    assert all(row.agent == f'{spec}(api_key="***")' for row in rows)


def test_key_from_the_environment(
    server: Server,
    tmp_path: Path,
    capsys: Any,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    named, default = "SECRET-NAMED-ENV-9012", "SECRET-OPENAI-ENV-3456"
    monkeypatch.setenv("ARENAGYM_TEST_SERVER_KEY", named)
    monkeypatch.setenv("OPENAI_API_KEY", default)
    spec = f"openai:{server.root}/v1,model=tiny,temperature=0,max_tokens=4"
    run_and_search(
        tmp_path / "named", capsys, caplog, named, f"{spec},api_key_env=ARENAGYM_TEST_SERVER_KEY"
    )
    assert f"Bearer {named}" in server.tokens
    run_and_search(tmp_path / "default", capsys, caplog, default, spec)
    assert f"Bearer {default}" in server.tokens


def test_key_echoed_by_a_failing_server(
    server: Server, tmp_path: Path, capsys: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """The server repeats the key in its 401 message: the recorded errors hide it."""
    secret = "SECRET-ECHOED-7777"
    spec = f"openai:{server.root}/echo/v1,model=tiny,api_key={secret},max_tokens=4"
    store = run_and_search(
        tmp_path, capsys, caplog, secret, spec, {"max_retries": 0}, expect_status=1
    )
    with ResultsStore(store) as results:
        rows = results.rows(suite="secrets")
        matches = results.match_rows(suite="secrets")
    assert rows and all(row.stop_reason == "agent_error" for row in rows)
    assert all("invalid API key: Bearer ***" in row.info["error"] for row in rows)
    assert matches and all(match.stop_reason == "agent_error" for match in matches)


@pytest.mark.parametrize(
    "extra",
    [
        ",temprature=0",  # a misspelt key
        ",api_kye=SECRET-MISSPELT-1111",  # a misspelt key that holds the secret itself
        ",model=tiny,temperature=hot",  # a bad value
    ],
)
def test_setup_errors_do_not_repeat_the_key(
    server: Server,
    tmp_path: Path,
    capsys: Any,
    caplog: pytest.LogCaptureFixture,
    extra: str,
) -> None:
    spec = f"openai:{server.root}/v1,model=tiny,api_key=SECRET-SETUP-2222{extra}"
    for secret in ("SECRET-SETUP-2222", "SECRET-MISSPELT-1111"):
        run_and_search(tmp_path, capsys, caplog, secret, spec, expect_status=2)
        capsys.readouterr()
    run_and_search(
        tmp_path / "kwargs",
        capsys,
        caplog,
        "SECRET-KWARG-SETUP-3333",
        f"openai:{server.root}/v1,model=tiny",
        {"api_key": "SECRET-KWARG-SETUP-3333", "temprature": 0},
        expect_status=2,
    )
