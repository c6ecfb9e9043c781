"""Security and reliability of the SWE sandbox runtimes, run against every runtime available.

bubblewrap must be available (CI installs it); Docker runs when a daemon answers at
``$DOCKER_HOST`` with the base image built, else its cases skip with the reason.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from arenagym.envs.swe.runtime import (
    Limits,
    Runtime,
    SandboxError,
    UnreadableFileError,
    available_runtimes,
    make_runtime,
)
from arenagym.envs.swe.runtime.bubblewrap import (
    TEMP_PREFIX,
    BubblewrapRuntime,
    bubblewrap_unavailable_reason,
    leftover_sandboxes,
)
from arenagym.envs.swe.runtime.docker import (
    CONTAINER_LABEL,
    ORPHAN_GRACE_S,
    DockerRuntime,
    docker_unavailable_reason,
)
from arenagym.envs.swe.runtime.limits import CGROUP_PREFIX, cgroup_hierarchies
from arenagym.envs.swe.workspace import ChangeTracker, Workspace

PROJECT_ROOT = Path(__file__).resolve().parents[3]
GIT_IDENTITY = ["-c", "user.name=arenagym", "-c", "user.email=arenagym@example.invalid"]
SMALL_LIMITS = Limits(timeout_s=20, memory_mb=256, max_processes=64, max_output_bytes=64_000)

_DOCKER_REASON = docker_unavailable_reason()
SANDBOXES = [
    "bubblewrap",
    pytest.param(
        "docker",
        marks=pytest.mark.skipif(_DOCKER_REASON is not None, reason=str(_DOCKER_REASON)),
    ),
]


def make_git_repo(root: Path, files: dict[str, bytes | str]) -> Path:
    """A one-commit git repository at ``root`` holding ``files``."""
    root.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, str):
            path.write_text(content)
        else:
            path.write_bytes(content)
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=root, check=True)
    subprocess.run(["git", "add", "-A"], cwd=root, check=True)
    subprocess.run(["git", *GIT_IDENTITY, "commit", "-q", "-m", "base"], cwd=root, check=True)
    return root


@pytest.fixture
def small_repo(tmp_path: Path) -> Path:
    return make_git_repo(
        tmp_path / "repo",
        {
            "calc/__init__.py": "def add(a, b):\n    return a + b\n",
            "tests/test_calc.py": "from calc import add\n\n\ndef test_add():\n"
            "    assert add(2, 3) == 5\n",
            "README.md": "# calc\n",
            "data/blob.bin": bytes(range(256)) * 4,
        },
    )


def _base_of(repo: Path) -> Workspace:
    """``repo`` (one commit) as the base a :class:`ChangeTracker` diffs against."""
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, check=True,
                          capture_output=True, text=True).stdout.strip()  # fmt: skip
    return Workspace(repo, head)


def _start(name: str, repo: Path, limits: Limits = SMALL_LIMITS, **options: object) -> Runtime:
    runtime = make_runtime(name, limits=limits, **options)
    runtime.start(repo)
    return runtime


@pytest.fixture(params=SANDBOXES)
def sandbox(request: pytest.FixtureRequest, small_repo: Path) -> Iterator[Runtime]:
    runtime = _start(request.param, small_repo)
    yield runtime
    runtime.stop()


def test_bubblewrap_is_available_here() -> None:
    assert bubblewrap_unavailable_reason() is None
    runtimes = available_runtimes()
    assert set(runtimes) == {"bubblewrap", "docker", "local"}
    assert runtimes["bubblewrap"] is None and runtimes["local"] is None


# -- isolation -------------------------------------------------------------------------------


def test_sandbox_has_python_pytest_and_git(sandbox: Runtime) -> None:
    result = sandbox.run(
        "python -c 'import sys, pytest; print(sys.version_info >= (3, 11))' && git --version "
        "&& python -m pytest -q tests 2>&1 | tail -n 1"
    )
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "True" and lines[1].startswith("git version")
    assert "1 passed" in lines[-1]


def test_no_network(sandbox: Runtime) -> None:
    probe = (
        "import socket\n"
        "socket.setdefaulttimeout(2)\n"
        "for what, call in [\n"
        "    ('dns', lambda: socket.getaddrinfo('pypi.org', 443)),\n"
        "    ('ip', lambda: socket.create_connection(('1.1.1.1', 53))),\n"
        "    ('ip6', lambda: socket.create_connection(('2606:4700:4700::1111', 53))),\n"
        "]:\n"
        "    try:\n"
        "        call()\n"
        "        print(what, 'REACHED')\n"
        "    except OSError as error:\n"
        "        print(what, 'blocked', type(error).__name__)\n"
    )
    result = sandbox.run(f"python -c {_quote(probe)}", timeout_s=15)
    assert result.exit_code == 0, result.output
    assert "REACHED" not in result.output
    assert [line.split()[:2] for line in result.output.splitlines()] == [
        ["dns", "blocked"], ["ip", "blocked"], ["ip6", "blocked"],
    ]


def _quote(text: str) -> str:
    return "'" + text.replace("'", "'\"'\"'") + "'"


def test_no_write_outside_the_workspace(sandbox: Runtime) -> None:
    host_marker = Path(tempfile.gettempdir()) / f"arenagym-host-{uuid.uuid4().hex}"
    host_marker.write_text("host")
    try:
        targets = ["/usr/evil", "/usr/bin/evil", "/etc/evil", "/evil", "/opt/evil", "/var/evil"]
        script = "; ".join(f"(echo x > {t}) 2>/dev/null && echo WROTE {t}" for t in targets)
        result = sandbox.run(script + f"; cat {host_marker} 2>/dev/null && echo SAW_HOST_TMP; "
                             f"echo sandbox > {host_marker} 2>/dev/null; true")
        assert "WROTE" not in result.output and "SAW_HOST_TMP" not in result.output
        assert host_marker.read_text() == "host"  # the sandbox's /tmp is not the host's
        for target in targets:
            assert not Path(target).exists()
        with pytest.raises(PermissionError):
            sandbox.write_file("/usr/evil", b"x")
    finally:
        host_marker.unlink()


def test_host_home_and_project_checkout_are_not_readable(sandbox: Runtime) -> None:
    home_file = next((p for p in Path.home().iterdir() if p.is_file()), Path.home() / ".bashrc")
    secrets = [str(home_file), str(PROJECT_ROOT / "setup.cfg"), "/work/main/setup.cfg",
               str(PROJECT_ROOT / ".venv" / "bin" / "python"), "/etc/shadow"]
    result = sandbox.run("; ".join(f"cat {p} >/dev/null 2>&1 && echo READ {p}" for p in secrets)
                         + f"; ls {Path.home()} 2>/dev/null | head -n 3; true")
    assert "READ" not in result.output
    assert result.output.strip() == ""
    for secret in secrets[:2]:
        with pytest.raises((FileNotFoundError, PermissionError)):
            sandbox.read_file(secret)


def test_host_environment_is_not_visible_inside(
    sandbox: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    # bwrap's own process is the sandbox's pid 1: --clearenv alone left the host's variables
    # readable in /proc/1/environ.
    secret = f"hf_{uuid.uuid4().hex}"
    monkeypatch.setenv("HF_TOKEN", secret)
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    result = sandbox.run(
        "env; for f in /proc/[0-9]*/environ; do cat $f 2>/dev/null; echo; done | tr '\\0' '\\n'"
    )
    assert result.exit_code == 0, result.output
    assert secret not in result.output
    assert "DOCKER_HOST" not in result.output and str(PROJECT_ROOT) not in result.output


def test_background_processes_do_not_outlive_their_command(sandbox: Runtime) -> None:
    started = sandbox.run(
        "nohup sleep 1000 >/dev/null 2>&1 & (setsid sleep 999 </dev/null >/dev/null 2>&1 &); "
        "(trap '' TERM HUP; exec -a stubborn sleep 998) >/dev/null 2>&1 & disown; echo started"
    )
    assert started.output == "started\n" and started.duration_s < 10
    after = sandbox.run("ps -eo user=,args= | grep -v -e 'ps -eo' -e grep")
    assert "sleep 99" not in after.output and "stubborn" not in after.output, after.output


def test_callers_directory_is_never_written(sandbox: Runtime, small_repo: Path) -> None:
    before = {p: p.read_bytes() for p in small_repo.rglob("*") if p.is_file()}
    result = sandbox.run("echo changed > README.md && rm calc/__init__.py && touch new.txt "
                         "&& git add -A && git -c user.name=a -c user.email=a@b commit -qm x")
    assert result.exit_code == 0, result.output
    after = {p: p.read_bytes() for p in small_repo.rglob("*") if p.is_file()}
    assert after == before


# -- limits ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", SANDBOXES)
def test_fork_bomb_is_contained(name: str, small_repo: Path) -> None:
    limits = Limits(timeout_s=3, memory_mb=256, max_processes=32, max_output_bytes=10_000)
    with make_runtime(name, limits=limits) as runtime:
        runtime.start(small_repo)
        tag = getattr(runtime, "sandbox_tag", None)
        started = time.monotonic()
        result = runtime.run("bomb() { bomb | bomb & }; bomb; sleep 60", timeout_s=2)
        assert time.monotonic() - started < 15
        assert result.exit_code is None and result.killed_reason == "timeout"
        after = runtime.run("ps -e --no-headers 2>/dev/null | wc -l; echo alive")
        assert after.exit_code == 0 and after.output.split()[-1] == "alive"
        if name == "bubblewrap":
            assert int(after.output.split()[0]) <= 5  # a fresh sandbox: init, bash, ps, wc
    assert subprocess.run(["true"]).returncode == 0  # the host can still fork
    _assert_no_leftovers(name, runtime, tag)


@pytest.mark.parametrize("name", SANDBOXES)
def test_memory_hog_is_killed_and_the_next_command_works(name: str, small_repo: Path) -> None:
    limits = Limits(timeout_s=20, memory_mb=128, max_processes=64, max_output_bytes=10_000)
    with make_runtime(name, limits=limits) as runtime:
        runtime.start(small_repo)
        hog = runtime.run("python -c \"x = b'a' * (600 << 20); print('ALLOCATED', len(x))\"")
        assert "ALLOCATED" not in hog.output
        assert hog.exit_code != 0
        if name == "docker" or cgroup_hierarchies():
            assert hog.killed_reason == "memory", hog
        next_command = runtime.run("echo still here")
        assert (next_command.exit_code, next_command.output) == (0, "still here\n")


@pytest.mark.filterwarnings("ignore:the local runtime runs commands")
@pytest.mark.parametrize(
    ("name", "mode"), [("bubblewrap", "overlay"), ("bubblewrap", "copy"), ("local", None)]
)
def test_filling_the_disk_with_many_files_is_stopped_and_cleanup_works(
    name: str, mode: str | None, small_repo: Path
) -> None:
    limits = Limits(timeout_s=20, max_output_bytes=10_000, max_workspace_mb=16)
    options = {"workspace_mode": mode} if mode else {"allow_local": True}
    with make_runtime(name, limits=limits, **options) as runtime:
        runtime.start(small_repo)
        if mode:
            assert runtime.mode_used == mode
        # 1 MB files, each far below the per-file limit: only the workspace budget stops this
        filler = runtime.run(
            "for i in $(seq 1 400); do head -c 1000000 /dev/zero > f$i; done; echo FINISHED"
        )
        assert filler.killed_reason == "disk" and filler.exit_code is None, filler
        assert "FINISHED" not in filler.output and "disk budget of 16 MB" in filler.output
        after = runtime.run("ls f* | wc -l")
        assert "still over its disk budget of 16 MB" in after.output  # a reminder, no kill
        left = int(after.output.split()[0])
        assert 16 <= left < 400  # stopped soon after the budget, long before the end
        cleanup = runtime.run("rm -f f* && echo CLEAN")  # shrinking is never stopped
        assert (cleanup.killed_reason, cleanup.output) == (None, "CLEAN\n")
        small = runtime.run("head -c 2000000 /dev/zero > g && echo OK")
        assert (small.killed_reason, small.output) == (None, "OK\n")


def test_rlimit_fallback_limits_memory_and_processes(small_repo: Path) -> None:
    limits = Limits(timeout_s=10, memory_mb=200, max_processes=16, max_output_bytes=10_000)
    with BubblewrapRuntime(limits, use_cgroups=False) as runtime:
        runtime.start(small_repo)
        hog = runtime.run("python -c \"x = b'a' * (600 << 20)\"")
        assert hog.exit_code == 1 and "MemoryError" in hog.output
        forker = (
            "import os, time\n"
            "count = 0\n"
            "try:\n"
            "    while count < 100:\n"
            "        if os.fork() == 0:\n"
            "            time.sleep(3)\n"
            "            os._exit(0)\n"
            "        count += 1\n"
            "except OSError as error:\n"
            "    print('refused after', count, error.errno)\n"
        )
        forks = runtime.run(f"python -c {_quote(forker)}")
        if os.geteuid() == 0:
            return  # the kernel exempts processes of host root from RLIMIT_NPROC
        words = forks.output.split()
        assert words[:2] == ["refused", "after"] and int(words[2]) < 16, forks.output


@pytest.mark.parametrize("name", SANDBOXES)
def test_endless_loop_is_killed_at_the_timeout(name: str, small_repo: Path) -> None:
    with make_runtime(name, limits=SMALL_LIMITS) as runtime:
        runtime.start(small_repo)
        started = time.monotonic()
        result = runtime.run("(while :; do :; done) & setsid sleep 1000 & while :; do :; done",
                             timeout_s=1.5)
        elapsed = time.monotonic() - started
        assert result.timed_out and result.exit_code is None
        assert result.killed_reason == "timeout"
        assert 1.4 <= elapsed < 6, elapsed
        assert runtime.run("echo ok").output == "ok\n"
        if name == "bubblewrap":
            assert not list(leftover_sandboxes(runtime.sandbox_tag))


def test_one_gigabyte_of_output_is_capped(sandbox: Runtime) -> None:
    started = time.monotonic()
    result = sandbox.run("head -c 1000000000 /dev/zero; echo; echo END", timeout_s=60)
    assert time.monotonic() - started < 30
    assert result.exit_code == 0 and result.truncated
    assert len(result.output.encode()) <= 64_000 + 100
    assert result.output.endswith("END\n") and "bytes of output dropped" in result.output
    endless = sandbox.run("yes", timeout_s=1.5)
    assert endless.timed_out and endless.truncated
    assert len(endless.output.encode()) <= 64_000 + 200


# -- files -----------------------------------------------------------------------------------


def test_read_write_round_trip(sandbox: Runtime) -> None:
    binary = bytes(range(256)) * 16 + b"\x00\xff"
    sandbox.write_file("new/deep/dir/blob.bin", binary)
    sandbox.write_file("/workspace/text.txt", "héllo\n".encode())
    assert sandbox.read_file("/workspace/new/deep/dir/blob.bin") == binary
    assert sandbox.read_file("text.txt") == "héllo\n".encode()
    assert sandbox.read_file("data/blob.bin") == bytes(range(256)) * 4
    listing = sandbox.run("cat text.txt; wc -c < new/deep/dir/blob.bin")
    assert listing.output == "héllo\n4098\n"
    with pytest.raises(FileNotFoundError):
        sandbox.read_file("missing.txt")
    with pytest.raises(IsADirectoryError):
        sandbox.read_file("calc")
    with pytest.raises(IsADirectoryError):
        sandbox.write_file("calc", b"x")


def test_commands_get_cwd_env_and_interleaved_output(sandbox: Runtime) -> None:
    result = sandbox.run("pwd; echo $GREETING; echo err >&2; printf '\\xff\\n'; exit 7",
                         cwd="calc", env={"GREETING": "hi there"})
    assert result.exit_code == 7 and not result.timed_out
    assert result.output == "/workspace/calc\nhi there\nerr\n\ufffd\n"


# -- lifecycle -------------------------------------------------------------------------------


def _assert_no_leftovers(name: str, runtime: Runtime, tag: str | None = None) -> None:
    if name == "docker":
        listed = subprocess.run(
            ["docker", "ps", "-aq", "--filter", f"label={CONTAINER_LABEL}.pid={os.getpid()}"],
            capture_output=True, text=True, check=True,
        )
        assert listed.stdout.strip() == ""
        return
    if tag is not None:
        assert not list(leftover_sandboxes(tag))
        assert not (Path(tempfile.gettempdir()) / tag).exists()
    assert TEMP_PREFIX not in Path("/proc/self/mountinfo").read_text()
    assert getattr(runtime, "private_dir", None) is None
    for hierarchy in cgroup_hierarchies() or ():
        children = [p.name for p in hierarchy.parent.iterdir()
                    if p.name.startswith(f"{CGROUP_PREFIX}{os.getpid()}-")]
        assert children == []


@pytest.mark.parametrize("name", SANDBOXES)
def test_stop_is_idempotent_and_leaves_nothing_behind(name: str, small_repo: Path) -> None:
    runtime = _start(name, small_repo)
    private = getattr(runtime, "private_dir", None)
    tag = getattr(runtime, "sandbox_tag", None)
    assert runtime.run("sleep 1000 & sleep 1000 & echo started").output == "started\n"
    runtime.stop()
    runtime.stop()
    if private is not None:
        assert not private.exists()
    _assert_no_leftovers(name, runtime, tag)
    with pytest.raises(SandboxError):
        runtime.run("true")


@pytest.mark.parametrize("name", SANDBOXES)
def test_stop_while_a_command_runs_in_another_thread_kills_it(name: str, small_repo: Path) -> None:
    runtime = _start(name, small_repo, Limits(timeout_s=60))
    tag = getattr(runtime, "sandbox_tag", None)
    outcome: dict[str, object] = {}

    def run() -> None:
        try:
            outcome["result"] = runtime.run("sleep 30; echo finished")
        except SandboxError as error:
            outcome["error"] = error

    thread = threading.Thread(target=run)
    thread.start()
    time.sleep(1.5)
    started = time.monotonic()
    runtime.stop()
    thread.join(timeout=15)
    assert not thread.is_alive() and time.monotonic() - started < 15
    assert "stopped" in str(outcome.get("error")) or "not started" in str(outcome.get("error"))
    _assert_no_leftovers(name, runtime, tag)


@pytest.mark.filterwarnings("ignore:the local runtime runs commands")
@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("bubblewrap", {"workspace_mode": "overlay"}),
        ("bubblewrap", {"workspace_mode": "copy"}),
        ("local", {"allow_local": True}),
    ],
)
def test_stop_removes_a_tree_deeper_than_python_can_recurse(
    name: str, options: dict[str, object], small_repo: Path
) -> None:
    # shutil.rmtree recurses once per level: 3,000 nested directories, made in a moment, used
    # to make stop() raise RecursionError and leave the runtime's directory behind
    nest = (
        "import os\n"
        "fd = os.open('.', os.O_RDONLY)\n"
        "for _ in range(3000):\n"
        "    os.mkdir('a', dir_fd=fd)\n"
        "    child = os.open('a', os.O_RDONLY, dir_fd=fd)\n"
        "    os.close(fd)\n"
        "    fd = child\n"
        "os.mkdir('locked', dir_fd=fd)\n"
        "os.chmod('locked', 0, dir_fd=fd)\n"
        "print('nested')\n"
    )
    runtime = _start(name, small_repo, **options)
    private = getattr(runtime, "private_dir", None)
    if private is None:  # the local runtime: the folder around its copy
        private = runtime.workspace_dir.parent  # type: ignore[attr-defined]
    assert runtime.run(f"python -c {_quote(nest)}").output == "nested\n"
    runtime.stop()
    assert private is not None and not private.exists()


@pytest.mark.parametrize(
    ("name", "options"),
    [
        ("bubblewrap", {"workspace_mode": "copy"}),
        ("bubblewrap", {}),
        pytest.param(
            "docker", {},
            marks=pytest.mark.skipif(_DOCKER_REASON is not None, reason=str(_DOCKER_REASON)),
        ),
    ],
)
def test_fifos_devices_and_huge_files_are_refused_not_read(
    name: str, options: dict[str, str], small_repo: Path
) -> None:
    with _start(name, small_repo, **options) as runtime:
        made = runtime.run(
            "mkfifo fifo && ln -s /dev/zero zero && truncate -s 40M big && echo ok"
        )
        assert made.output == "ok\n", made.output
        started = time.monotonic()
        for path in ("fifo", "/workspace/zero", "/dev/zero", "big"):
            with pytest.raises(UnreadableFileError):
                runtime.read_file(path)
        with pytest.raises(UnreadableFileError):
            runtime.write_file("fifo", b"blocked?")
        assert time.monotonic() - started < 20
        assert runtime.run("echo alive").output == "alive\n"


def test_start_errors_are_runtime_errors(small_repo: Path, tmp_path: Path) -> None:
    with BubblewrapRuntime() as runtime:
        with pytest.raises(SandboxError, match="not a directory"):
            runtime.start(tmp_path / "missing")
        runtime.start(small_repo)
        with pytest.raises(SandboxError, match="already started"):
            runtime.start(small_repo)
    with pytest.raises(ValueError, match="workspace_mode"):
        BubblewrapRuntime(workspace_mode="hardlink")


@pytest.mark.parametrize("mode", ["overlay", "copy"])
def test_both_workspace_modes_behave_alike(mode: str, small_repo: Path, tmp_path: Path) -> None:
    scratch = tmp_path / "scratch"
    with BubblewrapRuntime(SMALL_LIMITS, workspace_mode=mode) as runtime:
        runtime.start(small_repo)
        assert runtime.mode_used == mode
        runtime.write_file("calc/__init__.py", b"def add(a, b):\n    return a - b\n")
        runtime.run("rm tests/test_calc.py")
        assert runtime.read_file("calc/__init__.py").endswith(b"a - b\n")
        patch = ChangeTracker(_base_of(small_repo), scratch).diff(runtime)
        assert b"-    return a + b\n+    return a - b" in patch
        assert b"deleted file mode 100644" in patch


# -- the local runtime -----------------------------------------------------------------------


def test_local_runtime_needs_an_explicit_opt_in(small_repo: Path) -> None:
    with pytest.raises(ValueError, match="no isolation"):
        make_runtime("local")
    with pytest.raises(ValueError, match="unknown runtime"):
        make_runtime("chroot")
    with pytest.warns(UserWarning, match="without any isolation"):
        runtime = make_runtime("local", allow_local=True, limits=SMALL_LIMITS)
    with runtime:
        runtime.start(small_repo)
        result = runtime.run("echo hi > new.txt; cat README.md; pwd")
        assert result.output.splitlines()[:1] == ["# calc"]
        assert not (small_repo / "new.txt").exists()
        assert runtime.read_file("/workspace/new.txt") == b"hi\n"
        loop = runtime.run("setsid sleep 1000 & while :; do :; done", timeout_s=1)
        assert loop.killed_reason == "timeout"
        private = runtime.workspace_dir.parent
    assert not private.exists()


# -- Docker images -----------------------------------------------------------------------------


@pytest.mark.skipif(_DOCKER_REASON is not None, reason=str(_DOCKER_REASON))
def test_task_image_layers_set_up_commands_once(small_repo: Path) -> None:
    from arenagym.envs.swe.runtime.images import ensure_task_image

    commands = [f"echo {uuid.uuid4().hex} > /opt/task-marker && chmod 644 /opt/task-marker"]
    started = time.monotonic()
    tag = ensure_task_image(commands, workspace=small_repo)
    assert tag.startswith("arenagym/swe-task:")
    first = time.monotonic() - started
    started = time.monotonic()
    assert ensure_task_image(commands, workspace=small_repo) == tag
    assert time.monotonic() - started < max(first, 0.5)  # cached: no second build
    with make_runtime("docker", limits=SMALL_LIMITS) as runtime:
        runtime.start(small_repo, image=tag)
        result = runtime.run("cat /opt/task-marker; ls")
        assert result.output.split()[0] == commands[0].split()[1]
        assert "README.md" in result.output.split()
    subprocess.run(["docker", "rmi", "-f", tag], capture_output=True, check=False)


class _LateOutputApi:
    """A Docker API whose execs are reported done at once while their output arrives only
    later, past the orphan grace (a daemon busy copying output, as under CI's load)."""

    def __init__(self, payload: bytes) -> None:
        self.payload = payload

    def exec_create(self, container: str, argv: list[str], **_: object) -> dict[str, str]:
        return {"Id": "exec"}

    def exec_start(self, exec_id: str, socket: bool = True) -> object:
        import socket as sockets

        ours, theirs = sockets.socketpair()

        def deliver() -> None:
            time.sleep(ORPHAN_GRACE_S + 1.0)
            header = b"\x01\x00\x00\x00" + len(self.payload).to_bytes(4, "big")
            theirs.sendall(header + self.payload)
            theirs.close()

        threading.Thread(target=deliver, daemon=True).start()
        return ours

    def exec_inspect(self, exec_id: str) -> dict[str, object]:
        return {"Running": False, "ExitCode": 0}


def test_docker_file_reads_wait_for_output_a_busy_daemon_delivers_late() -> None:
    """The runtime's own reads (the workspace's changes come back through them) cannot leave
    a background process, so late output is never mistaken for an orphan holding the stream:
    the file comes back whole (it came back cut, and the diff 'incomplete', on a busy CI)."""
    payload = os.urandom(3000)
    runtime = DockerRuntime(SMALL_LIMITS)
    runtime._client = SimpleNamespace(api=_LateOutputApi(payload))
    runtime._container = SimpleNamespace(id="container")
    assert runtime.read_file("/workspace/part-0") == payload
