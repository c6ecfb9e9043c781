"""Grading: statuses from JUnit XML only, tests restored, and spoofing attempts that must fail."""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import NoReturn

import pytest

from arenagym.envs.swe.grading import (
    grade,
    is_protected_path,
    patch_paths,
    pytest_arguments,
    run_tests,
    statuses_from_junit,
    unconfirmed_passes,
    unsafe_patch_reason,
)
from arenagym.envs.swe.runtime import Limits, SandboxError, make_runtime
from arenagym.envs.swe.runtime.bubblewrap import bubblewrap_unavailable_reason
from arenagym.envs.swe.runtime.docker import docker_unavailable_reason
from arenagym.envs.swe.tasks import SWETask, load_tasks
from arenagym.envs.swe.workspace import materialize

BUNDLED = Path(__file__).resolve().parents[3] / "envs" / "swe" / "data" / "tasks.jsonl"
needs_bubblewrap = pytest.mark.skipif(
    bubblewrap_unavailable_reason() is not None, reason=str(bubblewrap_unavailable_reason())
)
_DOCKER_REASON = docker_unavailable_reason()


@pytest.fixture(
    params=[
        "bubblewrap",
        pytest.param(
            "docker",
            marks=pytest.mark.skipif(_DOCKER_REASON is not None, reason=str(_DOCKER_REASON)),
        ),
    ]
)
def grading_runtime(request: pytest.FixtureRequest) -> str:
    """Spoofing must fail in the default sandbox and in Docker alike."""
    return request.param


# ------------------------------------------------------------------------------ pure parts


def test_statuses_come_from_the_xml_with_the_worst_record_winning() -> None:
    xml = """<?xml version="1.0"?><testsuites><testsuite name="pytest">
      <testcase classname="tests.test_a.TestK" name="test_p[1-x]" file="tests/test_a.py"/>
      <testcase classname="tests.test_a" name="test_teardown" file="tests/test_a.py"/>
      <testcase classname="tests.test_a" name="test_teardown" file="tests/test_a.py">
        <error message="teardown"/></testcase>
      <testcase classname="tests.test_a" name="test_xf" file="tests/test_a.py">
        <skipped type="pytest.xfail" message="known"/></testcase>
      <testcase classname="tests.test_a" name="test_skip" file="tests/test_a.py">
        <skipped type="pytest.skip" message="no"/></testcase>
      <testcase classname="weird.name" name="renamed"><properties>
        <property name="arenagym_nodeid" value="pkg/t.py::test_real"/></properties></testcase>
    </testsuite></testsuites>"""
    assert statuses_from_junit(xml, None) == {
        "tests/test_a.py::TestK::test_p[1-x]": "passed",
        "tests/test_a.py::test_teardown": "error",
        "tests/test_a.py::test_xf": "xfailed",
        "tests/test_a.py::test_skip": "skipped",
        "pkg/t.py::test_real": "passed",
    }
    assert statuses_from_junit(xml, ["pkg/t.py::test_real", "tests/test_a.py::nope"]) == {
        "pkg/t.py::test_real": "passed",
        "tests/test_a.py::nope": "missing",
    }


@pytest.mark.parametrize(
    "xml",
    [
        "<testsuites><testcase name='a'/></testsuites><testsuites/>",  # a second, appended report
        "",
        "<!DOCTYPE x [<!ENTITY a 'b'>]><testsuites/>",
        "PASSED tests/test_a.py::test_x",
    ],
)
def test_unreadable_reports_are_errors(xml: str) -> None:
    with pytest.raises(ValueError):
        statuses_from_junit(xml, ["tests/test_a.py::test_x"])


