"""Test-based grading that the graded code cannot spoof (the SWE-bench rule, hardened).

:func:`run_tests` starts a **fresh** sandbox at the task's base commit (nothing of the agent's
sandbox is reused: only its diff comes along) and runs one script inside it that:

1. applies the diff (``git apply``, falling back to ``patch --fuzz``; an unappliable diff, or one
   touching ``.git``, absolute or ``..`` paths, is a failed grade with the reason; ``.git`` is
   also fingerprinted before and after, so no patch dialect can slip a change into it). The
   diff travels as bytes, exactly as made (a fix to a latin-1 file applies), and one over
   :data:`~arenagym.envs.swe.workspace.MAX_DIFF_BYTES` fails the grade with that reason;
2. restores every test and test-configuration file the diff touched to the base version, or
   deletes it if the diff added it, git-ignored or not: anything under a ``test``/``tests`` or
   ``__pycache__`` folder, ``test_*.py`` and ``*_test.py``, ``conftest.py``, ``pytest.ini``,
   ``.pytest.ini``, ``pytest.toml``, ``tox.ini``, ``setup.cfg``, ``pyproject.toml``,
   ``sitecustomize.py``, ``usercustomize.py``, ``*.pth``, ``*.pyc``, ``*.dist-info`` and
   ``*.egg-info`` (a plugin entry point), and every file the test patch or a selected test names;
3. applies the task's ``test_patch`` and runs its ``setup_commands``;
4. runs pytest (``python -I -B``: the repository is put on ``sys.path`` only after pytest and its
   built-in plugins are imported, so a ``pytest.py`` or ``_pytest/`` in it shadows nothing;
   ``--rootdir`` at the workspace, ``-p no:cacheprovider``, a plugin that deselects all but the
   requested tests and stamps each report with its node id) as a child in its own session,
   writing its JUnit XML report into a pipe (``/dev/fd/N``) that only pytest was given: nothing
   is left on disk to rewrite after the run, and anything written into the pipe besides pytest's
   own report (an ``atexit`` hook, a leftover process) makes the report unparsable, so the grade
   fails closed. The script that reads the pipe is not dumpable (the tests cannot reach it
   through ``/proc``) and kills the test session's process group as soon as pytest exits.
5. checks the grading plugin's receipt: at pytest's very end the plugin writes a secret it read
   (and closed) before any test code was imported, plus the outcome of every phase it saw, into
   a second pipe. No receipt (library code that wrote a forged report and exited) or a report
   claiming a pass the plugin did not see (a rewritten report) fails the grade.

Statuses come only from that XML, never from printed lines or the exit code: a test that was asked
for but is absent from the XML is ``"missing"``; a pytest that was killed (timeout, memory) or left
an unreadable report makes every test ``"error"``. ``xfail`` counts as passing (``"xfailed"``), as
in SWE-bench. The limit of any in-process runner remains: code imported by the tests runs inside
the pytest process and could, knowing this grader, tamper with pytest's reports before both the
XML writer and the plugin see them; the restored tests, the fresh sandbox, the report path known
only to that process and the receipt make this a deliberate attack on the grader itself, visible
in the diff.

Example (statuses from a JUnit report; grading itself needs a sandbox):
    >>> xml = ('<testsuites><testsuite><testcase classname="tests.test_a" name="test_x" '
    ...        'file="tests/test_a.py"/><testcase classname="tests.test_a" name="test_y" '
    ...        'file="tests/test_a.py"><failure message="boom"/></testcase></testsuite></testsuites>')
    >>> statuses_from_junit(xml, ["tests/test_a.py::test_x", "tests/test_a.py::test_y",
    ...                           "tests/test_a.py::test_z"])
    {'tests/test_a.py::test_x': 'passed', 'tests/test_a.py::test_y': 'failed', 'tests/test_a.py::test_z': 'missing'}
    >>> is_protected_path("pkg/conftest.py"), is_protected_path("pkg/core.py")
    (True, False)
"""

from __future__ import annotations

import json
import re
import secrets
import shlex
import shutil
import tempfile
import time
import xml.etree.ElementTree as ElementTree
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path, PurePosixPath
from typing import Any

from arenagym.envs.swe.runtime.interface import Limits, Runtime, SandboxError
from arenagym.envs.swe.taskenv import task_python_env
from arenagym.envs.swe.tasks import SWETask
from arenagym.envs.swe.workspace import MAX_DIFF_BYTES, materialize

