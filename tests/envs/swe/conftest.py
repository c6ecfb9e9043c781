"""Fixtures for the SWE tests: a tiny library with a known bug, as a snapshot or a git repo."""

from __future__ import annotations

import difflib
import json
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest

from arenagym.envs.swe.tasks import SWETask, dump_tasks

CALC_SOURCE = '''\
"""A tiny calculator."""


def add(a, b):
    return a + b


def mul(a, b):
    return a * b


def clamp(x, lo, hi):
    return max(lo, min(x, hi))
'''
CALC_TESTS = """\
import pytest

from calc import add, clamp, mul


def test_add():
    assert add(2, 3) == 5


def test_mul():
    assert mul(4, 3) == 12


class TestClamp:
    def test_low(self):
        assert clamp(-5, 0, 10) == 0

    @pytest.mark.parametrize("x, expected", [(5, 5), (50, 10)])
    def test_values(self, x, expected):
        assert clamp(x, 0, 10) == expected
"""
NEW_TEST_FILE = """\
from calc import add


def test_add_negative():
    assert add(-2, -3) == -5
"""
BUGGY_SOURCE = CALC_SOURCE.replace("return a + b", "return a - b")
FAIL_TO_PASS = ("tests/test_calc.py::test_add",)
PASS_TO_PASS = (
    "tests/test_calc.py::test_mul",
    "tests/test_calc.py::TestClamp::test_low",
    "tests/test_calc.py::TestClamp::test_values[5-5]",
    "tests/test_calc.py::TestClamp::test_values[50-10]",
)


def unified_diff(old: str, new: str, path: str) -> str:
    """A ``git apply``-able diff of one text file (``old`` empty and ``new`` set = a new file)."""
    before = f"a/{path}" if old else "/dev/null"
    lines = difflib.unified_diff(
        old.splitlines(keepends=True), new.splitlines(keepends=True), before, f"b/{path}"
    )
    return "".join(lines)


GOLD_PATCH = unified_diff(BUGGY_SOURCE, CALC_SOURCE, "calc/__init__.py")
BASE_PATCH = unified_diff(CALC_SOURCE, BUGGY_SOURCE, "calc/__init__.py")
TEST_PATCH = unified_diff("", NEW_TEST_FILE, "tests/test_new.py")


def write_calc_library(root: Path, source: str = CALC_SOURCE) -> Path:
    """The calc library (package + tests) in ``root``."""
    (root / "calc").mkdir(parents=True, exist_ok=True)
    (root / "tests").mkdir(exist_ok=True)
    (root / "calc" / "__init__.py").write_text(source)
    (root / "tests" / "test_calc.py").write_text(CALC_TESTS)
    (root / "pyproject.toml").write_text('[tool.pytest.ini_options]\naddopts = "-q"\n')
    return root


def git(root: Path, *args: str) -> str:
    """Run git in a test repository with a fixed identity."""
    completed = subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.invalid", *args],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    )
    return completed.stdout.strip()


def snapshot_task(root: Path, **overrides: object) -> SWETask:
    """A task whose source is a directory snapshot and whose bug is the ``base_patch``."""
    library = write_calc_library(root / "calc-lib")
    fields: dict[str, object] = {
        "instance_id": "calc-snapshot-1",
        "repo": "demo/calc",
        "base_commit": "",
        "patch": GOLD_PATCH,
        "test_patch": "",
        "problem_statement": "add(2, 3) returns -1 instead of 5.",
        "FAIL_TO_PASS": FAIL_TO_PASS,
        "PASS_TO_PASS": PASS_TO_PASS,
        "repo_path": str(library),
        "base_patch": BASE_PATCH,
    }
    fields.update(overrides)
    return SWETask(**fields)  # type: ignore[arg-type]


def git_task(root: Path) -> tuple[SWETask, str]:
    """A task on a git repository whose base commit has the bug and a later commit the fix
    (plus a tag and a branch), with a test patch adding a FAIL_TO_PASS test. Returns the task
    and the later commit's hash."""
    repo = write_calc_library(root / "calc-repo", BUGGY_SOURCE)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "buggy base")
    base = git(repo, "rev-parse", "HEAD")
    (repo / "calc" / "__init__.py").write_text(CALC_SOURCE)
    (repo / "tests" / "test_new.py").write_text(NEW_TEST_FILE)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "the fix, from the future")
    future = git(repo, "rev-parse", "HEAD")
    git(repo, "tag", "v1.0")
    task = SWETask(
        instance_id="calc-git-1",
        repo="demo/calc",
        base_commit=base,
        patch=GOLD_PATCH,
        test_patch=TEST_PATCH,
        problem_statement="add() subtracts; negative numbers are wrong too.",
        FAIL_TO_PASS=(*FAIL_TO_PASS, "tests/test_new.py::test_add_negative"),
        PASS_TO_PASS=PASS_TO_PASS,
        repo_path=str(repo),
    )
    return task, future


@pytest.fixture
def calc_task(tmp_path: Path) -> SWETask:
    return snapshot_task(tmp_path)


@pytest.fixture
def calc_tasks_file(tmp_path: Path) -> Path:
    """A task file with the snapshot task and the git task."""
    first = snapshot_task(tmp_path)
    second, _ = git_task(tmp_path)
    path = tmp_path / "tasks.jsonl"
    dump_tasks([first, second], path)
    return path


def jsonl(path: Path, rows: list[object]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


@pytest.fixture
def kit() -> SimpleNamespace:
    """The helpers above for test modules (importlib mode cannot import conftest by name)."""
    return SimpleNamespace(
        CALC_SOURCE=CALC_SOURCE,
        CALC_TESTS=CALC_TESTS,
        BUGGY_SOURCE=BUGGY_SOURCE,
        GOLD_PATCH=GOLD_PATCH,
        BASE_PATCH=BASE_PATCH,
        TEST_PATCH=TEST_PATCH,
        FAIL_TO_PASS=FAIL_TO_PASS,
        PASS_TO_PASS=PASS_TO_PASS,
        unified_diff=unified_diff,
        git=git,
        snapshot_task=snapshot_task,
        git_task=git_task,
        write_calc_library=write_calc_library,
        jsonl=jsonl,
    )