@pytest.mark.parametrize(
    ("path", "protected"),
    [
        ("conftest.py", True),
        ("src/pkg/conftest.py", True),
        ("tests/helpers.py", True),
        ("pkg/test/data.json", True),
        ("test_thing.py", True),
        ("pkg/thing_test.py", True),
        ("pytest.ini", True),
        ("tox.ini", True),
        ("sub/setup.cfg", True),
        ("pyproject.toml", True),
        ("sitecustomize.py", True),
        ("lib/usercustomize.py", True),
        ("evil.pth", True),
        ("evil-1.0.dist-info/entry_points.txt", True),
        ("x.egg-info/entry_points.txt", True),
        ("pytest.toml", True),
        ("calc/__pycache__/__init__.cpython-311.pyc", True),
        ("conftest.pyc", True),
        ("pkg/core.py", False),
        ("pkg/testing_utils.py", False),
        ("README.md", False),
        ("pkg/latest.py", False),
    ],
)
def test_protected_paths(path: str, protected: bool) -> None:
    assert is_protected_path(path) is protected


def test_patch_paths_and_unsafe_patches(kit) -> None:
    assert patch_paths(kit.GOLD_PATCH) == ["calc/__init__.py", "calc/__init__.py"]
    assert patch_paths(kit.TEST_PATCH) == ["tests/test_new.py"]
    assert unsafe_patch_reason(kit.GOLD_PATCH) is None
    assert "git's own data" in unsafe_patch_reason(kit.unified_diff("", "[core]\n", ".git/config"))
    assert "outside the repository" in unsafe_patch_reason(
        "--- a/../x\n+++ b/../x\n@@ -1 +1 @@\n-a\n+b\n"
    )


def test_pytest_arguments() -> None:
    assert pytest_arguments("python -m pytest") == []
    assert pytest_arguments("python3 -m pytest -x -q --tb=short") == ["-x", "-q", "--tb=short"]
    assert pytest_arguments("pytest -k 'not slow'") == ["-k", "not slow"]
    with pytest.raises(ValueError, match="does not run pytest"):
        pytest_arguments("tox -e py")


def test_grade_refuses_a_task_without_tests(calc_task: SWETask) -> None:
    with pytest.raises(ValueError, match="no FAIL_TO_PASS or PASS_TO_PASS"):
        grade(SWETask(**{**calc_task.__dict__, "FAIL_TO_PASS": (), "PASS_TO_PASS": ()}), "")


# ------------------------------------------------------------------ grading in the sandbox


@needs_bubblewrap
def test_gold_patch_resolves_and_empty_patch_does_not(calc_task: SWETask, kit) -> None:
    gold = grade(calc_task, kit.GOLD_PATCH)
    assert gold.resolved and gold.error is None
    assert set(gold.statuses.values()) == {"passed"}
    assert gold.run.patch_applied_with == "git apply"
    empty = grade(calc_task, "")
    assert not empty.resolved and empty.run.patch_applied_with == "empty"
    assert empty.fail_to_pass == {"tests/test_calc.py::test_add": "failed"}
    assert set(empty.pass_to_pass.values()) == {"passed"}
    assert "assert -1 == 5" in empty.run.output  # the log is kept, but never parsed
    assert empty.timings["grade_s"] > 0


@needs_bubblewrap
def test_test_patch_is_applied_and_only_selected_tests_run(tmp_path: Path, kit) -> None:
    task, _ = kit.git_task(tmp_path)
    gold = grade(task, kit.GOLD_PATCH)
    assert gold.resolved, gold.run.output
    assert gold.fail_to_pass["tests/test_new.py::test_add_negative"] == "passed"
    empty = grade(task, "")
    assert empty.fail_to_pass == {
        "tests/test_calc.py::test_add": "failed",
        "tests/test_new.py::test_add_negative": "failed",
    }
    selected = run_tests(task, "", ["tests/test_calc.py::test_mul", "tests/test_calc.py::nope"])
    assert selected.statuses == {
        "tests/test_calc.py::test_mul": "passed",
        "tests/test_calc.py::nope": "missing",
    }
    assert "1 passed" in selected.output  # the other tests were deselected
    everything = run_tests(task, kit.GOLD_PATCH, None)
    assert len(everything.statuses) == 6 and set(everything.statuses.values()) == {"passed"}