#: Statuses a test can have; the passing ones are "passed" and "xfailed" (as in SWE-bench).
STATUSES: tuple[str, ...] = ("passed", "xfailed", "failed", "error", "skipped", "missing")
PASSING_STATUSES: frozenset[str] = frozenset({"passed", "xfailed"})
#: Worst first: when one node id has several records (e.g. a teardown error), the worst wins.
_SEVERITY = {"error": 5, "failed": 4, "missing": 3, "skipped": 2, "xfailed": 1, "passed": 0}

PROTECTED_NAMES = frozenset(
    {
        "conftest.py",
        "pytest.ini",
        ".pytest.ini",
        "tox.ini",
        "setup.cfg",
        "pyproject.toml",
        "sitecustomize.py",
        "usercustomize.py",
        "pytest.toml",
        ".pytest.toml",
    }
)
#: ``__pycache__``: a force-added byte-code file (an ``unchecked-hash`` ``.pyc`` is used without
#: looking at its source) must not stand in for a restored test or configuration module.
PROTECTED_FOLDERS = frozenset({"test", "tests", "__pycache__"})
#: ``.pth`` files run code at start-up; byte code can stand in for a module's source.
PROTECTED_SUFFIXES = frozenset({".pth", ".pyc", ".pyo"})
_TEST_FILE = re.compile(r"(^test_.*\.py$)|(^.*_test\.py$)")

#: Builds a runtime from limits (tests plug in their own; normally ``make_runtime`` by name).
RuntimeFactory = Callable[[Limits], Runtime]


@dataclass(frozen=True)
class TestRun:
    """The outcome of one test run: per-test statuses from the JUnit XML report only."""

    __test__ = False  # not a pytest test class

    statuses: dict[str, str]
    output: str  # pytest's output, for logs only (never parsed for results)
    duration_s: float
    exit_code: int | None = None
    error: str | None = None  # why the run could not produce results (unappliable diff, kill...)
    patch_applied_with: str | None = None  # "git apply", "patch --fuzz=3", "empty"
    restored_files: tuple[str, ...] = ()  # test files the diff changed, restored to base
    removed_files: tuple[str, ...] = ()  # test files the diff added, deleted


@dataclass(frozen=True)
class GradeResult:
    """A task's grade: ``resolved`` iff every FAIL_TO_PASS and PASS_TO_PASS test passed."""

    resolved: bool
    statuses: dict[str, str]
    fail_to_pass: dict[str, str]
    pass_to_pass: dict[str, str]
    run: TestRun
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def error(self) -> str | None:
        return self.run.error

    def to_info(self) -> dict[str, Any]:
        """A JSON-serialisable summary for an env's ``info``."""
        return {
            "resolved": self.resolved,
            "fail_to_pass": dict(self.fail_to_pass),
            "pass_to_pass": dict(self.pass_to_pass),
            "grading_error": self.run.error,
            "patch_applied_with": self.run.patch_applied_with,
            "restored_files": list(self.run.restored_files),
            "removed_files": list(self.run.removed_files),
            "test_output_tail": self.run.output[-4000:],
            "timings": dict(self.timings),
        }


# --------------------------------------------------------------------------- path rules
def is_protected_path(path: str, extra: Iterable[str] = ()) -> bool:
    """Whether ``path`` (relative to the repository root) is a test or test-configuration file
    that grading restores to base + test_patch, whatever the agent's diff did to it."""
    pure = PurePosixPath(path)
    if path in set(extra):
        return True
    if pure.name in PROTECTED_NAMES or pure.suffix in PROTECTED_SUFFIXES or _TEST_FILE.match(
        pure.name
    ):
        return True
    return any(
        part in PROTECTED_FOLDERS or part.endswith((".dist-info", ".egg-info"))
        for part in pure.parts
    )


def file_of_test(test_id: str) -> str | None:
    """The file a test id's test lives in, which grading restores like a test file; ``None``
    for a doctest of a library module (``--doctest-modules`` names them
    ``pkg/mod.py::pkg.mod.func``): that file is the code under repair, never restored.

    >>> file_of_test("tests/test_a.py::TestA::test_b[1.5]"), file_of_test("README.rst::README.rst")
    ('tests/test_a.py', 'README.rst')
    >>> file_of_test("parse/__init__.py::parse.with_pattern"), file_of_test("src/m.py::m")
    (None, None)
    """
    path, _, rest = test_id.partition("::")
    parts = rest.split("::")
    name = parts[0].split("[")[0]
    pure = PurePosixPath(path)
    doctest = (
        pure.suffix == ".py"
        and len(parts) == 1
        and not name.startswith(("test", "Test"))
        and ("." in name or name in (pure.stem, pure.parent.name))
    )
    return None if doctest else path


