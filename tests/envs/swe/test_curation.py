"""The curation pipeline in the real sandbox: FAIL_TO_PASS / PASS_TO_PASS from runs before and
after the gold patch, flaky tests and tasks dropped, the content-hash cache, and the CLI."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest

from arenagym.cli import main
from arenagym.envs.swe.curation import (
    CurationError,
    cache_key,
    classify,
    repository_digest,
    validate_tasks,
)
from arenagym.envs.swe.grading import TestRun, run_tests
from arenagym.envs.swe.runtime.bubblewrap import bubblewrap_unavailable_reason
from arenagym.envs.swe.synthesis import unified_file_diff
from arenagym.envs.swe.tasks import SWETask, load_tasks

_REASON = bubblewrap_unavailable_reason()
needs_sandbox = pytest.mark.skipif(_REASON is not None, reason=f"bubblewrap: {_REASON}")

CALC = """\
def clamp(value, low, high):
    if value < low:
        return low
    if value > high:
        return high
    return value


def mean(values):
    return sum(values) / len(values)
"""
TESTS = """\
from calc import clamp, mean


def test_clamp_low():
    assert clamp(-5, 0, 10) == 0


def test_clamp_high():
    assert clamp(50, 0, 10) == 10


def test_clamp_inside():
    assert clamp(5, 0, 10) == 5


def test_mean():
    assert mean([1, 2, 3, 6]) == 3
"""
FLAKY_TEST = """\
from pathlib import Path


def test_depends_on_a_counter_file():
    assert int(Path("counter.txt").read_text()) // 2 % 2 == 1