@needs_bubblewrap
def test_fuzzy_and_unappliable_diffs(calc_task: SWETask, kit) -> None:
    stale_context = kit.GOLD_PATCH.replace(" def mul(a, b):\n", " def mul(x, y):\n")
    assert stale_context != kit.GOLD_PATCH  # git apply refuses it; patch --fuzz takes it
    fuzzy = grade(calc_task, stale_context)
    assert fuzzy.resolved and fuzzy.run.patch_applied_with == "patch --fuzz=3"
    broken = kit.GOLD_PATCH.replace("return a - b", "return a // b")
    result = grade(calc_task, broken)
    assert not result.resolved
    assert "does not apply to the base commit" in (result.error or "")
    assert set(result.statuses.values()) == {"error"}
    unsafe = grade(calc_task, kit.unified_diff("", "[core]\n\tfsmonitor = evil\n", ".git/config"))
    assert not unsafe.resolved and "git's own data" in (unsafe.error or "")


def _latin1_task(tmp_path: Path, kit) -> SWETask:
    """The calc task over a snapshot whose source is latin-1 (a comment with an é next to the
    bug), so any diff of the fix holds a byte that is not UTF-8."""
    library = kit.write_calc_library(tmp_path / "latin-lib")
    source = kit.BUGGY_SOURCE.replace("def add(a, b):", "# caf\xe9\ndef add(a, b):")
    (library / "calc" / "__init__.py").write_bytes(source.encode("latin-1"))
    return kit.snapshot_task(tmp_path, repo_path=str(library), base_patch="")


@needs_bubblewrap
def test_a_diff_is_applied_byte_for_byte(tmp_path: Path, kit) -> None:
    task = _latin1_task(tmp_path, kit)
    buggy = (Path(task.repo_path) / "calc" / "__init__.py").read_bytes()
    text = buggy.decode("latin-1")
    fix = kit.unified_diff(text, text.replace("a - b", "a + b"), "calc/__init__.py")
    fix_bytes = fix.encode("latin-1")
    assert b"# caf\xe9\n" in fix_bytes  # context that is not UTF-8
    result = grade(task, fix_bytes)
    assert result.resolved and result.run.patch_applied_with == "git apply", result.error