_DIFF_PATH = re.compile(r"^(?:diff --git |--- |\+\+\+ |rename (?:from|to) |copy (?:from|to) )(.*)$")


def patch_paths(patch: str) -> list[str]:
    """Every path a unified/git diff names (headers only, ``a/``/``b/`` prefixes dropped)."""
    paths: list[str] = []
    for line in patch.splitlines():
        match = _DIFF_PATH.match(line)
        if not match:
            continue
        text = match.group(1).split("\t")[0].strip()
        candidates = text.split(" ") if line.startswith("diff --git ") else [text]
        for candidate in candidates:
            candidate = candidate.strip('"')
            if candidate in ("/dev/null", ""):
                continue
            if candidate[:2] in ("a/", "b/"):
                candidate = candidate[2:]
            paths.append(candidate)
    return paths


def unsafe_patch_reason(patch: str) -> str | None:
    """Why a diff must not be applied (``.git``, absolute or ``..`` paths), or None."""
    for path in patch_paths(patch):
        parts = PurePosixPath(path).parts
        if path.startswith("/") or ".." in parts:
            return f"the diff names the path {path!r} outside the repository"
        if ".git" in parts:
            return f"the diff touches git's own data ({path!r})"
    return None


# ------------------------------------------------------------------------------ JUnit XML
def _node_id(case: ElementTree.Element) -> str | None:
    for prop in case.iter("property"):
        if prop.get("name") == "arenagym_nodeid" and prop.get("value"):
            return prop.get("value")
    file_name, classname, name = case.get("file"), case.get("classname", ""), case.get("name")
    if not name:
        return None
    if file_name:
        module = file_name[:-3].replace("/", ".") if file_name.endswith(".py") else file_name
        classes = classname[len(module) :].strip(".") if classname.startswith(module) else ""
        return "::".join([file_name, *[c for c in classes.split(".") if c], name])
    parts = classname.split(".")
    return f"{'/'.join(parts)}.py::{name}" if classname else None


def _case_status(case: ElementTree.Element) -> str:
    if case.find("error") is not None:
        return "error"
    if case.find("failure") is not None:
        return "failed"
    skipped = case.find("skipped")
    if skipped is not None:
        return "xfailed" if skipped.get("type") == "pytest.xfail" else "skipped"
    return "passed"


def statuses_from_junit(xml_text: str, test_ids: Sequence[str] | None) -> dict[str, str]:
    """Per-test statuses from a pytest JUnit XML report (``ValueError`` if unreadable).

    With ``test_ids`` the result has exactly those keys (absent ones are ``"missing"``); with
    ``None`` it has every test of the report.
    """
    if "<!DOCTYPE" in xml_text or "<!ENTITY" in xml_text:
        raise ValueError("the report declares a DOCTYPE/ENTITY, which pytest never writes")
    try:
        root = ElementTree.fromstring(xml_text)
    except ElementTree.ParseError as error:
        raise ValueError(f"the JUnit report is not valid XML ({error})") from None
    found: dict[str, str] = {}
    for case in root.iter("testcase"):
        node_id = _node_id(case)
        if node_id is None:
            continue
        status = _case_status(case)
        if node_id not in found or _SEVERITY[status] > _SEVERITY[found[node_id]]:
            found[node_id] = status
    if test_ids is None:
        return found
    return {test_id: found.get(test_id, "missing") for test_id in test_ids}


def unconfirmed_passes(
    statuses: dict[str, str], outcomes: dict[str, dict[str, str]] | None
) -> list[str]:
    """The tests the JUnit report says pass but the grading plugin did not see pass.

    ``outcomes`` maps node ids to the outcome of each phase (``setup``/``call``/``teardown`` ->
    ``passed``, ``failed``, ``skipped``, with ``-xfail`` for expected failures) as the plugin
    recorded them from pytest's own reports; None (no receipt) confirms nothing. A report edited
    by code running inside pytest must then also fool the plugin, not just the XML writer.

    >>> unconfirmed_passes({"t::a": "passed", "t::b": "passed", "t::c": "failed"},
    ...                    {"t::a": {"setup": "passed", "call": "passed", "teardown": "passed"},
    ...                     "t::b": {"setup": "passed", "call": "failed", "teardown": "passed"}})
    ['t::b']
    """
    disputed = []
    for test_id, status in statuses.items():
        if status not in PASSING_STATUSES:
            continue
        phases = (outcomes or {}).get(test_id) or {}
        if any(value.startswith("failed") for value in phases.values()):
            confirmed = False
        elif status == "passed":
            confirmed = phases.get("call") in ("passed", "passed-xfail")
        else:  # xfailed: skipped as an expected failure, in setup (run=False) or call
            confirmed = "skipped-xfail" in phases.values()
        if not confirmed:
            disputed.append(test_id)
    return disputed


