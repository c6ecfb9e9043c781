"""``arenagym swe validate`` and ``arenagym swe synthesize``: what they do, given their parsed
arguments.

The parsers, the help and the error format are :mod:`arenagym.cli`'s (the one command module)::

    arenagym swe validate candidates.jsonl -o validated.jsonl --runs 3 --workers 4
    arenagym swe validate candidates.jsonl -o validated.jsonl --cache .swe-cache  # incremental
    arenagym swe synthesize path/to/repo -o tasks.jsonl --max-tasks 20 --seed 0
    arenagym swe synthesize path/to/repo -o tasks.jsonl --operators flip_comparison,off_by_one
    arenagym swe synthesize build/swe-real/toolz-1.0.0 -o toolz.jsonl  # names toolz-1.0.0.json

Tasks that name an ``environment`` (synthesized from an imported repository, or ``--environment
FILE``) get it built first, once each (cached by content hash).

Both print a summary (kept, dropped and why) and write a JSON report next to the output
(``OUTPUT.report.json`` unless ``--report`` says otherwise). Bad input (a missing or malformed
file, a repository with no sources, a ``repo_path`` or REPO that must not be copied into a
sandbox, an unusable runtime) raises :class:`UsageError` (or ``CurationError``): one line on
stderr, exit status 2. A synthesis that keeps no task raises :class:`NoTasksError` (exit status
1) after writing its report; an environment the registry cannot provide,
:class:`EnvBuildFailedError` (exit status 1).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rich.console import Console

from arenagym.envs.swe import curation
from arenagym.envs.swe.curation import validate_tasks, write_report
from arenagym.envs.swe.runtime.pyenv import EnvBuildError, build_env
from arenagym.envs.swe.synthesis import OPERATORS, library_source_files
from arenagym.envs.swe.taskenv import TaskEnvError, task_env_spec
from arenagym.envs.swe.tasks import SWETask, TaskFormatError, dump_tasks, load_tasks
from arenagym.envs.swe.workspace import RepoPathError, check_repo_path

__all__ = ["EnvBuildFailedError", "NoTasksError", "UsageError", "synthesize", "validate"]


class UsageError(Exception):
    """Bad input to ``arenagym swe``: one line on stderr, exit status 2."""


class NoTasksError(Exception):
    """``arenagym swe synthesize`` kept no task (the report says why): exit status 1."""


class EnvBuildFailedError(Exception):
    """A task's Python environment could not be built from the registry: exit status 1."""


def _check_runtime(name: str) -> None:
    from arenagym.envs.swe.runtime import RUNTIME_NAMES

    if name not in RUNTIME_NAMES:
        raise UsageError(f"unknown runtime {name!r}; choose one of {', '.join(RUNTIME_NAMES)}")
    if name == "local":
        raise UsageError("the local runtime has no isolation; curation needs a sandbox runtime")
    if name == "bubblewrap":
        from arenagym.envs.swe.runtime.bubblewrap import bubblewrap_unavailable_reason

        reason = bubblewrap_unavailable_reason()
    else:
        try:
            from arenagym.envs.swe.runtime.docker import docker_unavailable_reason
        except ImportError as error:
            raise UsageError(f"the docker runtime cannot be loaded: {error}") from None
        reason = docker_unavailable_reason()
    if reason is not None:
        raise UsageError(f"the {name} runtime is not usable here: {reason}")


def _check_numbers(args: argparse.Namespace) -> None:
    for option in ("runs", "workers", "max_tasks", "per_function", "max_candidates"):
        value = getattr(args, option, None)
        if value is not None and value < 1:
            raise UsageError(f"--{option.replace('_', '-')} must be at least 1, not {value}")
    if args.timeout is not None and args.timeout <= 0:
        raise UsageError(f"--timeout must be positive, not {args.timeout}")


def _operators(text: str | None) -> tuple[str, ...]:
    if not text:
        return OPERATORS
    operators = tuple(name.strip() for name in text.split(",") if name.strip())
    unknown = [name for name in operators if name not in OPERATORS]
    if unknown or not operators:
        raise UsageError(
            f"unknown operator(s) {', '.join(unknown) or '(none given)'}; "
            f"choose from {', '.join(OPERATORS)}"
        )
    return operators


def _run_validate(args: argparse.Namespace, console: Console) -> int:
    try:
        tasks = load_tasks(args.candidates)
    except (TaskFormatError, FileNotFoundError) as error:
        raise UsageError(str(error)) from None
    missing = [task.instance_id for task in tasks if task.repo_path is None]
    if missing:
        raise UsageError(f"{args.candidates}: task {missing[0]} has no repo_path")
    _check_sources({task.repo_path or "": task.instance_id for task in tasks})
    _build_environments(tasks, console)
    report = validate_tasks(
        tasks,
        runs=args.runs,
        workers=args.workers,
        cache_dir=args.cache,
        runtime=args.runtime,
        timeout_s=args.timeout or 300,
        show_progress=not args.no_progress,
        console=console,
    )
    dump_tasks(report.kept_tasks(), args.output)
    report_path = args.report or args.output.with_name(args.output.name + ".report.json")
    write_report(report.to_json(), report_path)
    report.print_summary(console)
    console.print(
        f"wrote {len(report.kept_tasks())} task(s) to {args.output}, report {report_path}"
    )
    return 0


