"""Per-repository Python environments: spec files, the content-hash cache, and what a sandbox
sees of an environment (read-only, first on PATH, the workspace's src on sys.path)."""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path

import pytest

from arenagym.envs.swe.runtime import SandboxError, make_runtime
from arenagym.envs.swe.runtime.docker import docker_unavailable_reason
from arenagym.envs.swe.runtime.pyenv import (
    MANIFEST,
    SANDBOX_ENV,
    EnvBuildError,
    EnvSpec,
    EnvSpecError,
    build_env,
    interpreter_version,
    is_built,
    load_env_spec,
)
from arenagym.envs.swe.tasks import SWETask, dump_tasks, load_tasks

ENTRY_POINTS = "[demo.plugins]\nshout = demo_pkg:shout\n"


@pytest.fixture(scope="module")
def offline_env(tmp_path_factory: pytest.TempPathFactory) -> tuple[EnvSpec, Path]:
    """An environment with nothing from the registry: the workspace's ``src`` on ``sys.path``
    and the repository's own ``.dist-info`` (entry points included)."""
    cache = tmp_path_factory.mktemp("env-cache")
    spec = EnvSpec(
        paths=("src",), distribution="demo-pkg", version="1.2.3", entry_points=ENTRY_POINTS
    )
    return spec, build_env(spec, cache).path


def _src_workspace(root: Path) -> Path:
    (root / "src" / "demo_pkg").mkdir(parents=True)
    (root / "src" / "demo_pkg" / "__init__.py").write_text("def shout(s):\n    return s.upper()\n")
    return root


@pytest.mark.parametrize(
    ("row", "field", "problem"),
    [
        ({"requirements": "pytest==8.0"}, "requirements", "expected a list of strings"),
        ({"requirements": ["pytest>=8"]}, "requirements", "not an exact pin"),
        ({"requirements": [3]}, "requirements", "is not a string"),
        ({"paths": ["/etc"]}, "paths", "not a folder in the workspace"),
        ({"paths": ["../up"]}, "paths", "not a folder in the workspace"),
        ({"python": "/opt/python"}, "python", "not an interpreter under /usr"),
        ({"distribution": "x"}, "version", "go together"),
        ({"version": 1}, "version", "expected a string"),
    ],
)
def test_a_bad_spec_file_names_the_file_and_field(
    tmp_path: Path, row: dict[str, object], field: str, problem: str
) -> None:
    path = tmp_path / "env.json"
    path.write_text(json.dumps(row))
    with pytest.raises(EnvSpecError, match=problem) as caught:
        load_env_spec(path)
    assert caught.value.field == field and str(path) in str(caught.value)


def test_a_spec_is_read_from_a_provenance_file_too(tmp_path: Path) -> None:
    spec = EnvSpec(requirements=("pytest==8.3.3",), paths=("src",))
    (tmp_path / "repo.json").write_text(json.dumps({"name": "x", "environment": spec.to_json()}))
    assert load_env_spec(tmp_path / "repo.json") == spec
    (tmp_path / "bad.json").write_text(json.dumps({"environment": {"paths": "src"}}))
    with pytest.raises(EnvSpecError, match=r"bad\.json#environment: field 'paths'"):
        load_env_spec(tmp_path / "bad.json")


def test_the_digest_follows_the_content() -> None:
    base = EnvSpec(requirements=("a==1", "B==2"))
    assert base.digest("3.11.2") == EnvSpec(requirements=("B==2", "a==1")).digest("3.11.2")
    others = [
        EnvSpec(requirements=("a==1", "B==3")),
        EnvSpec(requirements=("a==1", "B==2"), paths=("src",)),
        EnvSpec(requirements=("a==1", "B==2"), distribution="d", version="1"),
    ]
    digests = {spec.digest("3.11.2") for spec in [base, *others]}
    assert len(digests) == 4
    assert base.digest("3.11.2") != base.digest("3.12.0")


def test_a_second_build_comes_from_the_cache_in_no_time(tmp_path: Path) -> None:
    spec = EnvSpec(paths=("lib",), distribution="cached", version="0.1")
    assert not is_built(spec, tmp_path)
    first = build_env(spec, tmp_path)
    manifest = json.loads((first.path / MANIFEST).read_text())
    assert not first.reused and is_built(spec, tmp_path)
    assert manifest["digest"] == first.digest == spec.digest()
    assert manifest["python_version"] == interpreter_version()
    stamp = (first.path / MANIFEST).stat()
    second = build_env(spec, tmp_path)
    assert second.reused and second.path == first.path and second.digest == first.digest
    assert second.seconds < 0.05
    again = (second.path / MANIFEST).stat()  # nothing was rebuilt or rewritten
    assert (again.st_ino, again.st_mtime_ns) == (stamp.st_ino, stamp.st_mtime_ns)
    # one folder per spec, no leftovers of the build
    assert [p.name for p in tmp_path.iterdir() if not p.name.startswith(".")] == [first.path.name]
    assert not [p for p in tmp_path.iterdir() if p.is_dir() and p.name.startswith(".")]


