"""Real repositories from the registry: a library's sdist imported into a one-commit git
repository with its provenance, its environment built and cached, its tests run and graded in
the bubblewrap sandbox with that environment, and clear per-package errors for the rest.

These tests download from the package registry (a few hundred kB, once per module)."""

from __future__ import annotations

import difflib
import hashlib
import io
import json
import shutil
import subprocess
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import gymnasium as gym
import pytest

import arenagym.envs  # noqa: F401  (registers SWE-v0)
from arenagym.cli import main
from arenagym.envs.swe.cli import UsageError, synthesis_environment
from arenagym.envs.swe.grading import run_tests
from arenagym.envs.swe.pins import parse_pin
from arenagym.envs.swe.runtime import make_runtime
from arenagym.envs.swe.runtime.pyenv import (
    CACHE_VARIABLE,
    SANDBOX_ENV,
    build_env,
    load_env_spec,
)
from arenagym.envs.swe.sdist import (
    SdistImportError,
    commit_tree,
    import_sdist,
    import_sdists,
    unpack_sdist,
)
from arenagym.envs.swe.tasks import SWETask, dump_tasks

PIN = parse_pin("more-itertools==10.5.0")
GOOD_LOCAL = "arenagym-test-good-pkg"
BROKEN_LOCAL = "arenagym-test-broken-pkg"


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleNamespace]:
    """more-itertools 10.5.0 imported once for the module, its sdist kept for comparison; the
    module's environment cache is its own (the grader and the env find it by the variable)."""
    root = tmp_path_factory.mktemp("import")
    cache = root / "env-cache"
    patcher = pytest.MonkeyPatch()
    patcher.setenv(CACHE_VARIABLE, str(cache))
    started = time.monotonic()
    result = import_sdist(PIN, root / "repos", cache_dir=cache, download_dir=root / "download")
    [archive] = (root / "download").iterdir()
    yield SimpleNamespace(
        result=result,
        cache=cache,
        archive=archive,
        seconds=time.monotonic() - started,
        provenance=json.loads((root / "repos" / f"{PIN.key}.json").read_text()),
    )
    patcher.undo()


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, check=True
    ).stdout


def test_the_sdist_becomes_a_one_commit_repository_with_its_provenance(
    imported: SimpleNamespace,
) -> None:
    result, row = imported.result, imported.provenance
    assert result.ok and result.repo.name == PIN.key and result.provenance.is_file()
    assert _git(result.repo, "rev-list", "--count", "HEAD").strip() == "1"
    assert _git(result.repo, "status", "--porcelain", "--ignored") == ""
    assert _git(result.repo, "rev-parse", "HEAD").strip() == result.base_commit
    data = imported.archive.read_bytes()
    assert row["pin"] == str(PIN) and (row["name"], row["version"]) == ("more-itertools", "10.5.0")
    assert row["source"]["filename"] == imported.archive.name
    assert row["source"]["sha256"] == hashlib.sha256(data).hexdigest()
    assert row["source"]["size"] == len(data)
    assert row["source"]["url"].endswith("/" + imported.archive.name)
    assert row["base_commit"] == result.base_commit and row["repo"] == PIN.key
    message = _git(result.repo, "log", "-1", "--format=%B")
    assert str(PIN) in message and row["source"]["sha256"] in message
    # every file of the archive is in the commit, byte for byte
    with tarfile.open(fileobj=io.BytesIO(data)) as bundle:
        members = {
            m.name.split("/", 1)[1]: bundle.extractfile(m).read()  # type: ignore[union-attr]
            for m in bundle.getmembers()
            if m.isfile() and "/" in m.name
        }
    tracked = set(_git(result.repo, "ls-files").split("\n")) - {""}
    assert tracked == set(members)
    for name in ("more_itertools/more.py", "tests/test_more.py", "PKG-INFO"):
        assert (result.repo / name).read_bytes() == members[name]
    assert row["test_files"] == sorted(n for n in members if n.startswith("tests/test_"))
    assert row["environment"] == load_env_spec(result.provenance).to_json()


def test_the_same_release_gives_the_same_commit(imported: SimpleNamespace, tmp_path: Path) -> None:
    tree = unpack_sdist(imported.archive, tmp_path / "again")
    message = _git(imported.result.repo, "log", "-1", "--format=%B").strip()
    assert commit_tree(tree, message) == imported.result.base_commit


def test_importing_again_keeps_the_repository_and_the_cached_environment(
    imported: SimpleNamespace,
) -> None:
    first = imported.result
    started = time.monotonic()
    again = import_sdist(PIN, first.repo.parent, cache_dir=imported.cache)
    assert again.reused and again.base_commit == first.base_commit
    assert again.env is not None and again.env.reused and again.env.path == first.env.path
    assert time.monotonic() - started < 2.0  # no download, no build


