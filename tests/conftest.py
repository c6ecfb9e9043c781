"""Fixtures shared by every test folder.

- ``tiny_model_dir`` -> ``pathlib.Path``: a tiny random Qwen2 chat model in Hugging Face format
  (:func:`arenagym.agents.tiny_model.build_tiny_model`, seed 0), under ``tmp_path_factory``,
  built once per pytest(-xdist) worker in about a second after the imports. Never write into it.
- ``serve_printed_url`` -> :func:`printed_serve_url`: the address an ``arenagym serve``
  subprocess prints on start.

Everything runs offline: ``HF_HUB_OFFLINE`` / ``TRANSFORMERS_OFFLINE`` are set before any import.
Tests that need the ``hf`` extra skip cleanly when it is not installed.
"""

from __future__ import annotations

import os
import queue
import re
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random Qwen2 chat model directory (Hugging Face format), built once per worker."""
    pytest.importorskip("torch", reason="the hf extra (torch) is not installed")
    pytest.importorskip("transformers", reason="the hf extra (transformers) is not installed")
    from arenagym.agents.tiny_model import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny-model"), seed=0)


def printed_serve_url(server: subprocess.Popen[bytes], timeout_s: float) -> tuple[str, str]:
    """The ``http://HOST:PORT/v1`` an ``arenagym serve`` subprocess (stdout piped) prints on
    start, and everything it printed so far; fails the test when it prints none in time."""
    lines: queue.Queue[str | None] = queue.Queue()

    def read() -> None:
        assert server.stdout is not None
        for raw in server.stdout:
            lines.put(raw.decode(errors="replace"))
        lines.put(None)

    threading.Thread(target=read, daemon=True).start()
    output = ""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=1)
        except queue.Empty:
            continue
        if line is None:
            break
        output += line
        match = re.search(r"agent spec: openai:(http://127\.0\.0\.1:\d+/v1),", line)
        if match:
            return match.group(1), output
    pytest.fail(f"arenagym serve did not print its address:\n{output}")


@pytest.fixture(scope="session")
def serve_printed_url() -> Callable[[subprocess.Popen[bytes], float], tuple[str, str]]:
    """:func:`printed_serve_url`, for tests that start ``arenagym serve`` themselves."""
    return printed_serve_url
