"""`arenagym serve` as a user runs it: a separate process, answered by the official openai client."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_arenagym_serve_process_answers_the_openai_client(tiny_model_dir: Path) -> None:
    openai = pytest.importorskip("openai", reason="the openai extra is not installed")
    pytest.importorskip("uvicorn", reason="the serve extra is not installed")
    port = _free_port()
    command = [
        sys.executable, "-m", "arenagym.benchmarks.cli", "serve",
        "--model", str(tiny_model_dir), "--port", str(port), "--model-name", "tiny",
    ]  # fmt: skip
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    server = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as reply:
                    if reply.status == 200:
                        break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    output = server.stdout.read().decode() if server.stdout else ""
                    pytest.fail(f"arenagym serve did not come up:\n{output}")
                time.sleep(0.2)
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="unused")
        assert [model.id for model in client.models.list().data] == ["tiny"]
        reply = client.chat.completions.create(
            model="tiny",
            messages=[{"role": "user", "content": "What is 2 + 2?"}],
            max_tokens=8,
            temperature=0,
            logprobs=True,
        )
        choice = reply.choices[0]
        assert choice.finish_reason in ("stop", "length")
        assert reply.usage.completion_tokens == len(choice.logprobs.content) >= 1
        assert all(token.logprob <= 0 for token in choice.logprobs.content)
    finally:
        server.terminate()
        server.wait(30)