def test_the_environment_is_locked_built_and_cached_by_content(imported: SimpleNamespace) -> None:
    spec = load_env_spec(imported.result.provenance)
    assert all("==" in requirement for requirement in spec.requirements)
    names = {r.split("==")[0].lower() for r in spec.requirements}
    assert "pytest" in names and "more-itertools" not in names  # the workspace's code is tested
    assert (spec.distribution, spec.version) == ("more-itertools", "10.5.0")
    first = imported.result.env
    assert first is not None and not first.reused and first.path.parent == imported.cache
    second = build_env(spec, imported.cache)
    assert second.reused and second.path == first.path and second.seconds < 0.05


def test_its_tests_pass_in_the_sandbox_with_the_environment_and_no_network(
    imported: SimpleNamespace,
) -> None:
    spec = load_env_spec(imported.result.provenance)
    pytest_pin = next(r for r in spec.requirements if r.lower().startswith("pytest=="))
    probe = (
        "import importlib.metadata as m, pytest, more_itertools, sys;"
        "print(sys.prefix, pytest.__version__, m.version('more-itertools'), "
        "more_itertools.__file__)"
    )
    network = (
        "import socket\n"
        "for target in [('1.1.1.1', 53), ('pypi.org', 443)]:\n"
        "    try:\n"
        "        socket.create_connection(target, timeout=3)\n"
        "        print('reached', target)\n"
        "    except OSError as error:\n"
        "        print('no network:', type(error).__name__)\n"
    )
    with make_runtime("bubblewrap") as runtime:
        runtime.start(imported.result.repo, python_env=imported.result.env.path)
        facts = runtime.run(f'python -c "{probe}"')
        suite = runtime.run("python -m pytest -q -p no:cacheprovider tests/test_recipes.py")
        offline = runtime.run(f'python -c "{network}"')
        site = runtime.run("python -c 'import site; print(site.getsitepackages()[0])'")
        write = runtime.run(f"touch {site.output.strip()}/x.py && echo written")
        pip = runtime.run("python -m pip --version")
    assert facts.exit_code == 0, facts.output
    assert facts.output.split() == [
        SANDBOX_ENV,
        pytest_pin.split("==")[1],
        "10.5.0",
        "/workspace/more_itertools/__init__.py",
    ]
    assert suite.exit_code == 0 and " passed" in suite.output, suite.output[-2000:]
    assert offline.output.count("no network:") == 2 and "reached" not in offline.output
    assert write.exit_code != 0 and "Read-only file system" in write.output
    assert "written" not in write.output
    assert pip.exit_code != 0  # nothing in the sandbox can install


def test_the_grader_runs_a_task_with_its_environment(imported: SimpleNamespace) -> None:
    repo = imported.result.repo
    with make_runtime("bubblewrap") as runtime:
        runtime.start(repo, python_env=imported.result.env.path)
        listing = runtime.run("python -m pytest -q --collect-only -p no:cacheprovider tests")
    take = [line for line in listing.output.splitlines() if "::TakeTests::" in line]
    others = [line for line in listing.output.splitlines() if "::ConsumerTests::" in line]
    assert take and others, listing.output[-2000:]
    task = SWETask(
        instance_id="more-itertools-take",
        repo="more-itertools/more-itertools",
        base_commit=imported.result.base_commit,
        patch="",
        test_patch="",
        problem_statement="take() must return the first n items.",
        FAIL_TO_PASS=tuple(take),
        PASS_TO_PASS=tuple(others),
        repo_path=str(repo),
        environment=str(imported.result.provenance),
    )
    source = (repo / "more_itertools" / "recipes.py").read_text()
    broken = source.replace(
        "return list(islice(iterable, n))", "return list(islice(iterable, n))[1:]"
    )
    assert broken != source
    patch_text = _diff(source, broken, "more_itertools/recipes.py")
    clean = run_tests(task, "", task.selected_tests, timeout_s=120)
    assert clean.error is None and set(clean.statuses.values()) == {"passed"}, clean.output[-2000:]
    bad = run_tests(task, patch_text, task.selected_tests, timeout_s=120)
    assert bad.error is None and "failed" in {bad.statuses[t] for t in take}


def _diff(old: str, new: str, path: str) -> str:
    return "".join(
        difflib.unified_diff(
            old.splitlines(keepends=True), new.splitlines(keepends=True), f"a/{path}", f"b/{path}"
        )
    )


# -- bad and unbuildable packages ---------------------------------------------------------------