def test_a_diff_over_the_size_limit_is_not_applied(calc_task: SWETask, kit) -> None:
    from arenagym.envs.swe.grading import MAX_DIFF_BYTES

    data = "".join(f"+row {index}\n" for index in range(MAX_DIFF_BYTES // 8))
    patch = kit.GOLD_PATCH + f"--- /dev/null\n+++ b/data.txt\n@@ -0,0 +1,{MAX_DIFF_BYTES // 8} @@\n"
    patch += data
    started = time.monotonic()
    result = grade(calc_task, patch, runtime=_no_sandbox)  # refused before any sandbox starts
    assert not result.resolved and time.monotonic() - started < 5
    assert f"over the limit of {MAX_DIFF_BYTES} bytes" in (result.error or "")
    assert result.to_info()["grading_error"] == result.error
    assert set(result.statuses.values()) == {"error"}


def _no_sandbox(_limits: object) -> NoReturn:
    raise AssertionError("no sandbox may start for a diff over the size limit")


def test_the_grading_sandbox_keeps_the_callers_limits_but_its_own_time(
    calc_task: SWETask, kit
) -> None:
    seen: list[Limits] = []

    def record(limits: Limits) -> NoReturn:
        seen.append(limits)
        raise SandboxError("not started")

    limits = Limits(timeout_s=5, memory_mb=300, max_processes=50, max_output_bytes=1000,
                    max_workspace_mb=7, max_workspace_inodes=900)  # fmt: skip
    result = grade(calc_task, kit.GOLD_PATCH, runtime=record, timeout_s=30, limits=limits)
    assert not result.resolved and "not started" in (result.error or "")
    assert seen == [replace(limits, timeout_s=150, max_output_bytes=96 << 20)]


# ------------------------------------------------------------------------- spoofing attempts

_FORCE_PASS_CONFTEST = """\
import os
import pytest

print("tests/test_calc.py::test_add PASSED")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    report.outcome = "passed"
    report.longrepr = None


def pytest_sessionfinish(session, exitstatus):
    print("PASSED " * 20)
    session.exitstatus = 0
    os._exit(0)
"""


def _naive_exit_code(task: SWETask, patch: str, tmp_path: Path) -> int | None:
    """What a naive grader would see: plain ``python -m pytest`` on the patched workspace."""
    base = materialize(task, tmp_path / "naive")
    with make_runtime("bubblewrap") as sandbox:
        sandbox.start(base.path)
        sandbox.write_file("/workspace/.p.diff", patch.encode())
        applied = sandbox.run("git apply .p.diff && rm .p.diff")
        assert applied.exit_code == 0, applied.output
        return sandbox.run("python -m pytest -p no:cacheprovider tests").exit_code


def _spoof(kit, files: dict[str, str], *, old: dict[str, str] | None = None) -> str:
    old = old or {}
    return "".join(kit.unified_diff(old.get(path, ""), text, path) for path, text in files.items())


@needs_bubblewrap
def test_a_conftest_that_forces_passes_and_exit_code_zero_is_removed(
    calc_task: SWETask, kit, tmp_path: Path, grading_runtime: str
) -> None:
    patch = _spoof(
        kit, {"conftest.py": _FORCE_PASS_CONFTEST, "calc/conftest.py": _FORCE_PASS_CONFTEST}
    )
    assert _naive_exit_code(calc_task, patch, tmp_path) == 0  # the spoof fools a naive grader
    result = grade(calc_task, patch, runtime=grading_runtime)
    assert not result.resolved
    assert result.fail_to_pass == {"tests/test_calc.py::test_add": "failed"}
    assert result.run.removed_files == ("calc/conftest.py", "conftest.py")


@needs_bubblewrap
def test_edited_and_deleted_test_files_are_restored(
    calc_task: SWETask, kit, tmp_path: Path, grading_runtime: str
) -> None:
    weakened = kit.CALC_TESTS.replace("assert add(2, 3) == 5", "assert True")
    patch = _spoof(
        kit, {"tests/test_calc.py": weakened}, old={"tests/test_calc.py": kit.CALC_TESTS}
    )
    assert _naive_exit_code(calc_task, patch, tmp_path) == 0
    result = grade(calc_task, patch, runtime=grading_runtime)
    assert not result.resolved and result.run.restored_files == ("tests/test_calc.py",)
    deleted = kit.unified_diff(kit.CALC_TESTS, "", "tests/test_calc.py").replace(
        "+++ b/tests/test_calc.py", "+++ /dev/null"
    )
    gone = grade(calc_task, kit.GOLD_PATCH + deleted, runtime=grading_runtime)
    assert gone.resolved and gone.run.restored_files == ("tests/test_calc.py",)


_PLUGIN = _FORCE_PASS_CONFTEST.replace("    os._exit(0)\n", "")
_PYPROJECT = '[tool.pytest.ini_options]\naddopts = "-q"\n'


@needs_bubblewrap
@pytest.mark.parametrize(
    ("files", "restored", "removed"),
    [
        pytest.param(
            {
                "calc/_plugin.py": _PLUGIN,
                "pyproject.toml": _PYPROJECT.replace('"-q"', '"-q -p calc._plugin"'),
                "sitecustomize.py": "import os  # runs at interpreter start-up\n",
                "usercustomize.py": "import os  # runs at interpreter start-up\n",
                "zz.pth": "import os\n",
            },
            ("pyproject.toml",),
            ("sitecustomize.py", "usercustomize.py", "zz.pth"),
            id="config-plugin-and-startup-files",
        ),
        pytest.param(
            {
                "calc/_entry.py": _PLUGIN,
                "evil-1.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: evil\nVersion: 1.0\n",
                "evil-1.0.dist-info/entry_points.txt": "[pytest11]\nevil = calc._entry\n",
            },
            (),
            ("evil-1.0.dist-info/METADATA", "evil-1.0.dist-info/entry_points.txt"),
            id="plugin-entry-point",
        ),
    ],
)
def test_config_plugins_startup_files_and_entry_points_are_undone(
    calc_task: SWETask,
    kit,
    tmp_path: Path,
    files: dict[str, str],
    restored: tuple[str, ...],
    removed: tuple[str, ...],
    grading_runtime: str,
) -> None:
    patch = _spoof(kit, files, old={"pyproject.toml": _PYPROJECT})
    assert _naive_exit_code(calc_task, patch, tmp_path) == 0  # the spoof fools a naive grader
    result = grade(calc_task, patch, runtime=grading_runtime)
    assert not result.resolved
    assert result.fail_to_pass == {"tests/test_calc.py::test_add": "failed"}
    assert result.run.restored_files == restored
    assert result.run.removed_files == removed


_REWRITE_REPORT_AT_EXIT = """\
import atexit, os, sys

FORGED = (
    '<?xml version="1.0"?><testsuites><testsuite>'
    '<testcase classname="tests.test_calc" name="test_add" file="tests/test_calc.py"/>'
    '</testsuite></testsuites>'
)


def _forge():
    for arg in sys.argv:
        if arg.startswith("--junitxml="):
            with open(arg.split("=", 1)[1], "w") as handle:
                handle.write(FORGED)
    print("tests/test_calc.py::test_add PASSED")


atexit.register(_forge)
"""


@needs_bubblewrap
def test_library_code_that_rewrites_the_report_or_exits_early_fails_closed(
    calc_task: SWETask, kit, grading_runtime: str
) -> None:
    buggy_module = kit.BUGGY_SOURCE
    rewrite = _spoof(
        kit,
        {
            "calc/__init__.py": buggy_module + "\nfrom calc import _forge  # noqa\n",
            "calc/_forge.py": _REWRITE_REPORT_AT_EXIT,
        },
        old={"calc/__init__.py": buggy_module},
    )
    result = grade(calc_task, rewrite, runtime=grading_runtime)
    assert not result.resolved
    assert "not valid XML" in (result.error or "")
    exit_early = _spoof(
        kit,
        {"calc/__init__.py": "import os\nos._exit(0)\n" + buggy_module},
        old={"calc/__init__.py": buggy_module},
    )
    result = grade(calc_task, exit_early, runtime=grading_runtime)
    assert not result.resolved and "no JUnit report" in (result.error or "")


def _forged_report(test_ids: tuple[str, ...]) -> str:
    cases = "".join(
        f'<testcase classname="x" name="n" file="f"><properties><property '
        f'name="arenagym_nodeid" value="{test_id}"/></properties></testcase>'
        for test_id in test_ids
    )
    return f'<?xml version="1.0"?><testsuites><testsuite>{cases}</testsuite></testsuites>'


def _forge_and_exit(kit) -> str:
    """Module code that writes an all-passing report to pytest's --junitxml and exits at once."""
    report = _forged_report(kit.FAIL_TO_PASS + kit.PASS_TO_PASS)
    return (
        f"import os, sys\nFORGED = {report!r}\n"
        "for arg in sys.argv:\n"
        "    if arg.startswith('--junitxml='):\n"
        "        with open(arg.split('=', 1)[1], 'w') as handle:\n"
        "            handle.write(FORGED)\n"
        "os._exit(0)\n"
    )


_FORCE_PASS_HOOK = """\
import pytest


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    report.outcome = "passed"
    report.longrepr = None
"""


def _imported_by_calc(kit, module: str, source: str) -> dict[str, str]:
    return {
        "calc/__init__.py": kit.BUGGY_SOURCE + f"\nimport calc.{module}  # noqa\n",
        f"calc/{module}.py": source,
    }


@needs_bubblewrap
@pytest.mark.parametrize(
    "attack",
    ["pytest-shadow", "stdlib-shadow", "forge-and-exit", "hide-failures", "ignored-egg-info",
     "gitignored-conftest"],
)
def test_shadow_modules_forged_reports_and_ignored_plugins_fail_closed(
    calc_task: SWETask, kit, attack: str, grading_runtime: str
) -> None:
    old = {"calc/__init__.py": kit.BUGGY_SOURCE}
    files = {
        # `python -m pytest` imports pytest (and json...) from the working directory first
        "pytest-shadow": {"pytest.py": _forge_and_exit(kit)},
        "stdlib-shadow": {"json/__init__.py": _forge_and_exit(kit)},
        # library code imported at collection: a forged report, then an exit before pytest's own
        "forge-and-exit": _imported_by_calc(kit, "_forge", _forge_and_exit(kit)),
        # library code that makes the XML writer drop failures
        "hide-failures": _imported_by_calc(
            kit, "_hide", "import _pytest.junitxml as junit\n"
            "junit._NodeReporter.append_failure = lambda self, report: None\n"
        ),
        # the base's .git/info/exclude ignores *.egg-info/ (the agent force-adds it)
        "ignored-egg-info": {
            "calc/_entry.py": _FORCE_PASS_HOOK,
            "evil.egg-info/PKG-INFO": "Metadata-Version: 2.1\nName: evil\nVersion: 1.0\n",
            "evil.egg-info/entry_points.txt": "[pytest11]\nevil = calc._entry\n",
        },
        "gitignored-conftest": {"conftest.py": _FORCE_PASS_HOOK, ".gitignore": "conftest.py\n"},
    }[attack]
    result = grade(calc_task, _spoof(kit, files, old=old), runtime=grading_runtime)
    assert not result.resolved
    assert result.fail_to_pass["tests/test_calc.py::test_add"] in ("failed", "error")
    if attack == "forge-and-exit":
        assert "without the grading plugin's receipt" in (result.error or "")
    if attack == "hide-failures":
        assert "the report was tampered with" in (result.error or "")
    if attack == "ignored-egg-info":
        assert result.run.removed_files == (
            "evil.egg-info/PKG-INFO", "evil.egg-info/entry_points.txt"
        )
    if attack == "gitignored-conftest":
        assert result.run.removed_files == ("conftest.py",)


@needs_bubblewrap
def test_a_patch_that_reaches_git_data_another_way_fails_closed(
    calc_task: SWETask, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Even if a patch dialect slipped past the header check, `patch` writing into .git is caught.
    import arenagym.envs.swe.grading as grading

    monkeypatch.setattr(grading, "unsafe_patch_reason", lambda patch: None)
    into_git = (
        "--- a/.git/info/exclude\n+++ b/.git/info/exclude\n@@ -1 +1,2 @@\n __pycache__/\n"
        "+conftest.py\n"
    )
    result = grade(calc_task, into_git)
    assert not result.resolved
    assert result.error == "the diff changed git's own data (.git), which a patch must not touch"


def test_unconfirmed_passes() -> None:
    phases = {"setup": "passed", "call": "passed", "teardown": "passed"}
    outcomes = {
        "t::ok": phases,
        "t::teardown_error": {**phases, "teardown": "failed"},
        "t::xfail": {"setup": "passed", "call": "skipped-xfail", "teardown": "passed"},
        "t::xfail_not_run": {"setup": "skipped-xfail"},
        "t::skipped": {"setup": "skipped"},
    }
    statuses = {
        "t::ok": "passed", "t::teardown_error": "passed", "t::xfail": "xfailed",
        "t::xfail_not_run": "xfailed", "t::skipped": "passed", "t::unseen": "passed",
        "t::failed": "failed",
    }
    assert unconfirmed_passes(statuses, outcomes) == ["t::teardown_error", "t::skipped", "t::unseen"]
    assert unconfirmed_passes({"t::ok": "passed"}, None) == ["t::ok"]


@needs_bubblewrap
def test_tests_that_hang_are_killed(calc_task: SWETask, kit, grading_runtime: str) -> None:
    hang = _spoof(
        kit,
        {
            "calc/__init__.py": kit.CALC_SOURCE.replace(
                '"""A tiny calculator."""', "while True:\n    pass"
            )
        },
        old={"calc/__init__.py": kit.BUGGY_SOURCE},
    )
    result = grade(calc_task, hang, timeout_s=3, runtime=grading_runtime)
    assert not result.resolved
    assert "past the 3s limit" in (result.error or "")
    assert result.timings["grade_s"] < 30


# --------------------------------------------------------------------- every bundled task


def _bundled_tasks() -> list[SWETask]:
    return load_tasks(BUNDLED, require_tests=True) if BUNDLED.is_file() else []


@pytest.mark.slow
@needs_bubblewrap
@pytest.mark.skipif(not BUNDLED.is_file(), reason="the bundled task file is not built yet")
def test_gold_patch_scores_one_and_empty_patch_zero_on_every_bundled_task() -> None:
    tasks = _bundled_tasks()
    assert len(tasks) >= 50

    def both(task: SWETask) -> tuple[str, bool, bool, str]:
        gold, empty = grade(task, task.patch), grade(task, "")
        return task.instance_id, gold.resolved, empty.resolved, gold.error or gold.run.output[-800:]

    with ThreadPoolExecutor(max_workers=max(2, min(8, os.cpu_count() or 2))) as pool:
        outcomes = list(pool.map(both, tasks))
    wrong = [(i, g, e, why) for i, g, e, why in outcomes if not g or e]
    assert not wrong, wrong


DOCTEST_SOURCE = '''def double(x):
    """Twice ``x``.

    >>> double(4)
    8
    """
    return x + x
'''


@needs_bubblewrap
def test_a_doctest_of_the_library_is_graded_on_the_fixed_module(kit, tmp_path: Path) -> None:
    """``--doctest-modules`` names a library module's doctests ``pkg/mod.py::pkg.func``: that
    module is the code under repair, so grading keeps the fix in it (only test files are put
    back to base)."""
    repo = tmp_path / "doubler"
    (repo / "doubler").mkdir(parents=True)
    (repo / "tests").mkdir()
    (repo / "doubler" / "__init__.py").write_text(DOCTEST_SOURCE)
    (repo / "tests" / "test_doubler.py").write_text(
        "from doubler import double\n\n\ndef test_double():\n    assert double(2) == 4\n"
    )
    (repo / "pyproject.toml").write_text(
        '[tool.pytest.ini_options]\naddopts = "--doctest-modules"\n'
    )
    buggy = DOCTEST_SOURCE.replace("return x + x", "return x * x")
    task = SWETask(
        instance_id="doubler-1", repo="doubler", base_commit="",
        patch=kit.unified_diff(buggy, DOCTEST_SOURCE, "doubler/__init__.py"), test_patch="",
        problem_statement="double(4) is 16", repo_path=str(repo),
        base_patch=kit.unified_diff(DOCTEST_SOURCE, buggy, "doubler/__init__.py"),
        FAIL_TO_PASS=("doubler/__init__.py::doubler.double",),
        PASS_TO_PASS=("tests/test_doubler.py::test_double",),
    )  # fmt: skip
    fixed = grade(task, task.patch)
    assert fixed.resolved and fixed.run.restored_files == ()
    assert not grade(task, "").resolved
