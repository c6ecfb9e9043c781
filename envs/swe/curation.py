"""The curation pipeline: validate candidate tasks in the sandbox, and synthesize new ones.

``validate`` takes candidate tasks (a repository, an optional ``base_patch``, the gold ``patch``
and an optional ``test_patch``) and, for each, runs the whole test suite in a fresh sandbox
before the gold patch (the base) and after it, ``runs`` times each
(:func:`arenagym.envs.swe.grading.run_tests`). A test that fails in every base run and passes in
every gold run is ``FAIL_TO_PASS``; one that passes in every run is ``PASS_TO_PASS``; a test whose
status changes between runs of the same side is flaky and never used. Tasks with no
``FAIL_TO_PASS`` are dropped, with the reason. The base runs first: a candidate whose base passes
every test is dropped after one sandbox run.

Results are cached on disk by a content hash of (repository content, ``base_patch``, ``patch``,
``test_patch``, test command, setup commands, runtime, number of runs), so re-running over a
grown candidate file only does the new work. Candidates run in parallel in a thread pool, each
run in its own sandbox, with a progress bar; results are reported in candidate order, so the
output does not depend on scheduling.

``synthesize`` is SWE-smith's recipe on a repository given by path (a directory snapshot or a
git repository, read at ``HEAD``): mutate (:mod:`arenagym.envs.swe.synthesis`) → candidates →
validate → problem statements from the failing tests → tasks JSONL.

The bundled tasks (``envs/swe/data/tasks.jsonl``, 12 per library) are made, deterministically
(the same seed picks the same mutations; the sandbox decides which survive), from the repository
root by::

    python -c "from arenagym.envs.swe.curation import bundle; bundle(
        [f'envs/swe/data/repos/{name}' for name in
         ('datekit', 'rangeset', 'statkit', 'textkit', 'versionspec')],
        'envs/swe/data/tasks.jsonl', seed=0, max_tasks=12, per_function=3, runs=2,
        workers=2, timeout_s=20, cache_dir='/tmp/swe-cache')"

which is ``arenagym swe synthesize envs/swe/data/repos/<name> -o ... --seed 0 --max-tasks 12
--per-function 3 --timeout 20`` for each library, concatenated, with ``repo_path`` written
relative to the JSONL's folder (``repos/<name>``).

Example (a fake runner standing in for the sandbox):
    >>> from arenagym.envs.swe.grading import TestRun
    >>> from arenagym.envs.swe.tasks import SWETask
    >>> def runner(task, patch, test_ids, **kw):
    ...     fixed = patch == task.patch
    ...     return TestRun({"t.py::a": "passed", "t.py::b": "passed" if fixed else "failed"},
    ...                    "", 0.0)
    >>> import pathlib, tempfile
    >>> repo = pathlib.Path(tempfile.mkdtemp()); _ = (repo / "t.py").write_text("")
    >>> task = SWETask("demo-1", "demo", "", "fix", "", "p", repo_path=str(repo))
    >>> report = validate_tasks([task], runs=2, workers=1, runner=runner, show_progress=False)
    >>> [(t.FAIL_TO_PASS, t.PASS_TO_PASS) for t in report.kept_tasks()]
    [(('t.py::b',), ('t.py::a',))]
    >>> report.sandbox_runs
    4
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from arenagym.envs.swe.grading import PASSING_STATUSES, TestRun, run_tests
from arenagym.envs.swe.synthesis import (
    OPERATORS,
    Mutation,
    SynthesisError,
    describe_failure,
    enumerate_mutations,
    failure_section,
    select_mutations,
    write_problem_statement,
)
from arenagym.envs.swe.taskenv import task_env_spec
from arenagym.envs.swe.tasks import SWETask, dump_tasks
from arenagym.envs.swe.workspace import (
    SKIPPED_NAMES,
    WorkspaceError,
    export_commit,
    is_git_repository,
    materialize,
    run_git,
)

#: Bump when the meaning of cached results changes.
CACHE_VERSION = 1
#: Characters of the first base run's pytest output kept (problem statements read it).
OUTPUT_KEPT = 200_000
#: The signature of :func:`arenagym.envs.swe.grading.run_tests` (tests plug in fakes).
Runner = Callable[..., TestRun]


class CurationError(ValueError):
    """Bad input to the pipeline (a missing repository, no source files, bad options)."""


# ------------------------------------------------------------------------------ hashing
_digest_lock = threading.Lock()
_digests: dict[tuple[str, str], str] = {}


def repository_digest(path: str | Path, base_commit: str = "") -> str:
    """A content hash of the task's source: a git repository's tree at ``base_commit``, or every
    file of a directory snapshot (paths, modes and bytes; caches and ``.git`` skipped)."""
    root = Path(path)
    key = (str(root.absolute()), base_commit)
    with _digest_lock:
        if key in _digests:
            return _digests[key]
    if is_git_repository(root) and base_commit:
        tree = run_git(["rev-parse", f"{base_commit}^{{tree}}"], cwd=root).decode().strip()
        digest = f"git-tree:{tree}"
    else:
        hasher = hashlib.sha256()
        for file in sorted(_snapshot_files(root)):
            relative = file.relative_to(root).as_posix()
            hasher.update(relative.encode() + b"\0")
            if file.is_symlink():
                hasher.update(b"link:" + os.readlink(file).encode())
            else:
                hasher.update(oct(file.stat().st_mode & 0o111).encode() + file.read_bytes())
            hasher.update(b"\0")
        digest = f"files:{hasher.hexdigest()}"
    with _digest_lock:
        _digests[key] = digest
    return digest


def _snapshot_files(root: Path) -> list[Path]:
    found = []
    for folder, names, files in os.walk(root):
        names[:] = [n for n in names if n not in SKIPPED_NAMES]
        found += [Path(folder, name) for name in files if not name.endswith((".pyc", ".pyo"))]
    return found


def cache_key(task: SWETask, *, runtime: str, runs: int) -> str:
    """The content hash a validation result is cached under."""
    if task.repo_path is None:
        raise CurationError(f"task {task.instance_id} has no repo_path")
    material = {
        "version": CACHE_VERSION,
        "repo": repository_digest(task.repo_path, task.base_commit),
        "base_patch": task.base_patch,
        "patch": task.patch,
        "test_patch": task.test_patch,
        "test_command": task.test_command,
        "setup_commands": list(task.setup_commands),
        "runtime": runtime,
        "runs": runs,
    }
    spec = task_env_spec(task)
    if spec is not None:  # another environment, another result
        material["environment"] = spec.digest()
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()


class ValidationCache:
    """Validation results as one JSON file per content hash under a folder."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)

    def _path(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        try:
            return json.loads(self._path(key).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return None

    def put(self, key: str, value: dict[str, Any]) -> None:
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        temporary = target.with_name(f"{target.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        temporary.write_text(json.dumps(value), encoding="utf-8")
        temporary.replace(target)


# --------------------------------------------------------------------------- validation
@dataclass(frozen=True)
class ValidationResult:
    """What validating one candidate found (and why it was dropped, if it was)."""

    instance_id: str
    kept: bool
    reason: str | None  # why it was dropped; None when kept
    fail_to_pass: tuple[str, ...] = ()
    pass_to_pass: tuple[str, ...] = ()
    flaky: tuple[str, ...] = ()
    fail_after_gold: tuple[str, ...] = ()  # failing after the gold patch (neither F2P nor P2P)
    base_commit: str = ""
    base_output: str = ""  # the first base run's pytest output (problem statements read it)
    sandbox_runs: int = 0  # sandbox runs done now (0 when the result came from the cache)
    cached: bool = False
    duration_s: float = 0.0

    def to_json(self) -> dict[str, Any]:
        row = dataclasses.asdict(self)
        for name in ("fail_to_pass", "pass_to_pass", "flaky", "fail_after_gold"):
            row[name] = list(row[name])
        return row

    @classmethod
    def from_json(cls, row: dict[str, Any]) -> ValidationResult:
        values = dict(row)
        for name in ("fail_to_pass", "pass_to_pass", "flaky", "fail_after_gold"):
            values[name] = tuple(values.get(name, ()))
        return cls(**values)


def classify(
    base_runs: Sequence[dict[str, str]], gold_runs: Sequence[dict[str, str]]
) -> tuple[list[str], list[str], list[str], list[str]]:
    """``(FAIL_TO_PASS, PASS_TO_PASS, flaky, fail_after_gold)`` from per-run statuses.

    A test missing from a run counts as ``"missing"`` (not passing). Skipped tests are in no
    list. Sorted by node id.

    >>> classify([{"a": "failed", "b": "passed"}, {"a": "failed", "b": "failed"}],
    ...          [{"a": "passed", "b": "passed"}, {"a": "passed", "b": "passed"}])
    (['a'], [], ['b'], [])
    """
    names = sorted({name for run in (*base_runs, *gold_runs) for name in run})
    fail_to_pass, pass_to_pass, flaky, fail_after = [], [], [], []
    for name in names:
        base = [run.get(name, "missing") for run in base_runs]
        gold = [run.get(name, "missing") for run in gold_runs]
        base_pass = {status in PASSING_STATUSES for status in base}
        gold_pass = {status in PASSING_STATUSES for status in gold}
        if len(base_pass) > 1 or len(gold_pass) > 1:
            flaky.append(name)
        elif "skipped" in base + gold:
            continue
        elif gold_pass == {True}:
            (pass_to_pass if base_pass == {True} else fail_to_pass).append(name)
        else:
            fail_after.append(name)
    return fail_to_pass, pass_to_pass, flaky, fail_after


#: The test id pytest's JUnit report gives an INTERNALERROR: the session stopped there, so the
#: tests after it never ran (they would look like failures, e.g. false FAIL_TO_PASS).
INTERNAL_ERROR_ID = "pytest.py::internal"
_CRASHED = "pytest crashed (INTERNALERROR) in {run}: the tests after the crash never ran"


def validate_task(
    task: SWETask,
    *,
    runs: int = 2,
    runtime: str = "bubblewrap",
    runtime_options: dict[str, Any] | None = None,
    timeout_s: float = 300,
    runner: Runner = run_tests,
) -> ValidationResult:
    """Run ``task``'s whole suite before and after its gold patch ``runs`` times each."""
    started = time.monotonic()
    done = 0

    def dropped(reason: str, **extra: Any) -> ValidationResult:
        return ValidationResult(
            task.instance_id, False, reason, sandbox_runs=done,
            duration_s=time.monotonic() - started, **extra,
        )  # fmt: skip

    folder = Path(tempfile.mkdtemp(prefix="arenagym-swe-validate-"))
    try:
        try:
            workspace = materialize(task, folder / "base")
        except WorkspaceError as error:
            return dropped(f"base could not be made: {error}")
        common: dict[str, Any] = {
            "runtime": runtime,
            "runtime_options": runtime_options,
            "timeout_s": timeout_s,
            "workspace_dir": workspace.path,
        }
        base_runs: list[dict[str, str]] = []
        gold_runs: list[dict[str, str]] = []
        first_output = ""
        for index in range(runs):
            base = runner(task, "", None, **common)
            done += 1
            if base.error is not None:
                return dropped(f"base run failed: {base.error}")
            if INTERNAL_ERROR_ID in base.statuses:
                return dropped(_CRASHED.format(run="a base run"))
            if index == 0:
                first_output = base.output[-OUTPUT_KEPT:]
                if all(status in PASSING_STATUSES or status == "skipped"
                       for status in base.statuses.values()):  # fmt: skip
                    return dropped("no FAIL_TO_PASS: every test passes before the gold patch")
            base_runs.append(dict(base.statuses))
            gold = runner(task, task.patch, None, **common)
            done += 1
            if gold.error is not None:
                return dropped(f"gold run failed: {gold.error}")
            if INTERNAL_ERROR_ID in gold.statuses:
                return dropped(_CRASHED.format(run="a gold run"))
            gold_runs.append(dict(gold.statuses))
        fail_to_pass, pass_to_pass, flaky, fail_after = classify(base_runs, gold_runs)
        details: dict[str, Any] = {
            "flaky": tuple(flaky),
            "fail_after_gold": tuple(fail_after),
            "base_commit": task.base_commit or workspace.commit,
            "base_output": first_output,
        }
        if not fail_to_pass:
            reason = (
                "flaky: every test that fails before the gold patch is flaky"
                if flaky
                else "no FAIL_TO_PASS: no test fails before and passes after the gold patch"
            )
            return dropped(reason, **details)
        return ValidationResult(
            task.instance_id,
            True,
            None,
            tuple(fail_to_pass),
            tuple(pass_to_pass),
            sandbox_runs=done,
            duration_s=time.monotonic() - started,
            **details,
        )
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@dataclass
class ValidationReport:
    """Every candidate's result, in candidate order, and what the run cost."""

    tasks: list[SWETask]
    results: list[ValidationResult]
    elapsed_s: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def sandbox_runs(self) -> int:
        return sum(result.sandbox_runs for result in self.results)

    @property
    def cache_hits(self) -> int:
        return sum(result.cached for result in self.results)

    def kept_tasks(self) -> list[SWETask]:
        """The validated tasks: F2P/P2P and (for snapshots) the base commit filled in."""
        kept = []
        for task, result in zip(self.tasks, self.results, strict=True):
            if result.kept:
                kept.append(
                    dataclasses.replace(
                        task,
                        FAIL_TO_PASS=result.fail_to_pass,
                        PASS_TO_PASS=result.pass_to_pass,
                        base_commit=result.base_commit or task.base_commit,
                    )
                )
        return kept

    def dropped_reasons(self) -> Counter[str]:
        """Drop reasons, grouped by their first clause."""
        return Counter(
            (result.reason or "").split(":")[0] for result in self.results if not result.kept
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "candidates": len(self.results),
            "kept": sum(result.kept for result in self.results),
            "dropped": dict(sorted(self.dropped_reasons().items())),
            "sandbox_runs": self.sandbox_runs,
            "cache_hits": self.cache_hits,
            "elapsed_s": round(self.elapsed_s, 3),
            **self.extra,
            "results": [
                {k: v for k, v in result.to_json().items() if k != "base_output"}
                for result in self.results
            ],
        }

    def print_summary(self, console: Console, title: str = "Validation") -> None:
        table = Table(title=title, show_header=False)
        table.add_row("candidates", str(len(self.results)))
        table.add_row("kept", str(sum(result.kept for result in self.results)))
        for reason, count in sorted(self.dropped_reasons().items()):
            table.add_row(f"dropped: {reason}", str(count))
        table.add_row("sandbox runs", str(self.sandbox_runs))
        table.add_row("cache hits", str(self.cache_hits))
        table.add_row("time", f"{self.elapsed_s:.1f} s")
        for key, value in self.extra.items():
            if isinstance(value, int | float | str):
                table.add_row(key.replace("_", " "), str(value))
        console.print(table)


def validate_tasks(
    tasks: Sequence[SWETask],
    *,
    runs: int = 2,
    workers: int = 2,
    cache_dir: str | Path | None = None,
    runtime: str = "bubblewrap",
    runtime_options: dict[str, Any] | None = None,
    timeout_s: float = 300,
    runner: Runner = run_tests,
    show_progress: bool = True,
    console: Console | None = None,
) -> ValidationReport:
    """Validate every task (see the module docstring); results in the order of ``tasks``."""
    if runs < 1:
        raise CurationError(f"runs must be at least 1, not {runs}")
    if workers < 1:
        raise CurationError(f"workers must be at least 1, not {workers}")
    started = time.monotonic()
    cache = ValidationCache(cache_dir) if cache_dir is not None else None
    results: list[ValidationResult | None] = [None] * len(tasks)
    pending: list[tuple[int, str | None]] = []
    for index, task in enumerate(tasks):
        key = cache_key(task, runtime=runtime, runs=runs) if cache is not None else None
        hit = cache.get(key) if cache is not None and key is not None else None
        if hit is not None:
            result = ValidationResult.from_json(hit)
            results[index] = dataclasses.replace(
                result, instance_id=task.instance_id, cached=True, sandbox_runs=0, duration_s=0.0
            )
        else:
            pending.append((index, key))
    progress = Progress(
        TextColumn("[bold]validating"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
        console=console or Console(stderr=True),
        disable=not show_progress,
        transient=False,
    )
    kept = sum(1 for result in results if result is not None and result.kept)
    with progress:
        bar = progress.add_task(
            "validate", total=len(tasks), completed=len(tasks) - len(pending),
            status=f"kept {kept}",
        )  # fmt: skip
        with ThreadPoolExecutor(max_workers=workers) as pool:
            futures = {
                pool.submit(
                    validate_task,
                    tasks[index],
                    runs=runs,
                    runtime=runtime,
                    runtime_options=runtime_options,
                    timeout_s=timeout_s,
                    runner=runner,
                ): (index, key)
                for index, key in pending
            }
            for future in as_completed(futures):
                index, key = futures[future]
                result = future.result()
                results[index] = result
                if cache is not None and key is not None and not _transient(result):
                    cache.put(key, result.to_json())
                kept += result.kept
                progress.update(bar, advance=1, status=f"kept {kept}")
    final = [result for result in results if result is not None]
    return ValidationReport(list(tasks), final, time.monotonic() - started)


def _transient(result: ValidationResult) -> bool:
    """Sandbox faults are not cached (a re-run may succeed); test outcomes are."""
    return bool(result.reason and "the sandbox failed" in result.reason)


# --------------------------------------------------------------------------- synthesis
@dataclass
class SynthesisReport:
    """The synthesized tasks plus the validation report and per-operator counts."""

    tasks: list[SWETask]
    validation: ValidationReport
    mutations: dict[str, Mutation]  # instance_id -> mutation
    enumerated: int

    def per_operator(self) -> dict[str, dict[str, int]]:
        counts: dict[str, dict[str, int]] = {}
        kept_ids = {task.instance_id for task in self.tasks}
        for instance_id, mutation in self.mutations.items():
            row = counts.setdefault(mutation.operator, {"candidates": 0, "kept": 0})
            row["candidates"] += 1
            row["kept"] += instance_id in kept_ids
        return dict(sorted(counts.items()))

    def to_json(self) -> dict[str, Any]:
        report = self.validation.to_json()
        report["mutations_enumerated"] = self.enumerated
        report["tasks_written"] = len(self.tasks)
        report["per_operator"] = self.per_operator()
        for row in report["results"]:
            mutation = self.mutations.get(row["instance_id"])
            if mutation is not None:
                row.update(
                    operator=mutation.operator,
                    path=mutation.path,
                    function=mutation.function,
                    line=mutation.line,
                    mutation=mutation.description,
                )
        return report


def package_names(root: Path) -> set[str]:
    """Top-level importable names of a repository (packages and modules at the root/src)."""
    names: set[str] = set()
    for base in (root, root / "src"):
        if not base.is_dir():
            continue
        for entry in base.iterdir():
            if entry.is_dir() and (entry / "__init__.py").is_file():
                names.add(entry.name)
            elif entry.suffix == ".py" and entry.stem not in ("setup", "conftest"):
                names.add(entry.stem)
    return names


def synthesize(
    repo: str | Path,
    *,
    seed: int = 0,
    max_tasks: int = 20,
    per_function: int = 2,
    max_candidates: int | None = None,
    operators: Sequence[str] = OPERATORS,
    name: str | None = None,
    test_command: str = "python -m pytest",
    runs: int = 2,
    workers: int = 2,
    cache_dir: str | Path | None = None,
    runtime: str = "bubblewrap",
    runtime_options: dict[str, Any] | None = None,
    timeout_s: float = 60,
    runner: Runner = run_tests,
    show_progress: bool = True,
    console: Console | None = None,
    environment: str | None = None,
) -> SynthesisReport:
    """Inject bugs into ``repo`` and return up to ``max_tasks`` validated tasks (with problem
    statements), the first in the seeded, operator-round-robin candidate order.

    ``environment`` (an environment spec file, e.g. an imported repository's provenance file)
    is named by every task: they are validated, and later played, with it."""
    root = Path(repo)
    if not root.is_dir():
        raise CurationError(f"repository {root} is not a directory")
    if max_tasks < 1 or per_function < 1:
        raise CurationError("--max-tasks and --per-function must be at least 1")
    display = name or root.absolute().name
    source_dir = root
    base_commit = ""
    scratch: Path | None = None
    try:
        if is_git_repository(root):
            base_commit = run_git(["rev-parse", "HEAD"], cwd=root).decode().strip()
            scratch = Path(tempfile.mkdtemp(prefix="arenagym-swe-synth-"))
            export_commit(root, base_commit, scratch)
            source_dir = scratch
        try:
            mutations = enumerate_mutations(source_dir, operators=operators)
        except SynthesisError as error:
            raise CurationError(str(error)) from None
        limit = max_candidates if max_candidates is not None else None
        ordered = select_mutations(mutations, seed=seed, per_function=per_function, limit=limit)
        candidates: list[tuple[SWETask, Mutation]] = [
            (
                SWETask(
                    instance_id=f"{display}-{mutation.key}",
                    repo=display,
                    base_commit=base_commit,
                    patch=mutation.fix_patch,
                    test_patch="",
                    problem_statement="(to be written from the failing tests)",
                    repo_path=str(root.absolute()),
                    base_patch=mutation.bug_patch,
                    test_command=test_command,
                    environment=environment,
                ),
                mutation,
            )
            for mutation in ordered
        ]
        packages = package_names(source_dir)
        console = console or Console(stderr=True)
        all_tasks: list[SWETask] = []
        all_results: list[ValidationResult] = []
        started = time.monotonic()
        position = 0
        while position < len(candidates):
            kept_so_far = len(
                {
                    (mutation.path, mutation.function, result.fail_to_pass)
                    for (_, mutation), result in zip(candidates, all_results, strict=False)
                    if result.kept
                }
            )  # distinct behaviours kept so far
            if kept_so_far >= max_tasks:
                break
            size = max(2 * workers, (max_tasks - kept_so_far) * 5 // 4 + workers)
            batch = candidates[position : position + size]
            position += len(batch)
            report = validate_tasks(
                [task for task, _ in batch],
                runs=runs,
                workers=workers,
                cache_dir=cache_dir,
                runtime=runtime,
                runtime_options=runtime_options,
                timeout_s=timeout_s,
                runner=runner,
                show_progress=show_progress,
                console=console,
            )
            all_tasks += report.tasks
            all_results += report.results
        validation = ValidationReport(all_tasks, all_results, time.monotonic() - started)
        by_id = {task.instance_id: mutation for task, mutation in candidates[:position]}
        results_by_id = {result.instance_id: result for result in all_results}
        written: list[SWETask] = []
        behaviours: set[tuple[str, str, tuple[str, ...]]] = set()
        for task in validation.kept_tasks():
            if len(written) == max_tasks:
                break
            result = results_by_id[task.instance_id]
            mutation = by_id[task.instance_id]
            behaviour = (mutation.path, mutation.function, result.fail_to_pass)
            if behaviour in behaviours:
                continue  # another mutation of this function already breaks exactly these tests
            behaviours.add(behaviour)
            shown = result.fail_to_pass[:3]
            output = result.base_output
            if any(failure_section(output, test_id) is None for test_id in shown):
                output = failure_report(
                    task, shown, cache_dir=cache_dir, runtime=runtime,
                    runtime_options=runtime_options, timeout_s=timeout_s, runner=runner,
                )  # fmt: skip
            failures = [
                failure
                for test_id in shown
                if (failure := describe_failure(source_dir, test_id, output, packages))
            ]
            statement = write_problem_statement(
                by_id[task.instance_id], failures, seed=seed, package=sorted(packages)[0]
                if packages else display,
            )  # fmt: skip
            written.append(dataclasses.replace(task, problem_statement=statement))
        return SynthesisReport(written, validation, by_id, len(mutations))
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)


def failure_report(
    task: SWETask,
    test_ids: Sequence[str],
    *,
    cache_dir: str | Path | None = None,
    runtime: str = "bubblewrap",
    runtime_options: dict[str, Any] | None = None,
    timeout_s: float = 300,
    runner: Runner = run_tests,
) -> str:
    """pytest's report of ``test_ids`` alone on the task's base (the bug in, no fix): what a
    problem statement is written from when the whole-suite run's output (the grader keeps its
    last 20,000 characters) lost their failure sections. Cached beside the validation results;
    ``""`` when the run fails."""
    cache = ValidationCache(cache_dir) if cache_dir is not None else None
    key = None
    if cache is not None:
        material = f"{cache_key(task, runtime=runtime, runs=1)}\0report\0" + "\0".join(test_ids)
        key = hashlib.sha256(material.encode()).hexdigest()
        hit = cache.get(key)
        if hit is not None:
            return str(hit.get("output", ""))
    run = runner(
        task, "", list(test_ids), runtime=runtime, runtime_options=runtime_options,
        timeout_s=timeout_s,
    )  # fmt: skip
    if run.error is not None:
        return ""
    if cache is not None and key is not None:
        cache.put(key, {"output": run.output})
    return run.output


def write_report(report: dict[str, Any], path: str | Path) -> None:
    """Write a JSON report atomically."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(target.name + ".tmp")
    temporary.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    temporary.replace(target)


def bundle(
    repos: Sequence[str | Path], output: str | Path, **options: Any
) -> tuple[list[SWETask], dict[str, Any]]:
    """Synthesize from several repositories into one JSONL file (``repo_path`` written relative
    to the file's folder when the repositories are below it); returns the tasks and a report."""
    tasks: list[SWETask] = []
    reports: dict[str, Any] = {}
    for repo in repos:
        result = synthesize(repo, **options)
        tasks += result.tasks
        reports[Path(repo).name] = result.to_json()
    dump_tasks(tasks, output)
    return tasks, reports
