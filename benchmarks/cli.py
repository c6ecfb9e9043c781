"""``arenagym run`` and ``arenagym leaderboard``: what they do, given their parsed arguments.

The parsers, the help and the error format are :mod:`arenagym.cli`'s (the one command module);
these functions do the work and raise :class:`UsageError` (or the harness's ``SuiteError``,
``StoreError``, ``RunSetupError``) for bad input, which the command reports as one line on
stderr with exit status 2. An interrupted run exits with 130 and resumes when the same command is
run again.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from rich.console import Console

from arenagym.agents.specs import resolve_agent_factory
from arenagym.benchmarks.leaderboard import (
    build_leaderboards,
    print_leaderboards,
    print_rating_boards,
    write_markdown,
)
from arenagym.benchmarks.runner import agent_display_name, run_suite
from arenagym.benchmarks.store import ResultsStore
from arenagym.benchmarks.suite import Player, load_suite

__all__ = ["DEFAULT_STORE", "UsageError", "leaderboard", "run"]

#: Where ``run`` and ``leaderboard`` keep results unless ``--store`` says otherwise.
DEFAULT_STORE = Path("results") / "arenagym.sqlite"


class UsageError(Exception):
    """Bad input from the user (malformed ``--agent-kwargs``, an unknown agent, no store):
    ``arenagym`` reports it as one line on stderr, exit status 2."""


def run(args: argparse.Namespace) -> int:
    """``arenagym run``: play every suite of ``args.suite`` with ``args.agent`` into the store,
    printing each suite's summary and leaderboard; the exit status."""
    try:
        agent_kwargs = json.loads(args.agent_kwargs)
    except json.JSONDecodeError as error:
        raise UsageError(f"--agent-kwargs is not valid JSON ({error})") from None
    except RecursionError:
        raise UsageError("--agent-kwargs is nested too deeply to read") from None
    if not isinstance(agent_kwargs, dict):
        raise UsageError(
            f"--agent-kwargs must be a JSON object, got a JSON {type(agent_kwargs).__name__}"
        )
    # Resolve the agent before loading the suite: a plug-in agent's module may register the envs
    # its suite uses.
    if args.agent is not None:
        try:
            resolve_agent_factory(args.agent)
        except ValueError as error:
            raise UsageError(str(error)) from None
    suites = [load_suite(name) for name in args.suite]  # every file checked before any run
    for suite in suites:
        if args.agent is None and suite.tasks:
            raise UsageError(
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
            raise UsageError("--opponents needs at least one player name (comma-separated)")
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


def leaderboard(args: argparse.Namespace) -> int:
    """``arenagym leaderboard``: print (and with ``--markdown`` write) the leaderboards and
    rating boards of a store; the exit status."""
    store_path = Path(args.store)
    if store_path.is_dir():
        inside = store_path / DEFAULT_STORE.name
        hint = f"; did you mean --store {inside}?" if inside.is_file() else ""
        raise UsageError(
            f"{args.store} is a directory, not a results store: a results store is the SQLite "
            f"file that `arenagym run --store PATH` writes (default {DEFAULT_STORE}){hint}"
        )
    if not store_path.is_file():
        raise UsageError(f"no results store at {args.store}; run `arenagym run` first")
    with ResultsStore(args.store) as store:
        if args.suite is not None and args.suite not in store.suites():
            known = ", ".join(store.suites()) or "none"
            raise UsageError(f"no results for suite {args.suite!r} in {args.store} (has: {known})")
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


def _console() -> Console:
    # Built per call, not at import, so that it writes to the sys.stdout of the moment (tests).
    return Console(file=sys.stdout, width=max(Console(file=sys.stdout).width, 120))
