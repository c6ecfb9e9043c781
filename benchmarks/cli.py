"""The ``arenagym`` command: list envs, run benchmark suites, show leaderboards.

Examples (also ``python -m arenagym.benchmarks.cli ...``)::

    arenagym list
    arenagym run --suite math --agent math-solver
    arenagym run --suite my_suite.toml --agent my_pkg.agents:MyAgent --agent-kwargs '{"t": 0.7}'
    arenagym leaderboard --suite math --markdown results/leaderboard.md
    arenagym run --suite dfc18-quick        # rated games between the built-in TextArena players
    arenagym train or1 --model DIR --output runs/or1    # and merge, rm, dfc (arenagym.trainers)
    arenagym swe synthesize path/to/repo -o tasks.jsonl  # and validate (arenagym.envs.swe)

Bad input (an unknown suite, agent or store, malformed JSON) prints one line on stderr and exits
with status 2; an interrupted run exits with 130 and resumes when the same command is run again.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console

from arenagym.agents.base import agent_spec_help, resolve_agent_factory
from arenagym.benchmarks.leaderboard import (
    build_leaderboards,
    print_leaderboards,
    print_rating_boards,
    write_markdown,
)
from arenagym.benchmarks.runner import (
    DEFAULT_CONCURRENCY,
    RunSetupError,
    agent_display_name,
    run_suite,
)
from arenagym.benchmarks.store import ResultsStore, StoreError
from arenagym.benchmarks.suite import Player, SuiteError, bundled_suites, load_suite

#: Commands implemented elsewhere: name -> ("module:function(argv) -> status", one-line help).
_DELEGATED: dict[str, tuple[str, str]] = {
    "models": (
        "arenagym.agents.models:main",
        "models by name: list the registry, fetch (download + convert once), print paths",
    ),
    "serve": (
        "arenagym.agents.serve:main",
        "serve a local model over an OpenAI-compatible HTTP API",
    ),
    "train": (
        "arenagym.trainers.cli:train_main",
        "train a model on envs (GRPO, OR1, Dr. GRPO, RLOO, REINFORCE++, PPO)",
    ),
    "merge": (
        "arenagym.trainers.cli:merge_main",
        "merge safetensors checkpoints (linear, task arithmetic, TIES, DARE, SLERP)",
    ),
    "rm": ("arenagym.trainers.cli:rm_main", "train and evaluate Bradley-Terry reward models"),
    "dfc": (
        "arenagym.trainers.cli:dfc_main",
        "divide-fuse-conquer: a specialist per group, fused, then trained on all groups",
    ),
    "swe": (
        "arenagym.envs.swe.cli:swe_main",
        "SWE task curation: validate candidate tasks, synthesize tasks by bug injection",
    ),
}

#: Where ``run`` and ``leaderboard`` keep results unless ``--store`` says otherwise.
DEFAULT_STORE = Path("results") / "arenagym.sqlite"

_RUN_EXAMPLES = """\
examples:
  arenagym run --suite math --agent math-solver
  arenagym run --suite math --agent random --agent-kwargs '{"seed": 1}' --concurrency 16
  arenagym run --suite path/to/suite.toml --agent my_pkg.agents:MyAgent --agent-name my-agent-v2
  arenagym run --suite dfc18-quick
  arenagym run --suite dfc18 --agent my_pkg.agents:MyAgent   # also play the built-in players
  arenagym run --suite math --agent hf:smollm2-135m-instruct,temperature=0,max_tokens=256
  arenagym run --suite math --agent openai:http://127.0.0.1:8000/v1,model=tiny
  arenagym run --suite math-quick --suite dfc18-quick --agent vllm:smollm2-135m-instruct

A suite with [[matches]] plays its [[players]] against each other (and --agent, if given,
against all of them) and shows OpenSkill ratings with wins/draws/losses.

Episodes already in the store for this suite and agent name are skipped, so re-running the same
command after a crash or Ctrl-C finishes the suite without repeating or duplicating episodes.

An agent call that takes longer than the suite's agent_call_timeout_s (default 600 s), or calls
of one episode that take longer than its episode_timeout_s together (default 3600 s), end that
episode with stop reason agent_timeout (a failure of the agent; in a game it forfeits) and the
run goes on; --agent-call-timeout and --episode-timeout override the suite's [settings].
"""

_LEADERBOARD_EXAMPLES = """\
examples:
  arenagym leaderboard
  arenagym leaderboard --suite math --markdown results/leaderboard.md
  arenagym leaderboard --store /tmp/other.sqlite
