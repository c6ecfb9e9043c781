"""``arenagym swe``: validate candidate tasks and synthesize new ones from a repository.

Examples::

    arenagym swe validate candidates.jsonl -o validated.jsonl --runs 3 --workers 4
    arenagym swe validate candidates.jsonl -o validated.jsonl --cache .swe-cache  # incremental
    arenagym swe synthesize path/to/repo -o tasks.jsonl --max-tasks 20 --seed 0
    arenagym swe synthesize path/to/repo -o tasks.jsonl --operators flip_comparison,off_by_one

Both print a summary (kept, dropped and why) and write a JSON report next to the output
(``OUTPUT.report.json`` unless ``--report`` says otherwise). Bad input (a missing or malformed
file, a repository with no sources, a ``repo_path`` or REPO that must not be copied into a
sandbox, an unusable runtime) prints one line on stderr and exits with status 2.

Example:
    >>> swe_main(["validate", "/no/such/file.jsonl", "-o", "/tmp/out.jsonl"])
    2
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from rich.console import Console

from arenagym.envs.swe.curation import (
    CurationError,
    synthesize,
    validate_tasks,
    write_report,
)
from arenagym.envs.swe.synthesis import OPERATORS, library_source_files
from arenagym.envs.swe.tasks import TaskFormatError, dump_tasks, load_tasks
from arenagym.envs.swe.workspace import RepoPathError, check_repo_path

_VALIDATE_EXAMPLES = """\
examples:
  arenagym swe validate candidates.jsonl -o validated.jsonl
  arenagym swe validate candidates.jsonl -o validated.jsonl --runs 3 --workers 4 --cache .cache

Each candidate's whole test suite runs in a fresh sandbox before and after its gold patch,
--runs times each; FAIL_TO_PASS = fails before and passes after in every run, PASS_TO_PASS =
passes in every run; flaky tests are left out and tasks with no FAIL_TO_PASS are dropped.
With --cache, results are kept by content hash and a re-run only does new work.
"""

_SYNTHESIZE_EXAMPLES = f"""\
examples:
  arenagym swe synthesize path/to/repo -o tasks.jsonl
  arenagym swe synthesize path/to/repo -o tasks.jsonl --max-tasks 50 --per-function 3 --seed 1
  arenagym swe synthesize path/to/repo -o tasks.jsonl --operators drop_else,swap_arguments

