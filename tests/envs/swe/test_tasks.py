"""SWE task files (format, validation, round trip) and workspace materialisation."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from arenagym.envs.swe.env import BUNDLED_TASKS
from arenagym.envs.swe.tasks import SWETask, TaskFormatError, dump_tasks, load_tasks, parse_task
from arenagym.envs.swe.workspace import (
    RepoPathError,
    WorkspaceError,
    check_repo_path,
    materialize,
)

MINIMAL = {
    "instance_id": "o__r-1",
    "repo": "o/r",
    "base_commit": "deadbeef",
    "patch": "diff",
    "test_patch": "",
    "problem_statement": "It breaks.",
}


def test_swe_bench_row_with_json_string_lists_and_extra_fields(tmp_path: Path, kit) -> None:
    row = {
        **MINIMAL,
        "FAIL_TO_PASS": '["tests/a.py::t1", "tests/a.py::C::t2[x-1]"]',
        "PASS_TO_PASS": "[]",
        "hints_text": None,
        "version": 3.0,
        "created_at": "2023-01-01T00:00:00Z",  # unknown SWE-bench fields are ignored
        "environment_setup_commit": "cafe",
    }
    [task] = load_tasks(kit.jsonl(tmp_path / "t.jsonl", [row]))
    assert task.FAIL_TO_PASS == ("tests/a.py::t1", "tests/a.py::C::t2[x-1]")
    assert task.PASS_TO_PASS == ()
    assert (task.hints_text, task.version, task.environment_setup_commit) == ("", "3.0", "cafe")
    assert task.repo_path is None and task.test_command == "python -m pytest"
    assert task.selected_tests == task.FAIL_TO_PASS


def test_relative_repo_path_resolves_against_the_file_and_round_trips(tmp_path: Path) -> None:
    (tmp_path / "data" / "repos" / "lib").mkdir(parents=True)
    row = {
        **MINIMAL,
        "FAIL_TO_PASS": ["t.py::a"],
        "repo_path": "repos/lib",
        "setup_commands": ["pip --version"],
        "image": "arenagym/base",
        "base_patch": "x",
    }
    path = tmp_path / "data" / "tasks.jsonl"
    path.write_text(json.dumps(row) + "\n\n")  # blank lines are skipped
    [task] = load_tasks(path)
    assert task.repo_path == str(tmp_path / "data" / "repos" / "lib")
    dump_tasks([task], path)
    assert json.loads(path.read_text())["repo_path"] == "repos/lib"  # stays relative
    assert load_tasks(path) == [task]
    elsewhere = tmp_path / "other" / "tasks.jsonl"
    dump_tasks([task], elsewhere)
    assert load_tasks(elsewhere) == [task]


@pytest.mark.parametrize(
    ("line", "field", "problem"),
    [
        ("{not json", None, "invalid JSON"),
        ("[1, 2]", None, "expected a JSON object"),
        (json.dumps({k: v for k, v in MINIMAL.items() if k != "repo"}), "repo", "missing"),
        (json.dumps({**MINIMAL, "patch": 5}), "patch", "expected a string, got int"),
        (json.dumps({**MINIMAL, "instance_id": " "}), "instance_id", "must not be empty"),
        (json.dumps({**MINIMAL, "FAIL_TO_PASS": "[1]"}), "FAIL_TO_PASS", "item 0"),
        (json.dumps({**MINIMAL, "FAIL_TO_PASS": "nope"}), "FAIL_TO_PASS", "JSON list"),
        (json.dumps({**MINIMAL, "PASS_TO_PASS": {"a": 1}}), "PASS_TO_PASS", "list of strings"),
        (json.dumps({**MINIMAL, "PASS_TO_PASS": [" t.py::a"]}), "PASS_TO_PASS", "surrounding"),
        (json.dumps({**MINIMAL, "repo_path": 3}), "repo_path", "string or null"),
        (json.dumps({**MINIMAL, "setup_commands": "pip"}), "setup_commands", "JSON list"),
    ],
)
def test_errors_name_file_line_and_field(
    tmp_path: Path, line: str, field: str | None, problem: str
) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({**MINIMAL, "instance_id": "fine"}) + "\n" + line + "\n")
    with pytest.raises(TaskFormatError) as caught:
        load_tasks(path)
    error = caught.value
    assert (error.path, error.line, error.field) == (str(path), 2, field)
    assert str(error).startswith(f"{path}:2: ") and problem in str(error)


def test_duplicate_ids_empty_files_and_required_tests(tmp_path: Path, kit) -> None:
    with pytest.raises(
        TaskFormatError, match=r":3: field 'instance_id': 'o__r-1' already used on line 1"
    ):
        load_tasks(
            kit.jsonl(tmp_path / "d.jsonl", [MINIMAL, {**MINIMAL, "instance_id": "b"}, MINIMAL])
        )
    with pytest.raises(TaskFormatError, match="no tasks"):
        load_tasks(kit.jsonl(tmp_path / "e.jsonl", []))
    with pytest.raises(TaskFormatError, match=r":1: field 'FAIL_TO_PASS': empty"):
        load_tasks(kit.jsonl(tmp_path / "f.jsonl", [MINIMAL]), require_tests=True)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_tasks(tmp_path / "missing.jsonl")


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=6,
)


@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    field=st.sampled_from(
        [
            *MINIMAL,
            "FAIL_TO_PASS",
            "PASS_TO_PASS",
            "repo_path",
            "image",
            "setup_commands",
            "hints_text",
            "version",
            "test_command",
        ]
    ),
    value=_JSON,
)
def test_fuzzed_fields_either_load_or_fail_with_a_located_error(field: str, value: object) -> None:
    row = {**MINIMAL, field: value}
    try:
        task = parse_task(row, path="/data/t.jsonl", line=7)
    except TaskFormatError as error:
        assert error.line == 7 and error.path == "/data/t.jsonl"
        assert error.field == field, str(error)
    else:
        assert isinstance(task, SWETask)
        for name in ("FAIL_TO_PASS", "PASS_TO_PASS", "setup_commands"):
            assert all(isinstance(item, str) and item for item in getattr(task, name))
        assert all(isinstance(getattr(task, name), str) for name in MINIMAL)


# ------------------------------------------------------------------------------ workspace
def _git_in(path: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=path, capture_output=True, text=True, check=False
    ).stdout.strip()


def test_snapshot_workspace_has_the_bug_one_commit_and_no_patch(tmp_path: Path, kit) -> None:
    task = kit.snapshot_task(tmp_path)
    (Path(task.repo_path) / "calc" / "__pycache__").mkdir()
    (Path(task.repo_path) / "calc" / "__pycache__" / "x.pyc").write_bytes(b"\0")
    made = materialize(task, tmp_path / "ws")
    assert (made.path / "calc" / "__init__.py").read_text() == kit.BUGGY_SOURCE
    assert not (made.path / "calc" / "__pycache__").exists()
    assert _git_in(made.path, "rev-list", "--all", "--count") == "1"
    assert _git_in(made.path, "status", "--porcelain") == ""
    assert _git_in(made.path, "log", "-1", "--format=%an <%ae> %ad %cn %cd", "--date=unix") == (
        "arenagym <arenagym@localhost> 946684800 arenagym 946684800"
    )
    again = materialize(task, tmp_path / "ws2")
    assert again.commit == made.commit  # deterministic hash
    assert not (Path(task.repo_path) / ".git").exists()  # the snapshot was never touched


def test_git_workspace_has_no_history_future_commits_or_test_patch(tmp_path: Path, kit) -> None:
    task, future = kit.git_task(tmp_path)
    made = materialize(task, tmp_path / "ws")
    assert (made.path / "calc" / "__init__.py").read_text() == kit.BUGGY_SOURCE
    assert not (made.path / "tests" / "test_new.py").exists()  # the test patch is not applied
    assert _git_in(made.path, "rev-list", "--all", "--count") == "1"
    assert made.commit != task.base_commit
    assert _git_in(made.path, "cat-file", "-t", future) == ""  # the fix's commit is unknown
    assert _git_in(made.path, "cat-file", "-t", task.base_commit) == ""
    assert _git_in(made.path, "for-each-ref", "--format=%(refname)") == "refs/heads/main"
    every_blob = subprocess.run(
        ["git", "cat-file", "--batch-all-objects", "--batch"],
        cwd=made.path,
        capture_output=True,
        check=True,
    ).stdout
    assert b"return a + b" not in every_blob  # no object anywhere holds the fix
    assert b"test_add_negative" not in every_blob
    assert not list(made.path.glob(".git/hooks/*"))


def test_workspace_errors(tmp_path: Path, kit) -> None:
    task = kit.snapshot_task(tmp_path)
    with pytest.raises(WorkspaceError, match="no repo_path"):
        materialize(SWETask(**{**task.__dict__, "repo_path": None}), tmp_path / "a")
    with pytest.raises(WorkspaceError, match="base_patch of calc-snapshot-1 does not apply"):
        materialize(SWETask(**{**task.__dict__, "base_patch": kit.GOLD_PATCH}), tmp_path / "b")
    git_task, _ = kit.git_task(tmp_path)
    with pytest.raises(WorkspaceError, match="rev-parse"):
        materialize(SWETask(**{**git_task.__dict__, "base_commit": "0" * 40}), tmp_path / "c")


def test_kit_fixture_is_consistent(kit: SimpleNamespace) -> None:
    assert kit.GOLD_PATCH.startswith("--- a/calc/__init__.py")
    assert "+    return a + b" in kit.GOLD_PATCH and "+    return a - b" in kit.BASE_PATCH


def _hash_object(repo: Path, data: bytes, kind: str = "blob") -> str:
    completed = subprocess.run(
        ["git", "hash-object", "-w", "-t", kind, "--literally", "--stdin"],
        cwd=repo, input=data, capture_output=True, check=True,
    )
    return completed.stdout.decode().strip()


def _crafted_commit(repo: Path, entries: list[tuple[bytes, bytes, str]]) -> str:
    """A commit whose root tree lists ``entries`` (mode, name, object) as given: git's own
    commands never write such trees (a name twice, a link and a folder of the same name)."""
    tree = b"".join(mode + b" " + name + b"\0" + bytes.fromhex(sha) for mode, name, sha in entries)
    root = _hash_object(repo, tree, "tree")
    completed = subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", "commit-tree", root,
         "-m", "crafted"],
        cwd=repo, capture_output=True, check=True,
    )
    return completed.stdout.decode().strip()


def test_a_crafted_tree_cannot_write_outside_the_workspace_or_into_git(tmp_path: Path) -> None:
    repo, outside = tmp_path / "hostile", tmp_path / "outside"
    repo.mkdir()
    outside.mkdir()
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    payload = _hash_object(repo, b"pwned\n")
    folder = _hash_object(repo, b"100644 evil\0" + bytes.fromhex(payload), "tree")
    link = _hash_object(repo, str(outside).encode())
    through_link = _crafted_commit(repo, [(b"120000", b"a", link), (b"40000", b"a", folder)])
    config = _hash_object(repo, b"[filter \"x\"]\n\tclean = touch /tmp/pwned\n")
    git_folder = _hash_object(repo, b"100644 config\0" + bytes.fromhex(config), "tree")
    into_git = _crafted_commit(repo, [(b"40000", b".git", git_folder)])
    for commit, message in ((through_link, "through the link"), (into_git, "unsafe path")):
        task = SWETask("hostile-1", "x/y", commit, "", "", "Fix it.", repo_path=str(repo))
        with pytest.raises(WorkspaceError, match=message):
            materialize(task, tmp_path / f"ws-{commit[:8]}")
    assert list(outside.iterdir()) == []


PROJECT = Path(__file__).resolve().parents[3]


def _bad_repo_path(case: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[str, str]:
    """(repo_path as a task file would hold it, the rule its error must name) for ``case``."""
    if case == "etc":
        return "/etc", "/etc is a system folder"
    if case == "link-to-etc":
        (tmp_path / "etc-link").symlink_to("/etc")
        return str(tmp_path / "etc-link"), f"/etc (given as {tmp_path / 'etc-link'}) is a system"
    if case == "dot-dot-etc":
        return os.path.relpath("/etc", tmp_path), "/etc is a system folder"
    if case == "ssh":
        monkeypatch.setenv("HOME", str(tmp_path / "home"))
        (tmp_path / "home" / ".ssh").mkdir(parents=True)
        return "~/.ssh", "is in ~/.ssh, a hidden folder of your home"
    if case == "proc-self-cwd":
        monkeypatch.chdir(tmp_path)
        return "/proc/self/cwd", "goes through /proc, the kernel's view"
    if case == "home":
        return str(Path.home()), "is your home folder or holds it"
    if case == "root":
        return "/", "is your home folder or holds it"
    if case == "tmp":
        return "/tmp", "is a shared folder"
    if case == "project":
        return str(PROJECT), "holds this package"
    if case == "a-venv":
        (tmp_path / "venv" / "lib" / "site" / "pkg").mkdir(parents=True)
        (tmp_path / "venv" / "pyvenv.cfg").write_text("home = /usr/bin\n")
        return str(tmp_path / "venv" / "lib" / "site" / "pkg"), "which is a virtual environment"
    if case == "this-venv":
        if sys.prefix == sys.base_prefix:
            pytest.skip("the tests do not run in a virtual environment")
        return sys.prefix, "is a virtual environment"
    if case == "site-packages":
        (tmp_path / "lib" / "site-packages" / "pkg").mkdir(parents=True)
        return str(tmp_path / "lib" / "site-packages" / "pkg"), "is in an installation's site-pa"
    if case == "not-owned":
        if os.geteuid() != 0:
            pytest.skip("making a folder someone else owns needs root")
        (tmp_path / "theirs").mkdir()
        os.chown(tmp_path / "theirs", 65534, 65534)
        return str(tmp_path / "theirs"), "is owned by uid 65534, not by you"
    if case == "missing":
        return str(tmp_path / "nowhere"), "does not exist"
    assert case == "a-file"
    (tmp_path / "file.txt").write_text("x")
    return str(tmp_path / "file.txt"), "is not a directory"


BAD_REPO_PATHS = [
    "etc", "link-to-etc", "dot-dot-etc", "ssh", "proc-self-cwd", "home", "root", "tmp", "project",
    "a-venv", "this-venv", "site-packages", "not-owned", "missing", "a-file",
]  # fmt: skip


@pytest.mark.parametrize("case", BAD_REPO_PATHS)
def test_a_bad_repo_path_is_refused_naming_the_path_and_the_rule(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, case: str
) -> None:
    from arenagym.envs.swe.env import SWEEnv

    repo_path, rule = _bad_repo_path(case, tmp_path, monkeypatch)
    row = {**MINIMAL, "base_commit": "", "repo_path": repo_path, "FAIL_TO_PASS": ["t.py::t"]}
    path = tmp_path / "tasks.jsonl"
    path.write_text(json.dumps(row) + "\n")
    [task] = load_tasks(path)
    for attempt in (
        lambda: check_repo_path(task.repo_path or "", task.instance_id),
        lambda: materialize(task, tmp_path / "ws"),
        lambda: SWEEnv(tasks=str(path)),  # a user error: the constructor says so
    ):
        with pytest.raises(ValueError) as caught:
            attempt()
        message = str(caught.value)
        assert isinstance(caught.value, RepoPathError)
        assert rule in message and "A repo_path must be a git repository" in message
        assert message.startswith("task o__r-1: repo_path ")
    assert not (tmp_path / "ws").exists()


def test_a_git_repository_or_your_own_folder_is_accepted(tmp_path: Path, kit) -> None:
    task, _ = kit.git_task(tmp_path)
    assert check_repo_path(task.repo_path or "") == Path(task.repo_path or "").resolve()
    (tmp_path / "link").symlink_to(task.repo_path or "")
    assert check_repo_path(tmp_path / "link") == Path(task.repo_path or "").resolve()
    assert check_repo_path(kit.snapshot_task(tmp_path).repo_path or "")
    if os.geteuid() == 0:  # a repository someone else owns: only its base commit is read
        for entry in [Path(task.repo_path or ""), *Path(task.repo_path or "").rglob("*")]:
            os.lchown(entry, 65534, 65534)
        assert materialize(task, tmp_path / "ws").commit


def test_the_bundled_libraries_are_accepted_wherever_the_package_is_installed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import arenagym.envs.swe.workspace as workspace

    bundled = Path(workspace.__file__).resolve().parent / "data" / "repos"
    if bundled.is_dir():
        for library in bundled.iterdir():
            assert check_repo_path(library) == library.resolve()
    installed = tmp_path / "venv" / "lib" / "site-packages" / "arenagym" / "envs"
    (installed / "swe" / "data" / "repos" / "lib").mkdir(parents=True)
    (tmp_path / "venv" / "pyvenv.cfg").write_text("home = /usr/bin\n")
    monkeypatch.setattr(workspace, "__file__", str(installed / "swe" / "workspace.py"))
    library = installed / "swe" / "data" / "repos" / "lib"
    assert check_repo_path(library) == library
    with pytest.raises(RepoPathError, match="holds this package"):
        check_repo_path(tmp_path / "venv" / "lib" / "site-packages")
    (installed.parent.parent / "other").mkdir()
    with pytest.raises(RepoPathError, match="is in an installation's site-packages"):
        check_repo_path(installed.parent.parent / "other")


@pytest.mark.parametrize("kind", ["snapshot", "git"])
def test_a_source_over_the_size_cap_is_refused_before_it_is_copied(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kit, kind: str
) -> None:
    import arenagym.envs.swe.workspace as workspace

    task = kit.snapshot_task(tmp_path) if kind == "snapshot" else kit.git_task(tmp_path)[0]
    monkeypatch.setattr(workspace, "MAX_SOURCE_BYTES", 300)
    with pytest.raises(RepoPathError, match="holds more than the source limit") as caught:
        materialize(task, tmp_path / "ws")
    assert "the limit is 200000 files and 300 bytes" in str(caught.value)
    assert task.repo_path in str(caught.value) and not (tmp_path / "ws").exists()
    monkeypatch.setattr(workspace, "MAX_SOURCE_BYTES", 1 << 30)
    monkeypatch.setattr(workspace, "MAX_SOURCE_FILES", 2)
    with pytest.raises(RepoPathError, match="the limit is 2 files"):
        materialize(task, tmp_path / "ws")
    if kind == "snapshot":  # cheap to measure: an env refuses it when it is made
        from arenagym.envs.swe.env import SWEEnv

        dump_tasks([task], tmp_path / "tasks.jsonl")
        with pytest.raises(ValueError, match="holds more than the source limit"):
            SWEEnv(tasks=str(tmp_path / "tasks.jsonl"))


@pytest.mark.parametrize("interrupt", [KeyboardInterrupt, WorkspaceError])
@pytest.mark.parametrize("existed", [False, True])
def test_a_failed_materialisation_leaves_nothing_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kit, interrupt: type, existed: bool
) -> None:
    import arenagym.envs.swe.workspace as workspace

    def fail(*_args: object, **_kwargs: object) -> None:
        raise interrupt("stopped while applying the base patch")

    monkeypatch.setattr(workspace, "apply_patch_on_host", fail)
    destination = tmp_path / "ws"
    if existed:
        destination.mkdir()
    with pytest.raises(interrupt):
        materialize(kit.snapshot_task(tmp_path), destination)
    assert (list(destination.iterdir()) == []) if existed else not destination.exists()


@pytest.mark.parametrize("command", ["validate", "synthesize"])
def test_the_cli_refuses_a_bad_repository_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    from arenagym.cli import main

    (tmp_path / "etc-link").symlink_to("/etc")
    if command == "validate":
        row = {**MINIMAL, "repo_path": "etc-link"}
        (tmp_path / "candidates.jsonl").write_text(json.dumps(row) + "\n")
        source = str(tmp_path / "candidates.jsonl")
    else:
        source = str(tmp_path / "etc-link")
    assert main(["swe", command, source, "-o", str(tmp_path / "out.jsonl"), "--no-progress"]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith(f"arenagym swe {command}: error: task ") and "\n" not in error
    assert f"repo_path /etc (given as {tmp_path / 'etc-link'}) is a system folder" in error
    assert not (tmp_path / "out.jsonl").exists()


def test_a_gzipped_task_file_reads_like_the_plain_one_and_a_cut_one_is_refused(
    tmp_path: Path,
) -> None:
    import gzip

    plain = load_tasks(BUNDLED_TASKS)
    packed = tmp_path / "tasks.jsonl.gz"
    packed.write_bytes(gzip.compress(BUNDLED_TASKS.read_bytes()))
    assert load_tasks(packed, base_dir=BUNDLED_TASKS.parent) == plain
    cut = tmp_path / "cut.jsonl.gz"
    cut.write_bytes(packed.read_bytes()[:200])
    with pytest.raises(TaskFormatError, match=r"cut\.jsonl\.gz:1: not a whole gzip file"):
        load_tasks(cut)


def test_git_repositories_in_arenagyms_own_cache_are_accepted_but_no_other_hidden_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The real-library repositories are imported into ``~/.cache/arenagym/swe-real`` by
    default: git repositories there are sources (only their commits are read); a plain folder
    there, or a repository elsewhere in ``~/.cache``, is still refused."""
    home = tmp_path / "home"
    monkeypatch.setenv("HOME", str(home))
    own = home / ".cache" / "arenagym" / "swe-real" / "lib-1.0"
    other = home / ".cache" / "elsewhere" / "lib-1.0"
    plain = home / ".cache" / "arenagym" / "plain"
    for folder in (own, other):
        folder.mkdir(parents=True)
        subprocess.run(["git", "init", "-q", str(folder)], check=True)
    plain.mkdir(parents=True)
    assert check_repo_path(own) == own.resolve()
    for refused in (other, plain):
        with pytest.raises(RepoPathError, match=r"is in ~/\.cache, a hidden folder of your home"):
            check_repo_path(refused)


def test_the_default_real_library_root_is_accepted_in_the_real_home() -> None:
    """Where the home itself is under a system folder (``/root``), the cache is still a source."""
    import shutil
    import uuid

    scratch = Path.home() / ".cache" / "arenagym" / f"test-{uuid.uuid4().hex}"
    repo = scratch / "lib-1.0"
    repo.mkdir(parents=True)
    try:
        subprocess.run(["git", "init", "-q", str(repo)], check=True)
        assert check_repo_path(repo) == repo.resolve()
    finally:
        shutil.rmtree(scratch)