# ---------------------------------------------------------------------------- the runner
#: Runs inside the grading sandbox (any Python 3.8+, stdlib only). Reads its payload from the
#: folder given as argv[1], deletes it, applies patches, restores tests, runs pytest, prints
#: MARKER + JSON as its last line.
RUNNER_SOURCE = r"""
import ctypes, json, os, re, shutil, signal, subprocess, sys, tempfile, threading, time
try:
    ctypes.CDLL(None).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE=0: /proc/<this pid> is off limits
except Exception:
    pass
payload_dir = sys.argv[1]
with open(os.path.join(payload_dir, "payload.json")) as handle:
    payload = json.load(handle)
with open(os.path.join(payload_dir, "patch.diff"), "rb") as handle:
    patch = handle.read()
shutil.rmtree(payload_dir, ignore_errors=True)
workspace = os.getcwd()  # the runtime starts commands in its workspace
result = {"restored": [], "removed": [], "applied_with": None, "error": None, "exit_code": None,
          "xml": None, "output": "", "killed": False, "setup_output": "", "outcomes": None}
GIT = ["git", "-c", "core.hooksPath=/dev/null", "-c", "core.fsmonitor=false",
       "-c", "core.autocrlf=false", "-c", "safe.directory=*", "-c", "core.quotePath=false"]
GIT_ENV = dict(os.environ, GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL="/dev/null",
               GIT_TERMINAL_PROMPT="0")
def run(argv, data=None):
    return subprocess.run(argv, input=data, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          env=GIT_ENV, timeout=300)
def finish():
    sys.stdout.write("\n" + payload["marker"] + json.dumps(result) + "\n")
    sys.stdout.flush()
    os._exit(0)
protected_names = set(payload["protected_names"])
protected_folders = set(payload["protected_folders"])
suffixes = tuple(payload["protected_suffixes"])
extra = set(payload["extra_protected"])
test_file = re.compile(r"(^test_.*\.py$)|(^.*_test\.py$)")
def protected(path):
    parts = path.split("/")
    name = parts[-1]
    if path in extra or name in protected_names or name.endswith(suffixes) or test_file.match(name):
        return True
    return any(p in protected_folders or p.endswith((".dist-info", ".egg-info")) for p in parts)
def git_fingerprint():
    found = []
    for folder, dirs, names in os.walk(os.path.join(workspace, ".git")):
        for name in sorted(dirs + names):
            info = os.lstat(os.path.join(folder, name))
            found.append((folder, name, info.st_mode, info.st_size, info.st_mtime_ns, info.st_ino))
    try:
        info = os.lstat(os.path.join(workspace, ".git"))
    except OSError:
        return None
    return (info.st_mode, info.st_ino, found)
git_before = git_fingerprint()
if not patch.strip():
    result["applied_with"] = "empty"
else:
    attempt = run(GIT + ["apply", "--whitespace=nowarn", "--binary", "-"], patch)
    if attempt.returncode == 0:
        result["applied_with"] = "git apply"
    else:
        reason = attempt.stdout.decode("utf-8", "replace")[-1500:]
        dry = run(["patch", "-p1", "--fuzz=3", "--batch", "--forward", "--dry-run", "-s"], patch) \
            if shutil.which("patch") else None
        if dry is not None and dry.returncode == 0 and \
                run(["patch", "-p1", "--fuzz=3", "--batch", "--forward", "-s"], patch).returncode == 0:
            result["applied_with"] = "patch --fuzz=3"
        else:
            result["error"] = "the diff does not apply to the base commit: " + reason.strip()
            finish()
if git_fingerprint() != git_before:
    result["error"] = "the diff changed git's own data (.git), which a patch must not touch"
    finish()
# Ignored files are listed too: a .gitignore in the diff, or the base's info/exclude (which
# ignores *.egg-info/), must not hide an added conftest.py or plugin entry point.
status = run(GIT + ["status", "--porcelain=v1", "-z", "--untracked-files=all", "--no-renames",
                    "--ignored=traditional"])
entries = [e for e in status.stdout.decode("utf-8", "surrogateescape").split("\0") if e]
tracked = set(run(GIT + ["ls-files", "-z"]).stdout.decode("utf-8", "surrogateescape").split("\0"))
restore, remove = [], []
for entry in entries:
    path = entry[3:]
    if not protected(path):
        continue
    (restore if path in tracked else remove).append(path)
for path in sorted(remove, key=len, reverse=True):
    full = os.path.join(workspace, path)
    if os.path.isdir(full) and not os.path.islink(full):
        shutil.rmtree(full, ignore_errors=True)
    elif os.path.lexists(full):
        os.unlink(full)
# a protected folder the diff turned into a file or link: remove it before restoring beneath it
for path in restore:
    parts = path.split("/")
    for depth in range(1, len(parts)):
        prefix = os.path.join(workspace, *parts[:depth])
        if os.path.islink(prefix) or (os.path.lexists(prefix) and not os.path.isdir(prefix)):
            os.unlink(prefix)
if restore:
    checkout = run(GIT + ["checkout", "HEAD", "--"] + restore)
    if checkout.returncode != 0:
        result["error"] = "could not restore test files: " + checkout.stdout.decode()[-1500:]
        finish()
result["restored"], result["removed"] = sorted(restore), sorted(remove)
if payload["test_patch"].strip():
    applied = run(GIT + ["apply", "--whitespace=nowarn", "--binary", "-"],
                  payload["test_patch"].encode())
    if applied.returncode != 0:
        result["error"] = "the task's test_patch does not apply: " + \
            applied.stdout.decode("utf-8", "replace")[-1500:]
        finish()
for command in payload["setup_commands"]:
    setup = subprocess.run(["bash", "-c", command], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=payload["timeout_s"])
    result["setup_output"] += setup.stdout.decode("utf-8", "replace")[-4000:]
    if setup.returncode != 0:
        result["error"] = "setup command %r failed with exit code %d" % (command, setup.returncode)
        finish()
private = tempfile.mkdtemp(prefix="g")
os.chmod(private, 0o700)
# The report goes into a pipe that only pytest holds open: nothing stays on disk to rewrite,
# and anything written after (or besides) pytest's own report makes it unparsable (fail closed).
# A second pipe gets the grading plugin's receipt at pytest's very end (after the report is
# written): a secret that only the plugin holds, plus the outcomes it saw. No receipt (the
# process exited early) or outcomes that disagree with the report fail the grade.
read_end, write_end = os.pipe()
receipt_read, receipt_write = os.pipe()
token_read, token_write = os.pipe()
token = payload["receipt_token"]
os.write(token_write, token.encode())
os.close(token_write)
report = "/dev/fd/%d" % write_end
def drain(fd, chunks):
    total = 0
    while True:
        data = os.read(fd, 1 << 16)
        if not data:
            return
        if total < (64 << 20):
            chunks.append(data)
            total += len(data)
chunks, receipt_chunks = [], []
readers = [threading.Thread(target=drain, args=(read_end, chunks), daemon=True),
           threading.Thread(target=drain, args=(receipt_read, receipt_chunks), daemon=True)]
for reader in readers:
    reader.start()
wanted_file = os.path.join(private, "wanted.json")
with open(wanted_file, "w") as handle:
    json.dump(payload["test_ids"], handle)
# Run isolated (-I: neither the working directory nor PYTHON* variables on sys.path), import
# pytest and every built-in plugin from the system first, and only then put the workspace on
# sys.path: a pytest.py, _pytest/, pluggy/ or json/ in the repository cannot shadow them.
bootstrap = (
    "import importlib, json, os, sys\n"
    "def _arenagym_plugin(token_fd, receipt_fd, wanted_file):\n"
    "    token = os.read(token_fd, 256)\n"
    "    os.close(token_fd)\n"
    "    import pytest\n"
    "    from _pytest import config as _config\n"
    "    for _name in _config.default_plugins:\n"
    "        try:\n"
    "            importlib.import_module('_pytest.' + _name)\n"
    "        except Exception:\n"
    "            pass\n"
    "    wanted = json.load(open(wanted_file))\n"
    "    seen = {}\n"
    "    class ArenagymGrading:\n"
    "        @pytest.hookimpl(trylast=True)\n"
    "        def pytest_collection_modifyitems(self, session, config, items):\n"
    "            if wanted is None:\n"
    "                return\n"
    "            keep = set(wanted)\n"
    "            dropped = [item for item in items if item.nodeid not in keep]\n"
    "            items[:] = [item for item in items if item.nodeid in keep]\n"
    "            if dropped:\n"
    "                config.hook.pytest_deselected(items=dropped)\n"
    "        @pytest.hookimpl(tryfirst=True)\n"
    "        def pytest_runtest_protocol(self, item, nextitem):\n"
    "            item.user_properties.append(('arenagym_nodeid', item.nodeid))\n"
    "        @pytest.hookimpl(tryfirst=True)\n"
    "        def pytest_runtest_logreport(self, report):\n"
    "            phases = seen.setdefault(report.nodeid, {})\n"
    "            xfail = hasattr(report, 'wasxfail')\n"
    "            phases[report.when] = report.outcome + ('-xfail' if xfail else '')\n"
    "        @pytest.hookimpl(trylast=True)\n"
    "        def pytest_unconfigure(self, config):\n"
    "            data = token + b'\\n' + json.dumps(seen).encode()\n"
    "            while data:\n"
    "                data = data[os.write(receipt_fd, data):]\n"
    "            os.close(receipt_fd)\n"
    "    return ArenagymGrading()\n"
    "_plugin = _arenagym_plugin(%d, %d, %r)\n"
    "sys.path.insert(0, %r)\n"
    "import pytest\n"
    "sys.exit(pytest.main(sys.argv[1:], plugins=[_plugin]))\n"
) % (token_read, receipt_write, wanted_file, workspace)
output_path = os.path.join(private, "output.txt")
argv = [sys.executable, "-I", "-B", "-c", bootstrap] + payload["pytest_args"] + [
    "--rootdir=" + workspace, "-p", "no:cacheprovider", "-o", "junit_family=xunit1",
    "-o", "junit_logging=no", "--junitxml=" + report]
files = []
for test_id in payload["test_ids"] or []:
    path = test_id.split("::")[0]
    if path not in files and os.path.exists(os.path.join(workspace, path)):
        files.append(path)
if payload["test_ids"] is not None and not files:
    result["error"] = "none of the selected tests' files exist"
    finish()
argv += files
started = time.monotonic()
with open(output_path, "wb") as output:
    child = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT,
                             start_new_session=True, cwd=workspace, close_fds=True,
                             pass_fds=(write_end, receipt_write, token_read))
    for fd in (write_end, receipt_write, token_read):
        os.close(fd)
    try:
        result["exit_code"] = child.wait(timeout=payload["timeout_s"])
    except subprocess.TimeoutExpired:
        result["killed"] = True
        result["error"] = "the tests ran past the %ss limit and were killed" % payload["timeout_s"]
    try:
        os.killpg(child.pid, signal.SIGKILL)
    except OSError:
        pass
    child.wait()
if result["exit_code"] is not None and result["exit_code"] < 0:
    result["killed"] = True
    result["error"] = "pytest was killed by signal %d" % -result["exit_code"]
for reader in readers:
    reader.join(timeout=5)
receipt = b"".join(receipt_chunks)
if any(reader.is_alive() for reader in readers):
    result["error"] = "a process that outlived pytest kept its report open"
elif not result["killed"] and chunks:
    result["xml"] = b"".join(chunks).decode("utf-8", "replace")
    head, _, outcomes = receipt.partition(b"\n")
    if head != token.encode():
        result["error"] = ("pytest ended without the grading plugin's receipt (it exited early or "
                           "was tampered with), so its report is not trusted")
    else:
        try:
            result["outcomes"] = json.loads(outcomes.decode("utf-8", "replace"))
        except ValueError:
            result["error"] = "the grading plugin's receipt is unreadable"
with open(output_path, "rb") as handle:
    handle.seek(max(0, os.path.getsize(output_path) - 20000))
    result["output"] = handle.read().decode("utf-8", "replace")
result["duration_s"] = time.monotonic() - started
finish()
"""