"""
PYPROJECT = '[tool.pytest.ini_options]\ntestpaths = ["tests"]\npythonpath = ["."]\n'


def make_repo(root: Path, *, flaky: bool = False) -> Path:
    (root / "calc").mkdir(parents=True)
    (root / "calc" / "__init__.py").write_text(CALC)
    (root / "tests").mkdir()
    (root / "tests" / "test_calc.py").write_text(TESTS)
    if flaky:
        (root / "tests" / "test_flaky.py").write_text(FLAKY_TEST)
        (root / "counter.txt").write_text("0\n")
    (root / "pyproject.toml").write_text(PYPROJECT)
    return root


def bug_task(repo: Path, instance_id: str = "calc-1", old: str = "value > high",
             new: str = "value < high") -> SWETask:  # fmt: skip
    buggy = CALC.replace(old, new)
    return SWETask(
        instance_id=instance_id,
        repo="calc",
        base_commit="",
        patch=unified_file_diff("calc/__init__.py", buggy, CALC),
        test_patch="",
        problem_statement="clamp is wrong",
        repo_path=str(repo),
        base_patch=unified_file_diff("calc/__init__.py", CALC, buggy),
    )


class CountingRunner:
    """The real ``run_tests`` that counts sandbox runs and writes a run counter into the
    workspace before the tests (a test that reads it is flaky across runs)."""

    def __init__(self) -> None:
        self.calls = 0
        self._lock = threading.Lock()

    def __call__(self, task: SWETask, patch: str, test_ids: Any, **kw: Any) -> TestRun:
        with self._lock:
            number = self.calls
            self.calls += 1
        staged = dataclasses.replace(task, setup_commands=(f"echo {number} > counter.txt",))
        return run_tests(staged, patch, test_ids, **kw)


def test_classify_rules():
    base = [{"f": "failed", "p": "passed", "e": "error", "s": "skipped", "x": "passed"}] * 2
    gold = [{"f": "passed", "p": "passed", "e": "xfailed", "s": "skipped", "x": "failed"}] * 2
    assert classify(base, gold) == (["e", "f"], ["p"], [], ["x"])
    # a test absent from a run counts as missing (not passing)
    assert classify([{"a": "failed"}], [{}]) == ([], [], [], ["a"])


def test_cache_key_follows_content(tmp_path: Path):
    repo = make_repo(tmp_path / "repo")
    task = bug_task(repo)
    key = cache_key(task, runtime="bubblewrap", runs=2)
    assert key == cache_key(dataclasses.replace(task, instance_id="other"), runtime="bubblewrap",
                            runs=2)  # fmt: skip
    assert key != cache_key(task, runtime="docker", runs=2)
    assert key != cache_key(task, runtime="bubblewrap", runs=3)
    assert key != cache_key(dataclasses.replace(task, test_patch="x"), runtime="bubblewrap", runs=2)
    before = repository_digest(repo)
    (repo / "calc" / "__pycache__").mkdir()
    (repo / "calc" / "__pycache__" / "x.pyc").write_bytes(b"junk")
    assert repository_digest(tmp_path / "repo") == before  # caches are ignored
    (tmp_path / "copy").mkdir()
    make_repo(tmp_path / "copy" / "r")
    (tmp_path / "copy" / "r" / "calc" / "extra.py").write_text("x = 1\n")
    assert repository_digest(tmp_path / "copy" / "r") != before


def test_invalid_options():
    with pytest.raises(CurationError, match="runs"):
        validate_tasks([], runs=0, show_progress=False)
    with pytest.raises(CurationError, match="workers"):
        validate_tasks([], workers=0, show_progress=False)


@needs_sandbox
def test_real_bug_gives_expected_fail_to_pass_and_pass_to_pass(tmp_path: Path):
    repo = make_repo(tmp_path / "repo")
    runner = CountingRunner()
    report = validate_tasks(
        [bug_task(repo)], runs=2, workers=1, runner=runner, show_progress=False, timeout_s=60
    )
    [result] = report.results
    assert result.kept, result.reason
    assert result.fail_to_pass == (
        "tests/test_calc.py::test_clamp_high",
        "tests/test_calc.py::test_clamp_inside",
    )
    assert result.pass_to_pass == (
        "tests/test_calc.py::test_clamp_low",
        "tests/test_calc.py::test_mean",
    )
    assert runner.calls == report.sandbox_runs == 4  # 2 runs before, 2 after
    [task] = report.kept_tasks()
    assert len(task.base_commit) == 40  # the deterministic workspace commit
    assert "test_clamp_high" in result.base_output


@needs_sandbox
def test_flaky_tests_and_tasks_are_dropped_and_bugless_candidates_too(tmp_path: Path):
    repo = make_repo(tmp_path / "repo", flaky=True)
    flaky_only = dataclasses.replace(
        bug_task(repo, "calc-flaky-only"), base_patch="", patch=""
    )  # no bug: only the flaky test ever fails
    plain = make_repo(tmp_path / "plain")  # no flaky test here
    no_effect = bug_task(plain, "calc-no-effect", old="return value\n", new="return (value)\n")
    real = bug_task(repo, "calc-real")
    runner = CountingRunner()
    report = validate_tasks(
        [real, flaky_only, no_effect],
        runs=2,
        workers=1,
        runner=runner,
        show_progress=False,
        timeout_s=60,
    )
    real_result, flaky_result, no_effect_result = report.results
    flaky_id = "tests/test_flaky.py::test_depends_on_a_counter_file"
    # run order with one worker: real base/gold/base/gold = counters 0..3 -> the flaky test
    # fails, fails, passes, passes: flaky on both sides, in neither list
    assert real_result.kept
    assert flaky_id in real_result.flaky
    assert flaky_id not in real_result.fail_to_pass + real_result.pass_to_pass
    assert len(real_result.fail_to_pass) == 2
    assert not flaky_result.kept
    assert flaky_result.reason is not None and flaky_result.reason.startswith("flaky")
    assert not no_effect_result.kept
    assert no_effect_result.reason is not None
    assert no_effect_result.reason.startswith("no FAIL_TO_PASS")
    assert no_effect_result.sandbox_runs == 1  # one base run that passed everything suffices
    assert report.dropped_reasons() == {"flaky": 1, "no FAIL_TO_PASS": 1}
    assert [t.instance_id for t in report.kept_tasks()] == ["calc-real"]


@needs_sandbox
def test_cache_makes_a_rerun_do_no_work(tmp_path: Path):
    repo = make_repo(tmp_path / "repo")
    tasks = [bug_task(repo), bug_task(repo, "calc-2", old="value < low", new="value <= low")]
    runner = CountingRunner()
    options: dict[str, Any] = {
        "runs": 1, "workers": 2, "cache_dir": tmp_path / "cache", "runner": runner,
        "show_progress": False, "timeout_s": 60,
    }  # fmt: skip
    first = validate_tasks(tasks, **options)
    assert runner.calls == first.sandbox_runs > 0
    calls = runner.calls
    second = validate_tasks(tasks, **options)
    assert runner.calls == calls  # no sandbox run at all
    assert second.sandbox_runs == 0 and second.cache_hits == 2
    assert [r.to_json() | {"cached": 0, "sandbox_runs": 0, "duration_s": 0}
            for r in second.results] == [
        r.to_json() | {"cached": 0, "sandbox_runs": 0, "duration_s": 0} for r in first.results
    ]  # fmt: skip
    # a new candidate is the only new work
    third = validate_tasks(
        [*tasks, bug_task(repo, "calc-3", old="sum(values)", new="sum(values[1:])")], **options
    )
    assert third.cache_hits == 2 and runner.calls == calls + third.sandbox_runs
    assert third.results[2].kept


def _lines(capsys: pytest.CaptureFixture[str]) -> list[str]:
    return [line for line in capsys.readouterr().err.splitlines() if line.strip()]


@needs_sandbox
def test_cli_synthesize_then_validate_on_a_directory(tmp_path: Path):
    repo = make_repo(tmp_path / "calcrepo")
    out = tmp_path / "out" / "tasks.jsonl"
    status = main([
        "swe", "synthesize", str(repo), "-o", str(out), "--max-tasks", "2", "--runs", "1",
        "--seed", "3", "--cache", str(tmp_path / "cache"), "--no-progress",
    ])  # fmt: skip
    assert status == 0
    tasks = load_tasks(out, require_tests=True)
    assert len(tasks) == 2
    for task in tasks:
        assert task.repo == "calcrepo" and task.repo_path == str(repo)
        assert task.base_patch and task.patch and task.FAIL_TO_PASS
        assert "test_calc" not in task.problem_statement
        assert "clamp" in task.problem_statement or "mean" in task.problem_statement
    report = json.loads(out.with_name("tasks.jsonl.report.json").read_text())
    assert report["tasks_written"] == 2 and report["per_operator"]
    # validating the synthesized tasks again finds the same tests
    again = tmp_path / "validated.jsonl"
    validate = ["swe", "validate", str(out), "-o", str(again), "--runs", "1", "--no-progress"]
    assert main(validate) == 0
    revalidated = load_tasks(again)
    assert [(t.FAIL_TO_PASS, t.PASS_TO_PASS) for t in revalidated] == [
        (t.FAIL_TO_PASS, t.PASS_TO_PASS) for t in tasks
    ]


@needs_sandbox
def test_cli_synthesize_from_a_git_repository(tmp_path: Path):
    repo = make_repo(tmp_path / "gitcalc")
    env = {"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t", "GIT_COMMITTER_NAME": "t",
           "GIT_COMMITTER_EMAIL": "t@t", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}  # fmt: skip
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "init"]):
        subprocess.run(["git", *args], cwd=repo, env=env, check=True)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True, text=True,
                          check=True).stdout.strip()  # fmt: skip
    (repo / "calc" / "__init__.py").write_text("broken on purpose = \n")  # uncommitted: ignored
    out = tmp_path / "tasks.jsonl"
    status = main([
        "swe", "synthesize", str(repo), "-o", str(out), "--max-tasks", "1", "--runs", "1",
        "--operators", "negate_condition", "--no-progress",
    ])  # fmt: skip
    assert status == 0
    [task] = load_tasks(out)
    assert task.base_commit == head and task.FAIL_TO_PASS


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["validate", "{tmp}/missing.jsonl", "-o", "{tmp}/o.jsonl"], "does not exist"),
        (["validate", "{tmp}/bad.jsonl", "-o", "{tmp}/o.jsonl"], "bad.jsonl:2: field 'patch'"),
        (["synthesize", "{tmp}/nowhere", "-o", "{tmp}/o.jsonl"], "is not a directory"),
        (
            ["synthesize", "{tmp}/repo", "-o", "{tmp}/o.jsonl", "--operators", "nope"],
            "unknown operator(s) nope",
        ),
        (["synthesize", "{tmp}/repo", "-o", "{tmp}/o.jsonl", "--runs", "0"], "--runs must be"),
        (
            ["synthesize", "{tmp}/repo", "-o", "{tmp}/o.jsonl", "--runtime", "vm"],
            "unknown runtime 'vm'",
        ),
        (["synthesize", "{tmp}/repo"], "the following arguments are required: -o/--output"),
        (["synthesize", "{tmp}/empty", "-o", "{tmp}/o.jsonl"], "no Python source files"),
        (["frobnicate"], "invalid choice"),
    ],
)
def test_cli_bad_input_exits_2_with_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
):
    make_repo(tmp_path / "repo")
    (tmp_path / "empty").mkdir()
    good = json.dumps({"instance_id": "a", "repo": "r", "base_commit": "", "patch": "",
                       "problem_statement": "p"})  # fmt: skip
    (tmp_path / "bad.jsonl").write_text(good + "\n" + good.replace('"patch": ""', '"patch": 3')
                                        + "\n")  # fmt: skip
    status = main(["swe", *(part.format(tmp=tmp_path) for part in argv)])
    lines = _lines(capsys)
    assert status == 2
    assert len(lines) == 1, lines
    assert message in lines[0]
    assert not (tmp_path / "o.jsonl").exists()


def test_cli_help_shows_examples(capsys: pytest.CaptureFixture[str]):
    assert main(["swe", "synthesize", "--help"]) == 0
    out = capsys.readouterr().out
    assert "examples:" in out and "arenagym swe synthesize path/to/repo" in out
    assert "flip_comparison" in out
    assert main(["swe", "validate", "--help"]) == 0
    assert "--runs" in capsys.readouterr().out


class SuiteOutputLost:
    """The real ``run_tests``, but a whole-suite run keeps none of pytest's report (as when a
    big suite's failures scroll out of the kept tail); runs of chosen tests keep theirs."""

    def __init__(self) -> None:
        self.chosen: list[list[str]] = []

    def __call__(self, task: SWETask, patch: str, test_ids: Any, **kw: Any) -> TestRun:
        run = run_tests(task, patch, test_ids, **kw)
        if test_ids is None:
            return dataclasses.replace(run, output="")
        self.chosen.append(list(test_ids))
        return run