def test_an_unbuildable_requirement_fails_with_pips_reason_and_leaves_nothing(
    tmp_path: Path,
) -> None:
    spec = EnvSpec(requirements=("arenagym-no-such-distribution-zz==1.0",))
    with pytest.raises(EnvBuildError, match="arenagym-no-such-distribution-zz"):
        build_env(spec, tmp_path)
    assert not is_built(spec, tmp_path)
    assert not [p for p in tmp_path.iterdir() if p.is_dir()]


@pytest.mark.parametrize("runtime_name", ["bubblewrap", "docker"])
def test_the_sandbox_sees_the_environment_read_only_and_first_on_path(
    offline_env: tuple[EnvSpec, Path], tmp_path: Path, runtime_name: str
) -> None:
    if runtime_name == "docker" and (reason := docker_unavailable_reason()) is not None:
        pytest.skip(reason)
    _spec, env = offline_env
    before = sorted((p.relative_to(env), p.stat().st_mtime_ns) for p in env.rglob("*"))
    workspace = _src_workspace(tmp_path / "ws")
    script = (
        "import sys, importlib.metadata as m, demo_pkg;"
        "print(sys.prefix, demo_pkg.shout('ok'), m.version('demo-pkg'),"
        "[e.value for e in m.entry_points(group='demo.plugins')])"
    )
    with make_runtime(runtime_name) as runtime:
        runtime.start(workspace, python_env=env)
        result = runtime.run(f'command -v python; python -c "{script}"')
        assert result.exit_code == 0, result.output
        assert result.output.splitlines() == [
            f"{SANDBOX_ENV}/bin/python",
            f"{SANDBOX_ENV} OK 1.2.3 ['demo_pkg:shout']",
        ]
        site = runtime.run("python -c 'import site; print(site.getsitepackages()[0])'").output
        assert site.startswith(f"{SANDBOX_ENV}/lib/python3")
        for attempt in (
            f"touch {site.strip()}/injected.py",
            f"rm -f {site.strip()}/arenagym-workspace.pth",
            f"echo x >> {SANDBOX_ENV}/pyvenv.cfg",
            f"mkdir {SANDBOX_ENV}/bin/more",
        ):
            denied = runtime.run(attempt)
            # in Docker the agent (uid 1000) may be refused as a user before the mount says so
            refusals = ("Read-only file system", "Permission denied")
            assert denied.exit_code != 0, attempt
            assert any(r in denied.output for r in refusals[: 1 + (runtime_name == "docker")])
    after = sorted((p.relative_to(env), p.stat().st_mtime_ns) for p in env.rglob("*"))
    assert after == before


def test_without_an_environment_the_system_python_runs(tmp_path: Path) -> None:
    with make_runtime("bubblewrap") as runtime:
        runtime.start(tmp_path)
        result = runtime.run("python -c 'import sys; print(sys.prefix)'; ls /opt/arenagym")
    assert result.output.split() == ["/usr", "bin"]


def test_a_folder_that_is_not_a_built_environment_is_refused(tmp_path: Path) -> None:
    (tmp_path / "fake" / "bin").mkdir(parents=True)
    with make_runtime("bubblewrap") as runtime, pytest.raises(SandboxError, match="not a built"):
        runtime.start(tmp_path, python_env=tmp_path / "fake")


def test_the_local_runtime_uses_the_environment_where_it_lies(
    offline_env: tuple[EnvSpec, Path], tmp_path: Path
) -> None:
    _spec, env = offline_env
    workspace = tmp_path / "ws"
    (workspace / "lib").mkdir(parents=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        runtime = make_runtime("local", allow_local=True)
    with runtime:
        runtime.start(workspace, python_env=env)
        result = runtime.run("python -c 'import sys; print(sys.prefix)'")
    assert result.exit_code == 0 and Path(result.output.strip()) == env


def test_a_task_names_its_environment_relative_to_the_task_file(tmp_path: Path) -> None:
    (tmp_path / "repos").mkdir()
    row = {
        "instance_id": "x-1",
        "repo": "x/x",
        "base_commit": "",
        "patch": "",
        "problem_statement": "p",
        "environment": "repos/x-1.0.json",
    }
    path = tmp_path / "tasks.jsonl"
    path.write_text(json.dumps(row) + "\n")
    [task] = load_tasks(path)
    assert task.environment == os.path.normpath(tmp_path / "repos" / "x-1.0.json")
    copy = tmp_path / "out.jsonl"
    dump_tasks([task], copy)
    assert json.loads(copy.read_text())["environment"] == "repos/x-1.0.json"
    assert load_tasks(copy) == [task]
    assert SWETask("y", "y", "", "", "", "p").environment is None