def pytest_arguments(test_command: str) -> list[str]:
    """The options a task's ``test_command`` adds to pytest (``python -m pytest -x`` → ``-x``).

    Raises ``ValueError`` when the command does not run pytest: grading reads JUnit XML.
    """
    words = shlex.split(test_command)
    for index, word in enumerate(words):
        is_pytest = word in ("pytest", "py.test") or word.endswith("/pytest")
        if is_pytest and (index == 0 or words[index - 1] == "-m"):
            return words[index + 1 :]
    raise ValueError(
        f"test_command {test_command!r} does not run pytest (expected 'python -m pytest [options]'"
        " or 'pytest [options]'); grading reads pytest's JUnit XML report"
    )


def _resolve_runtime(
    runtime: str | RuntimeFactory, runtime_options: dict[str, Any] | None, limits: Limits
) -> Runtime:
    if callable(runtime):
        return runtime(limits)
    from arenagym.envs.swe.runtime import make_runtime  # the runtime family loads lazily

    return make_runtime(runtime, limits=limits, **dict(runtime_options or {}))


def _failed_run(test_ids: Sequence[str] | None, error: str, started: float, **kw: Any) -> TestRun:
    statuses = {test_id: "error" for test_id in test_ids or ()}
    return TestRun(statuses, kw.pop("output", ""), time.monotonic() - started, error=error, **kw)


