"""Connecting to a ``ray start --head`` cluster that uses token authentication.

Since Ray 2.59, ``ray start --head`` turns token authentication on when a token exists (any
earlier local ``ray.init()`` writes one to ``~/.ray/auth_token``), but before Ray 2.61 a driver
only sends the token when it connects with ``address="auto"``: ``--ray HOST:PORT`` was refused
after a minute of retries. :func:`arenagym.agents.cluster.connect` sends the configured token for
every address. The cluster here is a real ``ray start --head`` in its own home folder (so its
token is that folder's ``.ray/auth_token``), stopped by signalling its process group only.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("ray")

CLIENT = """
from arenagym.agents.cluster import connect
ray = connect({address!r})
print("answer", ray.get(ray.remote(lambda: 41 + 1).remote()))
"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def head_with_token() -> Iterator[tuple[str, dict[str, str]]]:
    # a short folder: Ray's socket paths under --temp-dir must stay within 107 characters
    home = Path(tempfile.mkdtemp(prefix="rayhome", dir="/tmp"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env["HOME"] = str(home)
    port = _free_port()
    ray_cli = str(Path(sys.executable).with_name("ray"))
    # a token in the home folder (as any earlier local ray.init() leaves one) makes
    # `ray start --head` turn token authentication on
    subprocess.run(
        [ray_cli, "get-auth-token", "--generate"],
        env=env,
        check=True,
        capture_output=True,
        timeout=60,
    )
    head = subprocess.Popen(
        [
            ray_cli,
            "start",
            "--head",
            "--block",
            f"--port={port}",
            "--num-cpus=1",
            f"--temp-dir={home / 't'}",
            "--include-dashboard=false",
            "--disable-usage-stats",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and head.poll() is None:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.5)
        if head.poll() is not None or not (home / ".ray" / "auth_token").is_file():
            head.kill()
            output = head.communicate()[0]
            pytest.fail(f"ray start --head did not start with a token:\n{output}")
        yield f"127.0.0.1:{port}", env
    finally:
        if head.poll() is None:
            os.killpg(head.pid, signal.SIGINT)
            try:
                head.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(head.pid, signal.SIGKILL)
                head.wait()
        shutil.rmtree(home, ignore_errors=True)


def test_an_explicit_address_reaches_a_cluster_with_token_authentication(
    head_with_token: tuple[str, dict[str, str]],
) -> None:
    address, env = head_with_token
    client = subprocess.run(
        [sys.executable, "-c", CLIENT.format(address=address)],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert client.returncode == 0, client.stderr[-3000:]
    assert "answer 42" in client.stdout
