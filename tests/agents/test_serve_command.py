"""`arenagym serve` as a user runs it: a separate process, answered by the official openai client."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest


def test_arenagym_serve_process_answers_the_openai_client(
    tiny_model_dir: Path, serve_printed_url: Any
) -> None:
    openai = pytest.importorskip("openai", reason="the openai extra is not installed")
    pytest.importorskip("uvicorn", reason="the serve extra is not installed")
    command = [
        sys.executable, "-m", "arenagym", "serve",
        "--model", str(tiny_model_dir), "--port", "0", "--model-name", "tiny",
    ]  # fmt: skip
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    server = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        url, output = serve_printed_url(server, 120)
        port = int(url.rsplit(":", 1)[1].split("/")[0])
        assert port != 0 and f"as 'tiny' on {url}" in output
        assert f"openai:{url},model=tiny" in output
        deadline = time.monotonic() + 120
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as reply:
                    if reply.status == 200:
                        break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"arenagym serve did not come up:\n{output}")
                time.sleep(0.2)
        client = openai.OpenAI(base_url=url, api_key="unused")
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
        with pytest.raises(openai.NotFoundError) as missing:
            client.chat.completions.create(
                model="other", messages=[{"role": "user", "content": "hi"}], max_tokens=2
            )
        assert (
            "`other` does not exist" in missing.value.message and "`tiny`" in missing.value.message
        )
    finally:
        server.terminate()
        server.wait(30)