REPO is a directory or a git repository (read at HEAD) with a pytest suite. Bugs are injected
one function at a time into its non-test source; each candidate is validated as by `validate`
and gets a problem statement written from its failing tests. The same seed gives the same tasks.
operators: {", ".join(OPERATORS)}
"""


class _UsageError(Exception):
    """Bad input: one line on stderr, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        raise _UsageError(f"{self.prog}: {message}")


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``arenagym swe``."""
    parser = _Parser(prog="arenagym swe", description="SWE task curation.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def common(sub: argparse.ArgumentParser) -> None:
        sub.add_argument("-o", "--output", required=True, type=Path, help="JSONL to write")
        sub.add_argument("--report", type=Path, help="JSON report (default: OUTPUT.report.json)")
        sub.add_argument("--runs", type=int, default=2, help="runs before/after (default 2)")
        sub.add_argument("--workers", type=int, default=2, help="parallel sandboxes (default 2)")
        sub.add_argument("--cache", type=Path, help="folder of cached results (incremental)")
        sub.add_argument("--runtime", default="bubblewrap", help="sandbox (default bubblewrap)")
        sub.add_argument("--timeout", type=float, help="seconds per test-suite run")
        sub.add_argument("--no-progress", action="store_true", help="no progress bar")

    validate = commands.add_parser(
        "validate",
        help="run candidates' tests before/after the gold patch; keep the valid ones",
        epilog=_VALIDATE_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    validate.add_argument("candidates", type=Path, help="candidate tasks (SWE-bench JSONL)")
    common(validate)

    synth = commands.add_parser(
        "synthesize",
        help="inject bugs into a repository and write validated tasks",
        epilog=_SYNTHESIZE_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    synth.add_argument("repo", type=Path, help="a directory or git repository with tests")
    common(synth)
    synth.add_argument("--max-tasks", type=int, default=20, help="tasks to write (default 20)")
    synth.add_argument("--seed", type=int, default=0, help="seed of the mutation choice")
    synth.add_argument("--per-function", type=int, default=2, help="candidates per function")
    synth.add_argument("--max-candidates", type=int, help="cap on candidates validated")
    synth.add_argument("--operators", help="comma-separated subset of the operators")
    synth.add_argument("--name", help="repository display name (default: the folder name)")
    synth.add_argument("--test-command", default="python -m pytest", help="pytest invocation")
    return parser


def _check_runtime(name: str) -> None:
    from arenagym.envs.swe.runtime import RUNTIME_NAMES

    if name not in RUNTIME_NAMES:
        raise _UsageError(f"unknown runtime {name!r}; choose one of {', '.join(RUNTIME_NAMES)}")
    if name == "local":
        raise _UsageError("the local runtime has no isolation; curation needs a sandbox runtime")
    if name == "bubblewrap":
        from arenagym.envs.swe.runtime.bubblewrap import bubblewrap_unavailable_reason

        reason = bubblewrap_unavailable_reason()
    else:
        try:
            from arenagym.envs.swe.runtime.docker import docker_unavailable_reason
        except ImportError as error:
            raise _UsageError(f"the docker runtime cannot be loaded: {error}") from None
        reason = docker_unavailable_reason()
    if reason is not None:
        raise _UsageError(f"the {name} runtime is not usable here: {reason}")


def _check_numbers(args: argparse.Namespace) -> None:
    for option in ("runs", "workers", "max_tasks", "per_function", "max_candidates"):
        value = getattr(args, option, None)
        if value is not None and value < 1:
            raise _UsageError(f"--{option.replace('_', '-')} must be at least 1, not {value}")
    if args.timeout is not None and args.timeout <= 0:
        raise _UsageError(f"--timeout must be positive, not {args.timeout}")


def _operators(text: str | None) -> tuple[str, ...]:
    if not text:
        return OPERATORS
    operators = tuple(name.strip() for name in text.split(",") if name.strip())
    unknown = [name for name in operators if name not in OPERATORS]
    if unknown or not operators:
        raise _UsageError(
            f"unknown operator(s) {', '.join(unknown) or '(none given)'}; "
            f"choose from {', '.join(OPERATORS)}"
        )
    return operators


def _run_validate(args: argparse.Namespace, console: Console) -> int:
    try:
        tasks = load_tasks(args.candidates)
    except (TaskFormatError, FileNotFoundError) as error:
        raise _UsageError(str(error)) from None
    missing = [task.instance_id for task in tasks if task.repo_path is None]
    if missing:
        raise _UsageError(f"{args.candidates}: task {missing[0]} has no repo_path")
    _check_sources({task.repo_path or "": task.instance_id for task in tasks})
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


def _check_sources(sources: dict[str, str]) -> None:
    """Refuse (usage error) a repository that must not be copied into a sandbox (a system
    folder, a home secret, a virtual environment...): ``sources`` maps paths to task ids."""
    for path, instance_id in sources.items():
        try:
            check_repo_path(path, instance_id)
        except RepoPathError as error:
            raise _UsageError(str(error)) from None


def _run_synthesize(args: argparse.Namespace, console: Console) -> int:
    operators = _operators(args.operators)
    result = synthesize(
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
        print("error: no candidate survived validation (see the report)", file=sys.stderr)
        return 1
    return 0


def swe_main(argv: Sequence[str] | None = None) -> int:
    """Run ``arenagym swe`` with ``argv`` (without the program name); returns the exit status."""
    console = Console(stderr=True)
    try:
        args = build_parser().parse_args(list(argv) if argv is not None else None)
        _check_numbers(args)
        if args.command == "validate" and not args.candidates.is_file():
            raise _UsageError(f"candidate file {args.candidates} does not exist")
        if args.command == "synthesize":
            if not args.repo.is_dir():
                raise _UsageError(f"repository {args.repo} is not a directory")
            _check_sources({str(args.repo): "(synthesized)"})
            _operators(args.operators)
            if not library_source_files(args.repo):
                raise _UsageError(f"{args.repo}: no Python source files outside the tests")
        _check_runtime(args.runtime)
        if args.command == "validate":
            return _run_validate(args, console)
        return _run_synthesize(args, console)
    except _UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except CurationError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except SystemExit as exit_:  # --help
        return exit_.code if isinstance(exit_.code, int) else 0
    except KeyboardInterrupt:
        print("interrupted; cached results are kept", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(swe_main())