def run_tests(
    task: SWETask,
    patch: str | bytes,
    test_ids: Sequence[str] | None,
    *,
    runtime: str | RuntimeFactory = "bubblewrap",
    runtime_options: dict[str, Any] | None = None,
    timeout_s: float = 300,
    workspace_dir: Path | None = None,
    limits: Limits | None = None,
) -> TestRun:
    """Run ``test_ids`` (``None``: the whole suite) on the task's base with ``patch`` applied,
    test files restored and the test patch applied, in a fresh sandbox.

    ``workspace_dir`` is an already materialised base of this task (the runtime copies it and
    never writes it); without it one is made and removed afterwards. ``limits`` are the
    sandbox's (default :class:`Limits`) but for its timeout, which ``timeout_s`` sets, and its
    output cap, raised to carry the test report. Never raises for what the patch or the tests
    do: failures become statuses and ``TestRun.error``. ``patch`` is applied byte for byte (a
    ``str`` is UTF-8); one over :data:`MAX_DIFF_BYTES` is not applied and the run fails with
    that reason.
    """
    started = time.monotonic()
    ids = None if test_ids is None else list(dict.fromkeys(test_ids))
    patch_bytes = patch.encode("utf-8", "surrogateescape") if isinstance(patch, str) else patch
    if len(patch_bytes) > MAX_DIFF_BYTES:
        return _failed_run(
            ids,
            f"the diff is {len(patch_bytes)} bytes, over the limit of {MAX_DIFF_BYTES} bytes "
            "(MAX_DIFF_BYTES); it was not applied",
            started,
        )
    reason = unsafe_patch_reason(patch_bytes.decode("utf-8", "surrogateescape"))
    if reason is not None:
        return _failed_run(ids, reason, started)
    try:
        pytest_args = pytest_arguments(task.test_command)
    except ValueError as error:
        return _failed_run(ids, str(error), started)
    own_dir: Path | None = None
    sandbox: Runtime | None = None
    try:
        if workspace_dir is None:
            own_dir = Path(tempfile.mkdtemp(prefix="arenagym-swe-grade-"))
            workspace_dir = materialize(task, own_dir / "base").path
        # The grading sandbox runs the agent's code (its patch, under the tests) with the
        # caller's limits: memory, processes and the workspace's disk budget are inherited, so a
        # budget lowered to protect the host holds here too, and one raised for a repository
        # whose tests need room does not fail every grade. Only the time (the test run's own
        # timeout and slack for set-up) and the output cap (the JUnit report travels on the
        # output) are the grader's.
        base_limits = limits or Limits()
        sandbox_limits = replace(
            base_limits,
            timeout_s=timeout_s + 120,
            max_output_bytes=max(base_limits.max_output_bytes, 96 << 20),
        )
        python_env = task_python_env(task)  # built now if missing (cached after once)
        sandbox = _resolve_runtime(runtime, runtime_options, sandbox_limits)
        sandbox.start(workspace_dir, image=task.image, **_env_option(python_env))
        marker = f"@@arenagym-grade-{secrets.token_hex(16)}@@"
        payload_dir = f".arenagym-grading-{secrets.token_hex(8)}"
        extra = {*patch_paths(task.test_patch), *(file_of_test(i) for i in ids or ())} - {None}
        payload = {
            "marker": marker,
            "receipt_token": secrets.token_hex(16),
            "test_patch": task.test_patch,
            "setup_commands": list(task.setup_commands),
            "test_ids": ids,
            "pytest_args": pytest_args,
            "timeout_s": timeout_s,
            "protected_names": sorted(PROTECTED_NAMES),
            "protected_folders": sorted(PROTECTED_FOLDERS),
            "protected_suffixes": sorted(PROTECTED_SUFFIXES),
            "extra_protected": sorted(extra),
        }
        sandbox.write_file(f"{payload_dir}/payload.json", json.dumps(payload).encode())
        sandbox.write_file(f"{payload_dir}/patch.diff", patch_bytes)
        sandbox.write_file(f"{payload_dir}/runner.py", RUNNER_SOURCE.encode())
        # The runner is loaded, then deletes its own folder before anything of the diff runs.
        command = (
            f"exec python -I -B -c \"exec(open('{payload_dir}/runner.py').read())\" {payload_dir}"
        )
        result = sandbox.run(command, timeout_s=timeout_s + 120)
    except SandboxError as error:
        return _failed_run(ids, f"the sandbox failed: {error}", started)
    except Exception as error:  # a materialisation fault: reported, never raised
        return _failed_run(ids, f"{type(error).__name__}: {error}", started)
    finally:
        if sandbox is not None:
            sandbox.stop()
        if own_dir is not None:
            shutil.rmtree(own_dir, ignore_errors=True)
    position = result.output.rfind(marker)
    if position < 0:
        why = "killed" if result.timed_out or result.exit_code is None else "ended"
        return _failed_run(
            ids,
            f"the grading run {why} without a result (exit code {result.exit_code}, "
            f"{result.killed_reason or 'no kill'})",
            started,
            output=result.output[-20000:],
        )
    report = json.loads(result.output[position + len(marker) :].splitlines()[0])
    common = {
        "exit_code": report["exit_code"],
        "patch_applied_with": report["applied_with"],
        "restored_files": tuple(report["restored"]),
        "removed_files": tuple(report["removed"]),
    }
    output = report["setup_output"] + report["output"]
    if report["error"] is not None or report["xml"] is None:
        error = report["error"] or "pytest wrote no JUnit report (it crashed or was cut short)"
        return _failed_run(ids, error, started, output=output, **common)
    try:
        statuses = statuses_from_junit(report["xml"], ids)
    except ValueError as error:
        return _failed_run(ids, str(error), started, output=output, **common)
    disputed = unconfirmed_passes(statuses, report.get("outcomes"))
    if disputed:
        error = (
            f"the JUnit report claims {len(disputed)} test(s) passed that pytest did not see "
            f"pass (e.g. {disputed[0]}): the report was tampered with"
        )
        return _failed_run(ids, error, started, output=output, **common)
    return TestRun(statuses, output, time.monotonic() - started, **common)