def _build_environments(tasks: list[SWETask], console: Console) -> None:
    """Build every environment the tasks name, once each, before any sandbox runs: a spec that
    cannot be read is bad input (exit status 2), one that cannot be built a failure (1)."""
    specs: dict[str, SWETask] = {}
    for task in tasks:
        if task.environment and task.environment not in specs:
            specs[task.environment] = task
    for path, task in specs.items():
        try:
            spec = task_env_spec(task)
        except TaskEnvError as error:
            raise UsageError(str(error)) from None
        assert spec is not None
        try:
            built = build_env(spec)
        except EnvBuildError as error:
            raise EnvBuildFailedError(
                f"task {task.instance_id}: environment {path} cannot be built: {error}"
            ) from None
        how = "from the cache" if built.reused else f"built in {built.seconds:.1f} s"
        console.print(f"environment {path}: {built.path.name} {how}", soft_wrap=True)


def _check_sources(sources: dict[str, str]) -> None:
    """Refuse (usage error) a repository that must not be copied into a sandbox (a system
    folder, a home secret, a virtual environment...): ``sources`` maps paths to task ids."""
    for path, instance_id in sources.items():
        try:
            check_repo_path(path, instance_id)
        except RepoPathError as error:
            raise UsageError(str(error)) from None


def synthesis_environment(repo: Path, given: Path | None) -> str | None:
    """The environment spec synthesized tasks name: ``given``, else the provenance file of an
    imported repository (``REPO.json`` beside it, holding ``"environment"``), else none."""
    if given is not None:
        if not given.is_file():
            raise UsageError(f"environment spec {given} does not exist")
        return str(given.absolute())
    sibling = repo.absolute().with_name(repo.absolute().name + ".json")
    try:
        row = json.loads(sibling.read_text())
    except (OSError, ValueError):
        return None
    return str(sibling) if isinstance(row, dict) and "environment" in row else None


def _run_synthesize(args: argparse.Namespace, console: Console) -> int:
    operators = _operators(args.operators)
    environment = synthesis_environment(args.repo, args.environment)
    if environment is not None:
        probe = SWETask("(synthesized)", "", "", "", "", "p", environment=environment)
        _build_environments([probe], console)
    result = curation.synthesize(
        args.repo,
        seed=args.seed,
        max_tasks=args.max_tasks,
        per_function=args.per_function,
        max_candidates=args.max_candidates,
        operators=operators,
        name=args.name,
        test_command=args.test_command,
        runs=args.runs,
        workers=args.workers,
        cache_dir=args.cache,
        runtime=args.runtime,
        timeout_s=args.timeout or 60,
        show_progress=not args.no_progress,
        console=console,
        environment=environment,
    )
    dump_tasks(result.tasks, args.output)
    report = result.to_json()
    report_path = args.report or args.output.with_name(args.output.name + ".report.json")
    write_report(report, report_path)
    result.validation.extra = {"mutations enumerated": result.enumerated}
    result.validation.print_summary(console, title="Synthesis")
    for operator, row in result.per_operator().items():
        console.print(
            f"  {operator:<18} {row['kept']} task(s) from {row['candidates']} candidate(s)"
        )
    console.print(f"wrote {len(result.tasks)} task(s) to {args.output}, report {report_path}")
    if not result.tasks:
        raise NoTasksError("no candidate survived validation (see the report)")
    return 0


def validate(args: argparse.Namespace) -> int:
    """``arenagym swe validate CANDIDATES -o OUTPUT ...``: keep the candidates whose tests
    fail before and pass after their gold patch; the exit status."""
    _check_numbers(args)
    if not args.candidates.is_file():
        raise UsageError(f"candidate file {args.candidates} does not exist")
    _check_runtime(args.runtime)
    return _run_validate(args, Console(stderr=True))


def synthesize(args: argparse.Namespace) -> int:
    """``arenagym swe synthesize REPO -o OUTPUT ...``: inject bugs into REPO's functions and
    write the validated tasks; the exit status."""
    _check_numbers(args)
    if not args.repo.is_dir():
        raise UsageError(f"repository {args.repo} is not a directory")
    _check_sources({str(args.repo): "(synthesized)"})
    _operators(args.operators)
    if not library_source_files(args.repo):
        raise UsageError(f"{args.repo}: no Python source files outside the tests")
    _check_runtime(args.runtime)
    return _run_synthesize(args, Console(stderr=True))
