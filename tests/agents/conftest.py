"""Shared fixtures for the LLM-agent tests: a tiny model built once per run, and a live server.

Fixtures (all session-scoped, so each pytest(-xdist) worker builds/starts them at most once):

- ``tiny_model_dir`` (from ``tests/conftest.py``): the tiny random Qwen2 chat model.
- ``tiny_backend`` -> ``TransformersBackend`` on ``tiny_model_dir`` (CPU, float32). Share it
  rather than loading another; do not change its weights (build your own backend for that).
- ``tiny_server_url`` -> ``str``: the base URL, ending in ``/v1``, of ``arenagym serve`` serving
  ``tiny_model_dir`` over real HTTP on a free loopback port (uvicorn in a background thread of the
  test process, with its own backend instance). Pass it as ``base_url`` to ``openai.OpenAI`` or
  :class:`~arenagym.agents.backends.openai_compat.OpenAICompatibleBackend`.
- ``tiny_server_model_name`` -> ``str``: the model name that server answers to (``"tiny"``).
- ``serve_asgi_in_thread`` -> the :class:`serve_in_thread` class: ``with
  serve_asgi_in_thread(app, uvicorn) as url:`` serves any ASGI app (e.g. another
  ``arenagym.agents.serve.build_app(...)``) on a free loopback port; ``url`` has no ``/v1``.

Everything runs offline (``tests/conftest.py`` sets ``HF_HUB_OFFLINE`` before any import).
Tests that need the ``hf``/``serve`` extras skip cleanly when they are not installed.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

TINY_SERVER_MODEL_NAME = "tiny"


@pytest.fixture(scope="session")
def tiny_backend(tiny_model_dir: Path) -> Any:
    """A CPU float32 ``TransformersBackend`` on the tiny model (shared: do not modify)."""
    from arenagym.agents.backends.hf import TransformersBackend

    return TransformersBackend(tiny_model_dir, device="cpu", dtype="float32")


@pytest.fixture(scope="session")
def tiny_server_model_name() -> str:
    """The model name ``tiny_server_url``'s server answers to."""
    return TINY_SERVER_MODEL_NAME


@pytest.fixture(scope="session")
def tiny_server_url(tiny_model_dir: Path) -> Iterator[str]:
    """``arenagym serve`` on the tiny model, on a free loopback port; yields ``http://…/v1``."""
    pytest.importorskip("fastapi", reason="the serve extra (fastapi) is not installed")
    uvicorn = pytest.importorskip("uvicorn", reason="the serve extra (uvicorn) is not installed")
    from arenagym.agents.backends.hf import TransformersBackend
    from arenagym.agents.serve import build_app

    backend = TransformersBackend(tiny_model_dir, device="cpu", dtype="float32")
    app = build_app(backend, TINY_SERVER_MODEL_NAME)
    with serve_in_thread(app, uvicorn) as url:
        yield f"{url}/v1"


@pytest.fixture(scope="session")
def serve_asgi_in_thread() -> type[serve_in_thread]:
    """The :class:`serve_in_thread` helper, for tests that serve their own app."""
    return serve_in_thread


class serve_in_thread:
    """Run an ASGI app with uvicorn on a pre-bound free loopback port in a daemon thread.

    ``with serve_in_thread(app, uvicorn) as url:`` yields ``http://127.0.0.1:PORT``; the server is
    shut down on exit. The socket is bound before uvicorn starts, so the port cannot be taken by
    someone else in between.
    """

    def __init__(self, app: Any, uvicorn: Any, startup_timeout_s: float = 30.0) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        config = uvicorn.Config(app, log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )
        self.startup_timeout_s = startup_timeout_s

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + self.startup_timeout_s
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the test server did not start")
            time.sleep(0.01)
        return f"http://127.0.0.1:{self.port}"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()