@needs_sandbox
def test_statements_are_written_from_a_rerun_of_the_failing_tests_when_the_report_is_lost(
    tmp_path: Path,
):
    from arenagym.envs.swe.curation import synthesize

    repo = make_repo(tmp_path / "repo")
    options: dict[str, Any] = {
        "max_tasks": 1, "runs": 1, "workers": 1, "show_progress": False, "timeout_s": 60,
        "cache_dir": tmp_path / "cache", "seed": 3,
    }  # fmt: skip
    runner = SuiteOutputLost()
    [task] = synthesize(repo, runner=runner, **options).tasks
    assert runner.chosen == [list(task.FAIL_TO_PASS[:3])]  # the failing tests alone, on the bug
    assert "```python" in task.problem_statement  # a reproduction from their report
    assert "from calc import " in task.problem_statement and "I expected " in task.problem_statement
    again = SuiteOutputLost()
    [same] = synthesize(repo, runner=again, **options).tasks
    assert again.chosen == [] and same.problem_statement == task.problem_statement  # cached


def test_a_run_where_pytest_crashed_drops_the_task(tmp_path: Path):
    """An INTERNALERROR stops the session: the tests after it never ran, and would otherwise
    look like failures before the fix (false FAIL_TO_PASS)."""
    from arenagym.envs.swe.curation import INTERNAL_ERROR_ID, validate_task

    repo = make_repo(tmp_path / "repo")

    def crashing(crash_on: str) -> Any:
        def runner(task: SWETask, patch: str, test_ids: Any, **kw: Any) -> TestRun:
            statuses = {"tests/test_calc.py::test_mean": "passed" if patch else "failed"}
            if (crash_on == "gold") == bool(patch):
                statuses[INTERNAL_ERROR_ID] = "failed"
            return TestRun(statuses=statuses, output="", duration_s=0.0)

        return runner

    for run in ("base", "gold"):
        result = validate_task(bug_task(repo), runs=2, runner=crashing(run))
        assert not result.kept
        assert result.reason == f"pytest crashed (INTERNALERROR) in a {run} run: the tests " \
            "after the crash never ran"  # fmt: skip