"""


class _UsageError(Exception):
    """Bad input from the user: reported on stderr as one line, exit status 2."""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``arenagym`` command."""
    parser = argparse.ArgumentParser(
        prog="arenagym",
        description="Gymnasium envs and benchmarks for LLM agents.",
        epilog="Run `arenagym COMMAND --help` for a command's options and examples.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    commands.add_parser(
        "list",
        help="list every registered env id with its description",
        description="List every arenagym env id registered with Gymnasium, with a description.",
        epilog="example:\n  arenagym list",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )

    run = commands.add_parser(
        "run",
        help="run a benchmark suite with an agent (resumable)",
        description="Play every episode of a suite with an agent, record each finished episode\n"
        "in a SQLite store, then print the suite's leaderboard.",
        epilog=_RUN_EXAMPLES + "\n" + agent_spec_help(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    run.add_argument(
        "--suite",
        required=True,
        action="append",
        help=f"a suite .toml file, or a bundled suite name ({', '.join(bundled_suites())}); "
        "give it several times to run several suites in turn in one process (an LLM agent's "
        "model is loaded once)",
    )
    run.add_argument(
        "--agent",
        metavar="SPEC",
        help="a built-in agent (random, math-solver), an entry point of the 'arenagym.agents' "
        "group, 'package.module:Class', or an LLM spec: hf:MODEL, vllm:MODEL or "
        "openai:URL,model=NAME, each with optional ,key=value pairs (see 'agent specs' below; "
        "required unless the suite only has [[matches]])",
    )
    run.add_argument(
        "--agent-kwargs",
        default="{}",
        metavar="JSON",
        help="keyword arguments for the agent, as a JSON object (e.g. '{\"seed\": 1}'); for "
        "an LLM spec, any of its keys (e.g. '{\"temperature\": 0.2}')",
    )
    run.add_argument(
        "--agent-name",
        metavar="NAME",
        help="the agent's name in the store and on the leaderboard "
        "(default: the agent spec plus its sorted kwargs, e.g. random(seed=1); "
        "an API key in them is shown as ***)",
    )
    _add_store_argument(run)
    run.add_argument(
        "--concurrency",
        type=_positive_int,
        default=DEFAULT_CONCURRENCY,
        metavar="N",
        help=f"episodes played at once (default {DEFAULT_CONCURRENCY})",
    )
    run.add_argument(
        "--opponents",
        metavar="NAMES",
        help="match suites: the --agent plays only against these of the suite's players "
        "(comma-separated names; default: all of them); its rating stays tied to the pool "
        "through them",
    )
    run.add_argument(
        "--agent-call-timeout",
        type=_seconds,
        metavar="SECONDS",
        help="the most one agent call (building it, reset, act) may take; past it the episode "
        "ends with stop reason agent_timeout (default: the suite's agent_call_timeout_s)",
    )
    run.add_argument(
        "--episode-timeout",
        type=_seconds,
        metavar="SECONDS",
        help="the most the agent's calls of one episode (one seat of a game) may take together "
        "(default: the suite's episode_timeout_s)",
    )
    run.add_argument("--no-progress", action="store_true", help="do not show a progress bar")
    run.add_argument(
        "--retry-errors",
        action="store_true",
        help="play again the episodes recorded with stop_reason agent_error or env_error "
        "(not agent_timeout: a timeout is the agent's result)",
    )

    board = commands.add_parser(
        "leaderboard",
        help="show the leaderboard of the results in a store",
        description="Rank agents by their mean score over a suite's tasks, with mean ± standard\n"
        "error over seeds per task.",
        epilog=_LEADERBOARD_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_store_argument(board)
    board.add_argument("--suite", metavar="NAME", help="only this suite (default: every suite)")
    board.add_argument(
        "--markdown", metavar="PATH", help="also write the leaderboard as Markdown to PATH"
    )
    for name, (_target, text) in _DELEGATED.items():
        # these commands parse their own options (and --help): listed here for `arenagym --help`
        commands.add_parser(name, help=text, add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``arenagym`` command with ``argv`` (default ``sys.argv[1:]``); the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] and argv[0] in _DELEGATED:  # a command that parses its own options (and --help)
        module_name, _, function = _DELEGATED[argv[0]][0].partition(":")
        return getattr(importlib.import_module(module_name), function)(argv[1:])
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help (0) or a usage error (2), already printed by argparse
        return exit_.code if isinstance(exit_.code, int) else 2
    try:
        if args.command == "list":
            return _list()
        if args.command == "run":
            return _run(args)
        return _leaderboard(args)
    except (_UsageError, SuiteError, StoreError, RunSetupError) as error:
        print(f"arenagym {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            f"arenagym {args.command}: interrupted; finished episodes are saved, run the same "
            "command again to resume",
            file=sys.stderr,
        )
        return 130


def _list() -> int:
    import arenagym.envs

    envs = arenagym.envs.list_envs()
    width = max((len(env_id) for env_id in envs), default=0)
    for env_id, description in envs.items():
        print(f"{env_id:<{width}}  {description}")
    return 0


def _run(args: argparse.Namespace) -> int:
    try:
        agent_kwargs = json.loads(args.agent_kwargs)
    except json.JSONDecodeError as error:
        raise _UsageError(f"--agent-kwargs is not valid JSON ({error})") from None
    except RecursionError:
        raise _UsageError("--agent-kwargs is nested too deeply to read") from None
    if not isinstance(agent_kwargs, dict):
        raise _UsageError(
            f"--agent-kwargs must be a JSON object, got a JSON {type(agent_kwargs).__name__}"
        )
    # Resolve the agent before loading the suite: a plug-in agent's module may register the envs
    # its suite uses.
    if args.agent is not None:
        try:
            resolve_agent_factory(args.agent)
        except ValueError as error:
            raise _UsageError(str(error)) from None
    suites = [load_suite(name) for name in args.suite]  # every file checked before any run
    for suite in suites:
        if args.agent is None and suite.tasks:
            raise _UsageError(
                f"the argument --agent is required: suite {suite.name!r} has [[tasks]] to play"
            )
    with ResultsStore(args.store) as store:
        for suite in suites:
            _run_one(args, suite, agent_kwargs, store)
    return 0


def _run_one(
    args: argparse.Namespace, suite: Any, agent_kwargs: dict[str, Any], store: Any
) -> None:
    """Play one suite of ``arenagym run`` and print its summary and leaderboard."""
    if suite.matches:
        _run_matches(args, suite, agent_kwargs, store)
    if suite.tasks:
        summary = run_suite(
            suite,
            args.agent,
            agent_kwargs,
            store,
            concurrency=args.concurrency,
            progress=not args.no_progress,
            agent_name=args.agent_name,
            retry_errors=args.retry_errors,
            agent_call_timeout_s=args.agent_call_timeout,
            episode_timeout_s=args.episode_timeout,
        )
        reasons = ", ".join(f"{n} {reason}" for reason, n in sorted(summary.stop_reasons.items()))
        print(
            f"{summary.suite} · {summary.agent}: {summary.ran} episodes run, {summary.skipped} "
            f"skipped (already in the store), {summary.failed} failed (agent/env errors or "
            f"agent timeouts) in {summary.duration_s:.1f} s; results in {args.store}"
        )
        if reasons:
            print(f"stop reasons: {reasons}")
        print_leaderboards(build_leaderboards(store, suite=suite.name), _console())


def _run_matches(
    args: argparse.Namespace, suite: Any, agent_kwargs: dict[str, Any], store: Any
) -> None:
    from arenagym.benchmarks.matches import run_matches
    from arenagym.benchmarks.ratings import build_rating_boards

    extra = []
    if args.agent is not None:
        name = args.agent_name or agent_display_name(args.agent, agent_kwargs)
        extra.append(Player(name, args.agent, agent_kwargs))
    opponents = None
    if args.opponents is not None:
        opponents = [name.strip() for name in args.opponents.split(",") if name.strip()]
        if not opponents:
            raise _UsageError("--opponents needs at least one player name (comma-separated)")
    summary = run_matches(
        suite,
        store,
        extra,
        concurrency=args.concurrency,
        progress=not args.no_progress,
        opponents=opponents,
        agent_call_timeout_s=args.agent_call_timeout,
        episode_timeout_s=args.episode_timeout,
    )
    reasons = ", ".join(f"{n} {reason}" for reason, n in sorted(summary.stop_reasons.items()))
    print(
        f"{summary.suite} · games: {summary.ran} played, {summary.skipped} skipped (already in "
        f"the store), {summary.failed} failed (agent/env errors or agent timeouts) in "
        f"{summary.duration_s:.1f} s; results in {args.store}"
    )
    if reasons:
        print(f"game endings (seat 0): {reasons}")
    print_rating_boards(build_rating_boards(store, suite=suite.name), _console())


def _leaderboard(args: argparse.Namespace) -> int:
    store_path = Path(args.store)
    if store_path.is_dir():
        inside = store_path / DEFAULT_STORE.name
        hint = f"; did you mean --store {inside}?" if inside.is_file() else ""
        raise _UsageError(
            f"{args.store} is a directory, not a results store: a results store is the SQLite "
            f"file that `arenagym run --store PATH` writes (default {DEFAULT_STORE}){hint}"
        )
    if not store_path.is_file():
        raise _UsageError(f"no results store at {args.store}; run `arenagym run` first")
    with ResultsStore(args.store) as store:
        if args.suite is not None and args.suite not in store.suites():
            known = ", ".join(store.suites()) or "none"
            raise _UsageError(f"no results for suite {args.suite!r} in {args.store} (has: {known})")
        boards = build_leaderboards(store, suite=args.suite)
        ratings = _rating_boards(store, args.suite)
    if boards or not ratings:
        print_leaderboards(boards, _console())
    print_rating_boards(ratings, _console())
    if args.markdown:
        print(f"Markdown written to {write_markdown(boards, args.markdown, ratings)}")
    return 0


def _rating_boards(store: Any, suite: str | None) -> list[Any]:
    if not store.match_rows(suite=suite):
        return []  # no games: do not require openskill
    from arenagym.benchmarks.ratings import build_rating_boards

    return build_rating_boards(store, suite=suite)


def _add_store_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--store",
        default=str(DEFAULT_STORE),
        metavar="PATH",
        help=f"the results store: one SQLite file (default {DEFAULT_STORE}; its folder is created)",
    )


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a number of seconds > 0, got {text}")
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {value}")
    return value


def _console() -> Console:
    # Built per call, not at import, so that it writes to the sys.stdout of the moment (tests).
    return Console(file=sys.stdout, width=max(Console(file=sys.stdout).width, 120))


if __name__ == "__main__":
    raise SystemExit(main())