def _env_option(python_env: Path | None) -> dict[str, Any]:
    """``start``'s ``python_env`` argument when there is one (runtimes that predate it, such
    as test doubles, are called as before when there is none)."""
    return {} if python_env is None else {"python_env": python_env}


def grade(task: SWETask, patch: str | bytes, **kwargs: Any) -> GradeResult:
    """Grade ``patch`` on ``task``: resolved iff every FAIL_TO_PASS and PASS_TO_PASS test is
    ``passed`` (or ``xfailed``). Keyword arguments go to :func:`run_tests`."""
    if not task.FAIL_TO_PASS and not task.PASS_TO_PASS:
        raise ValueError(f"task {task.instance_id} lists no FAIL_TO_PASS or PASS_TO_PASS tests")
    started = time.monotonic()
    return _graded(task, run_tests(task, patch, task.selected_tests, **kwargs), started)


def failed_grade(task: SWETask, reason: str) -> GradeResult:
    """The grade of a task whose tests were not run (e.g. no diff could be made of the agent's
    workspace): not resolved, every selected test ``"error"``, ``reason`` as the error."""
    started = time.monotonic()
    return _graded(task, _failed_run(task.selected_tests, reason, started), started)


def _graded(task: SWETask, run: TestRun, started: float) -> GradeResult:
    """A run's grade: resolved iff it has no error and every selected test passes."""
    fail_to_pass = {test_id: run.statuses.get(test_id, "missing") for test_id in task.FAIL_TO_PASS}
    pass_to_pass = {test_id: run.statuses.get(test_id, "missing") for test_id in task.PASS_TO_PASS}
    resolved = run.error is None and all(
        status in PASSING_STATUSES for status in (*fail_to_pass.values(), *pass_to_pass.values())
    )
    timings = {"grade_s": time.monotonic() - started, "tests_s": run.duration_s}
    return GradeResult(resolved, dict(run.statuses), fail_to_pass, pass_to_pass, run, timings)