_BACKEND = """\
def get_requires_for_build_wheel(config_settings=None):
    return []


def prepare_metadata_for_build_wheel(metadata_directory, config_settings=None):
    import os
    {body}


def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    raise RuntimeError("not needed to download")
"""
_GOOD_BODY = '''folder = os.path.join(metadata_directory, "{dist}-1.0.dist-info")
    os.makedirs(folder)
    with open(os.path.join(folder, "METADATA"), "w") as handle:
        handle.write("Metadata-Version: 2.1\\nName: {name}\\nVersion: 1.0\\n")
    return "{dist}-1.0.dist-info"'''
_BROKEN_BODY = 'raise RuntimeError("this package cannot be built on purpose")'


def _local_sdist(folder: Path, name: str, *, broken: bool) -> None:
    """An sdist with an in-tree build backend (nothing to fetch to read its metadata)."""
    dist = name.replace("-", "_")
    body = _BROKEN_BODY if broken else _GOOD_BODY.format(dist=dist, name=name)
    files = {
        "PKG-INFO": f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.0\n",
        "pyproject.toml": (
            '[build-system]\nrequires = []\nbuild-backend = "backend"\nbackend-path = ["."]\n'
        ),
        "backend.py": _BACKEND.format(body=body),
        f"{dist}/__init__.py": "VALUE = 1\n",
        "tests/test_value.py": f"from {dist} import VALUE\n\ndef test_value():\n    assert VALUE == 1\n",
    }
    with tarfile.open(folder / f"{dist}-1.0.tar.gz", "w:gz") as bundle:
        for relative, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(f"{dist}-1.0/{relative}")
            info.size = len(data)
            bundle.addfile(info, io.BytesIO(data))


def test_each_bad_package_gets_its_own_error_and_the_others_go_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    links = tmp_path / "links"
    links.mkdir()
    _local_sdist(links, GOOD_LOCAL, broken=False)
    _local_sdist(links, BROKEN_LOCAL, broken=True)
    monkeypatch.setenv("PIP_FIND_LINKS", str(links))
    pins = [
        parse_pin(f"{BROKEN_LOCAL}==1.0"),
        parse_pin("arenagym-no-such-distribution-zz==1.0"),
        parse_pin(f"{GOOD_LOCAL}==1.0"),
    ]
    seen: list[str] = []
    results = import_sdists(
        pins,
        tmp_path / "repos",
        build=False,
        cache_dir=tmp_path / "cache",
        on_result=lambda r: seen.append(str(r.pin)),
    )
    assert seen == [str(pin) for pin in pins]
    broken, missing, good = results
    assert broken.error is not None and "cannot be built (its metadata step failed)" in broken.error
    assert broken.error.endswith("RuntimeError: this package cannot be built on purpose")
    assert str(pins[0]) in broken.error
    assert (
        missing.error is not None and "registry has no sdist of arenagym-no-such" in missing.error
    )
    assert "No matching distribution" in missing.error
    assert good.ok and good.env is None and (good.repo / "tests" / "test_value.py").is_file()
    assert not (tmp_path / "repos" / f"{pins[0].key}.json").exists()
    # an environment that cannot be resolved fails that package only
    with pytest.raises(SdistImportError, match="test requirements cannot be resolved"):
        import_sdist(
            parse_pin(f"{GOOD_LOCAL}==1.0"),
            tmp_path / "other",
            cache_dir=tmp_path / "cache",
            extra=["arenagym-no-such-distribution-zz==1.0"],
        )


def test_an_interrupted_import_is_redone_and_a_touched_repository_is_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A kill between the repository's rename and its provenance file (or a provenance file
    left without its repository) is cleaned up and imported again; anything that may be the
    user's own work is refused with its reason, and nothing of it is deleted."""
    links = tmp_path / "links"
    links.mkdir()
    _local_sdist(links, GOOD_LOCAL, broken=False)
    monkeypatch.setenv("PIP_FIND_LINKS", str(links))
    pin = parse_pin(f"{GOOD_LOCAL}==1.0")
    out = tmp_path / "repos"
    first = import_sdist(pin, out, build=False)
    provenance = first.provenance.read_text()

    first.provenance.unlink()  # killed before the provenance file was in place
    again = import_sdist(pin, out, build=False)
    assert not again.reused and again.base_commit == first.base_commit
    assert again.provenance.read_text() == provenance

    shutil.rmtree(again.repo)  # the provenance file without its repository
    again = import_sdist(pin, out, build=False)
    assert not again.reused and (again.repo / "tests" / "test_value.py").is_file()

    again.provenance.unlink()
    (again.repo / "notes.txt").write_text("mine\n")  # an untracked file of the user's
    with pytest.raises(SdistImportError, match=r"is not an untouched import of .*move it away"):
        import_sdist(pin, out, build=False)
    assert (again.repo / "notes.txt").read_text() == "mine\n"

    other = tmp_path / "other"
    other.mkdir()
    (other / f"{pin.key}.json").write_text('{"pin": "someone-else==2.0"}\n')
    with pytest.raises(SdistImportError, match="is not the provenance file of"):
        import_sdist(pin, other, build=False)
    assert (other / f"{pin.key}.json").read_text() == '{"pin": "someone-else==2.0"}\n'
    (other / pin.key).mkdir()  # a plain folder of that name: not an import at all
    (other / f"{pin.key}.json").unlink()
    with pytest.raises(SdistImportError, match="is not an untouched import"):
        import_sdist(pin, other, build=False)
    assert (other / pin.key).is_dir()


@pytest.mark.parametrize(
    "leftover",
    ["a file where the repository goes", "a folder where the provenance goes", "binary provenance"],
)
def test_odd_leftovers_in_place_of_an_import_are_refused_and_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, leftover: str
) -> None:
    links = tmp_path / "links"
    links.mkdir()
    _local_sdist(links, GOOD_LOCAL, broken=False)
    monkeypatch.setenv("PIP_FIND_LINKS", str(links))
    pin = parse_pin(f"{GOOD_LOCAL}==1.0")
    out = tmp_path / "repos"
    out.mkdir()
    repo, provenance = out / pin.key, out / f"{pin.key}.json"
    if leftover == "a file where the repository goes":
        repo.write_bytes(b"\x00\xff not a repository")
        kept = repo
    elif leftover == "a folder where the provenance goes":
        provenance.mkdir()
        kept = provenance
    else:
        provenance.write_bytes(b"\xff\xfe\x00" * 1000)
        kept = provenance
    with pytest.raises(SdistImportError, match="move it away to import it again"):
        import_sdist(pin, out, build=False)
    assert kept.exists() and not (out / pin.key / ".git").exists()


def test_the_command_reports_every_package_and_exits_by_the_worst(
    imported: SimpleNamespace, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = imported.result.repo.parent
    argv = [
        "swe",
        "import-sdist",
        "more-itertools>=10",
        "arenagym-no-such-distribution-zz==1.0",
        str(PIN),
        "-o",
        str(out),
        "--env-cache",
        str(imported.cache),
    ]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "error: 'more-itertools>=10' is not NAME==VERSION" in err
    assert "error: arenagym-no-such-distribution-zz==1.0: the registry has no sdist" in err
    assert f"kept {PIN} -> {imported.result.repo}" in err
    assert err.rstrip().splitlines()[-1].startswith("arenagym swe import-sdist: error: 1 malformed")
    assert main(argv[:2] + argv[3:]) == 1
    assert capsys.readouterr().err.rstrip().splitlines()[-1] == (
        "arenagym swe import-sdist: error: 1 package(s) failed: "
        "arenagym-no-such-distribution-zz==1.0"
    )
    assert (
        main(
            [
                "swe",
                "import-sdist",
                str(PIN),
                "-o",
                str(out),
                "--env-cache",
                str(imported.cache),
                "--check",
            ]
        )
        == 0
    )
    err = capsys.readouterr().err
    assert "sandbox tests:" in err and " passed" in err
    check = json.loads(imported.result.provenance.read_text())["sandbox_check"]
    assert check["exit_code"] == 0 and "passed" in check["summary"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["swe", "import-sdist", "-o", "x"], "no package given"),
        (["swe", "import-sdist", "a==1", "-o", "x", "--check", "--no-env"], "drop --no-env"),
        (["swe", "import-sdist", "a==1", "-o", "x", "--timeout", "0"], "--timeout must be"),
        (["swe", "import-sdist", "-r", "missing-pins.txt", "-o", "x"], "does not exist"),
    ],
)
def test_bad_command_lines_exit_2_with_one_line(
    argv: list[str],
    message: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 2
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("arenagym swe import-sdist: error: ") and message in line


def test_validate_builds_a_missing_environment_then_reuses_it(
    imported: SimpleNamespace,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    repo = imported.result.repo
    source = (repo / "more_itertools" / "recipes.py").read_text()
    broken = source.replace(
        "return list(islice(iterable, n))", "return list(islice(iterable, n))[1:]"
    )
    row = {
        "instance_id": "more-itertools-take-1",
        "repo": "more-itertools/more-itertools",
        "base_commit": imported.result.base_commit,
        "base_patch": _diff(source, broken, "more_itertools/recipes.py"),
        "patch": _diff(broken, source, "more_itertools/recipes.py"),
        "problem_statement": "take() drops the first item.",
        "repo_path": str(repo),
        "environment": str(imported.result.provenance),
    }
    candidates = tmp_path / "candidates.jsonl"
    candidates.write_text(json.dumps(row) + "\n")
    cache = tmp_path / "fresh-env-cache"
    monkeypatch.setenv("ARENAGYM_SWE_ENV_CACHE", str(cache))
    argv = [
        "swe",
        "validate",
        str(candidates),
        "-o",
        str(tmp_path / "out.jsonl"),
        "--runs",
        "1",
        "--workers",
        "1",
        "--no-progress",
        "--timeout",
        "120",
        "--cache",
        str(tmp_path / "results"),  # the second run reuses the first one's results
    ]
    assert main(argv) == 0
    err = capsys.readouterr().err
    spec = load_env_spec(imported.result.provenance)
    assert f"environment {imported.result.provenance}: {spec.digest()[:32]} built in" in err
    assert (cache / spec.digest()[:32]).is_dir()
    [task] = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert any("TakeTests" in test_id for test_id in task["FAIL_TO_PASS"])
    assert task["environment"] == str(imported.result.provenance)
    assert main([*argv, "--report", str(tmp_path / "again.json")]) == 0
    assert f"{spec.digest()[:32]} from the cache" in capsys.readouterr().err
    row["environment"] = str(tmp_path / "missing.json")
    candidates.write_text(json.dumps(row) + "\n")
    assert main(argv) == 2
    assert capsys.readouterr().err.strip() == (
        f"arenagym swe validate: error: task more-itertools-take-1: environment spec "
        f"{tmp_path / 'missing.json'} does not exist"
    )


def test_an_episode_on_the_imported_repository_runs_and_is_graded_in_its_environment(
    imported: SimpleNamespace, tmp_path: Path
) -> None:
    repo = imported.result.repo
    source = (repo / "more_itertools" / "recipes.py").read_text()
    broken = source.replace(
        "return list(islice(iterable, n))", "return list(islice(iterable, n))[1:]"
    )
    gold = _diff(broken, source, "more_itertools/recipes.py")
    task = SWETask(
        instance_id="more-itertools-take-episode",
        repo="more-itertools/more-itertools",
        base_commit=imported.result.base_commit,
        patch=gold,
        test_patch="",
        problem_statement="take() drops the first item.",
        FAIL_TO_PASS=("tests/test_recipes.py::TakeTests::test_simple_take",),
        PASS_TO_PASS=("tests/test_recipes.py::ConsumeTests::test_sanity",),
        repo_path=str(repo),
        base_patch=_diff(source, broken, "more_itertools/recipes.py"),
        environment=str(imported.result.provenance),
    )
    tasks = tmp_path / "tasks.jsonl"
    dump_tasks([task], tasks)
    env = gym.make("SWE-v0", tasks=str(tasks))
    try:
        env.reset(seed=0)

        def bash(command: str) -> str:
            action = {"name": "execute_bash", "arguments": {"command": command}}
            return env.step(json.dumps(action))[0]

        assert f"{SANDBOX_ENV}\n" in bash("python -c 'import sys; print(sys.prefix)'")
        failing = bash("python -m pytest -q -p no:cacheprovider tests/test_recipes.py -k Take")
        assert " failed" in failing
        create = {
            "name": "str_replace_editor",
            "arguments": {"command": "create", "path": "/workspace/fix.diff", "file_text": gold},
        }
        env.step(json.dumps(create))
        assert "exit code 0" in bash("git apply fix.diff && rm fix.diff")
        finish = {"name": "finish", "arguments": {"message": "take() fixed"}}
        *_, reward, terminated, _, info = env.step(json.dumps(finish))
    finally:
        env.close()
    assert (reward, terminated, info["stop_reason"]) == (1.0, True, "solved")
    assert set(info["grading"]["fail_to_pass"]) == set(task.FAIL_TO_PASS)


def test_synthesis_over_an_imported_repository_names_its_environment(
    imported: SimpleNamespace, tmp_path: Path
) -> None:
    repo, provenance = imported.result.repo, imported.result.provenance
    assert synthesis_environment(repo, None) == str(provenance)
    assert synthesis_environment(tmp_path, None) is None  # no REPO.json beside it
    given = tmp_path / "env.json"
    given.write_text("{}")
    assert synthesis_environment(repo, given) == str(given)
    with pytest.raises(UsageError, match="does not exist"):
        synthesis_environment(repo, tmp_path / "missing.json")
