"""``arenagym run``, ``arenagym leaderboard`` and ``arenagym show``: what they do, given their
parsed arguments.

The parsers, the help and the error format are :mod:`arenagym.cli`'s (the one command module);
these functions do the work and raise :class:`UsageError` (or the harness's ``SuiteError``,
``StoreError``, ``RunSetupError``) for bad input, which the command reports as one line on
stderr with exit status 2. An interrupted run exits with 130 and resumes when the same command is
run again.

A run says what went wrong: after each suite's summary, its failed episodes grouped by the first
line of their error (one line per distinct error, with a count and the tasks and seeds), and a run
in which any episode (or game) ended in an agent or env error ends with :class:`RunFailed` (exit
status 1), naming the ``arenagym show`` command that prints those episodes' transcripts. With
``--json`` the run's summary is one JSON object on stdout (:func:`run_report`), and everything
meant for people goes to stderr.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, TextIO

from rich.console import Console
from rich.panel import Panel
from rich.text import Text

from arenagym.agents.specs import resolve_agent_factory
from arenagym.benchmarks.distributed import (
    check_ray_agent,
    cluster_window,
    connect,
    ray_episodes,
    ray_games,
)
from arenagym.benchmarks.leaderboard import (
    build_leaderboards,
    print_leaderboards,
    print_rating_boards,
    write_markdown,
)
from arenagym.benchmarks.runner import (
    FailureGroup,
    RunSetupError,
    RunSummary,
    agent_display_name,
    run_suite,
)
from arenagym.benchmarks.store import (
    ERROR_STOP_REASONS,
    EpisodeRow,
    MatchRow,
    ResultsStore,
)
from arenagym.benchmarks.suite import Player, load_suite
from arenagym.benchmarks.transcripts import is_failing

__all__ = ["DEFAULT_STORE", "RunFailed", "UsageError", "leaderboard", "run", "run_report", "show"]

#: Where ``run`` and ``leaderboard`` keep results unless ``--store`` says otherwise.
DEFAULT_STORE = Path("results") / "arenagym.sqlite"


class UsageError(Exception):
    """Bad input from the user (malformed ``--agent-kwargs``, an unknown agent, no store):
    ``arenagym`` reports it as one line on stderr, exit status 2."""


class RunFailed(Exception):
    """``arenagym run`` played everything it could, but some episodes (or games) ended in an
    agent or env error: reported as one line on stderr after the summaries, exit status 1."""


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
    ray_address = getattr(args, "ray", None)
    if ray_address is not None:
        _check_ray(args, suites)
    as_json = bool(getattr(args, "json", False))
    out = sys.stderr if as_json else sys.stdout  # --json: stdout holds the JSON object only
    played: list[tuple[str, RunSummary]] = []
    with ResultsStore(args.store) as store:
        for suite in suites:
            played += _run_one(args, suite, agent_kwargs, store, out)
    failed = [(kind, summary) for kind, summary in played if summary.errors]
    if as_json:
        print(json.dumps(run_report(played, args.store), sort_keys=False))
        sys.stdout.flush()
    if failed:
        raise RunFailed(_failure_sentence(failed, args))
    return 0


def _check_ray(args: argparse.Namespace, suites: Sequence[Any]) -> None:
    """``arenagym run --ray``: before any run, refuse an agent or a match suite's player that
    would load a model in every Ray worker process (``hf:``/``vllm:``), and connect to the
    cluster (``RunSetupError`` if none answers)."""
    specs = [args.agent] if args.agent is not None else []
    specs += [player.agent for suite in suites if suite.matches for player in suite.players]
    for spec in specs:
        try:
            check_ray_agent(spec)
        except RunSetupError as error:
            raise UsageError(str(error)) from None
    connect(args.ray)  # before any run: a cluster that does not answer changes nothing


def run_report(played: Sequence[tuple[str, RunSummary]], store: str | Path) -> dict[str, Any]:
    """``arenagym run --json``'s object: the store, the exit status the run ends with (1 if an
    episode or game ended in an agent/env error), and per suite and kind (``"episodes"`` or
    ``"games"``) its :meth:`~arenagym.benchmarks.runner.RunSummary.as_dict`.

    Example:
        >>> summary = RunSummary("math", "random", 4, 0, 4, 0, 1.0, {"solved": 4})
        >>> report = run_report([("episodes", summary)], "results/r.sqlite")
        >>> report["exit_status"], report["runs"][0]["kind"], report["runs"][0]["ran"]
        (0, 'episodes', 4)
    """
    return {
        "store": str(store),
        "exit_status": 1 if any(summary.errors for _, summary in played) else 0,
        "ran": sum(summary.ran for _, summary in played),
        "failed": sum(summary.failed for _, summary in played),
        "errors": sum(summary.errors for _, summary in played),
        "runs": [{"kind": kind, **summary.as_dict()} for kind, summary in played],
    }


def _failure_sentence(failed: list[tuple[str, RunSummary]], args: argparse.Namespace) -> str:
    """The one error line of a run with agent/env errors, with the command that shows them."""
    parts = []
    for kind, summary in failed:
        unit = "games" if kind == "games" else "episodes"
        parts.append(f"{summary.errors} of {summary.ran} {unit} of suite {summary.suite!r}")
    kind, summary = failed[0]
    agent = summary.agent if kind == "episodes" else None
    if agent is None and args.agent is not None:
        agent = args.agent_name or agent_display_name(args.agent, _kwargs_of(args))
    hint = ""
    if agent is not None:
        command = [
            "arenagym", "show", "--store", str(args.store), "--suite", summary.suite,
            "--agent", agent, "--failed",
        ]  # fmt: skip
        hint = f"; see them with: {shlex.join(command)}"
    return f"{' and '.join(parts)} ended in agent/env errors{hint}"


def _kwargs_of(args: argparse.Namespace) -> dict[str, Any]:
    try:
        kwargs = json.loads(args.agent_kwargs)
    except (ValueError, RecursionError):
        return {}
    return kwargs if isinstance(kwargs, dict) else {}


def _run_one(
    args: argparse.Namespace,
    suite: Any,
    agent_kwargs: dict[str, Any],
    store: Any,
    out: TextIO | None = None,
) -> list[tuple[str, RunSummary]]:
    """Play one suite of ``arenagym run``; print its summary, its failures and (unless
    ``--json``) its leaderboard to ``out``; the summaries, by kind."""
    out = out or sys.stdout
    played = []
    if suite.matches:
        played.append(("games", _run_matches(args, suite, agent_kwargs, store, out)))
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
            limit=getattr(args, "limit", None),
            remote=None if getattr(args, "ray", None) is None else ray_episodes(args.ray),
        )
        played.append(("episodes", summary))
        reasons = ", ".join(f"{n} {reason}" for reason, n in sorted(summary.stop_reasons.items()))
        print(
            f"{summary.suite} · {summary.agent}: {summary.ran} episodes run, {summary.skipped} "
            f"skipped (already in the store), {summary.failed} failed (agent/env errors or "
            f"agent timeouts) in {summary.duration_s:.1f} s; results in {args.store}",
            file=out,
        )
        if reasons:
            print(f"stop reasons: {reasons}", file=out)
        for line in format_failures(summary.failures, "episodes"):
            print(line, file=out)
        if not getattr(args, "json", False):
            print_leaderboards(build_leaderboards(store, suite=suite.name), _console())
    return played


def format_failures(groups: Sequence[FailureGroup], unit: str = "episodes") -> list[str]:
    r"""The lines that summarise a run's failed episodes (games): one per distinct first line of
    error, with its count, stop reason and where it happened (tasks and seeds; games: lineups).

    Example:
        >>> group = FailureGroup("agent_error", "ConnectionError: refused", 3, (
        ...     {"task": "t", "seed": 0, "episode": 0}, {"task": "t", "seed": 0, "episode": 1},
        ...     {"task": "t", "seed": 1, "episode": 0}))
        >>> print("\n".join(format_failures([group])))
        failed episodes, by error:
          3 × agent_error: ConnectionError: refused
              t: seeds 0, 1
    """
    if not groups:
        return []
    lines = [f"failed {unit}, by error:"]
    for group in groups:
        lines.append(f"  {group.count} × {group.stop_reason}: {group.message or '(no message)'}")
        lines.append("      " + _where(group))
    return lines


def _where(group: FailureGroup) -> str:
    """Where a group's failures happened: ``task: seeds 0, 1`` per task (games: with lineups)."""
    places: dict[str, set[Any]] = {}
    for example in group.examples:
        name = str(example.get("task"))
        if "lineup" in example:
            name += f" ({' vs '.join(map(str, example['lineup']))})"
        places.setdefault(name, set()).add(example.get("seed"))
    text = "; ".join(
        f"{name}: seed{'s' if len(seeds) > 1 else ''} "
        + ", ".join(str(seed) for seed in sorted(seeds, key=str if None in seeds else None))
        for name, seeds in sorted(places.items())
    )
    more = group.count - len(group.examples)
    return text + (f"; and {more} more" if more > 0 else "")


def _run_matches(
    args: argparse.Namespace,
    suite: Any,
    agent_kwargs: dict[str, Any],
    store: Any,
    out: TextIO | None = None,
) -> RunSummary:
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
    ray_address = getattr(args, "ray", None)
    summary = run_matches(
        suite,
        store,
        extra,
        concurrency=args.concurrency if ray_address is None else cluster_window(ray_address),
        progress=not args.no_progress,
        opponents=opponents,
        agent_call_timeout_s=args.agent_call_timeout,
        episode_timeout_s=args.episode_timeout,
        limit=getattr(args, "limit", None),
        start_game=None if ray_address is None else ray_games(ray_address),
    )
    out = out or sys.stdout
    reasons = ", ".join(f"{n} {reason}" for reason, n in sorted(summary.stop_reasons.items()))
    print(
        f"{summary.suite} · games: {summary.ran} played, {summary.skipped} skipped (already in "
        f"the store), {summary.failed} failed (agent/env errors or agent timeouts) in "
        f"{summary.duration_s:.1f} s; results in {args.store}",
        file=out,
    )
    if reasons:
        print(f"game endings (seat 0): {reasons}", file=out)
    for line in format_failures(summary.failures, "games"):
        print(line, file=out)
    if not getattr(args, "json", False):
        print_rating_boards(build_rating_boards(store, suite=suite.name), _console())
    return summary


def leaderboard(args: argparse.Namespace) -> int:
    """``arenagym leaderboard``: print (and with ``--markdown`` write, with ``--html`` write as a
    static site: :func:`arenagym.benchmarks.site.write_site`) the leaderboards and rating boards
    of a store; the exit status."""
    _check_store_path(args.store)
    with ResultsStore(args.store) as store:
        if args.suite is not None and args.suite not in store.suites():
            known = ", ".join(store.suites()) or "none"
            raise UsageError(f"no results for suite {args.suite!r} in {args.store} (has: {known})")
        boards = build_leaderboards(store, suite=args.suite)
        ratings = _rating_boards(store, args.suite)
        site = None
        if getattr(args, "html", None):
            from arenagym.benchmarks.site import write_site

            site = write_site(store, args.html, suite=args.suite)
    if boards or not ratings:
        print_leaderboards(boards, _console())
    print_rating_boards(ratings, _console())
    if args.markdown:
        print(f"Markdown written to {write_markdown(boards, args.markdown, ratings)}")
    if site is not None:
        print(f"HTML leaderboard written to {site}")
    return 0


def _check_store_path(path: str) -> None:
    """Raise :class:`UsageError` unless ``path`` is an existing store file (reading commands)."""
    store_path = Path(path)
    if store_path.is_dir():
        inside = store_path / DEFAULT_STORE.name
        hint = f"; did you mean --store {inside}?" if inside.is_file() else ""
        raise UsageError(
            f"{path} is a directory, not a results store: a results store is the SQLite "
            f"file that `arenagym run --store PATH` writes (default {DEFAULT_STORE}){hint}"
        )
    if not store_path.is_file():
        raise UsageError(f"no results store at {path}; run `arenagym run` first")


def _rating_boards(store: Any, suite: str | None) -> list[Any]:
    if not store.match_rows(suite=suite):
        return []  # no games: do not require openskill
    from arenagym.benchmarks.ratings import build_rating_boards

    return build_rating_boards(store, suite=suite)


def _console() -> Console:
    # Built per call, not at import, so that it writes to the sys.stdout of the moment (tests).
    return Console(file=sys.stdout, width=max(Console(file=sys.stdout).width, 120))


# ----------------------------------------------------------------------------- show


def show(args: argparse.Namespace) -> int:
    """``arenagym show``: print the transcripts of an agent's episodes (and of the games it
    played) in a suite, from the store: with rich on a terminal, as plain text otherwise.

    ``args``: ``store``, ``suite``, ``agent``, and optionally ``task``, ``failed`` (only
    episodes that failed: agent/env errors, timeouts, and every stop reason that is not a
    success, :func:`~arenagym.benchmarks.transcripts.is_failing`; games the agent did not win)
    and ``limit`` (at most this many episodes; 0: all).
    """
    _check_store_path(args.store)
    limit = getattr(args, "limit", None)
    if limit is not None and limit < 0:
        raise UsageError(f"--limit must be >= 0 (0: every episode), got {limit}")
    with ResultsStore(args.store) as store:
        if args.suite not in store.suites():
            known = ", ".join(store.suites()) or "none"
            raise UsageError(f"no results for suite {args.suite!r} in {args.store} (has: {known})")
        rows = store.rows(suite=args.suite)
        games = store.match_rows(suite=args.suite)
        agents = sorted({row.agent for row in rows} | {n for game in games for n in game.lineup})
        if args.agent not in agents:
            raise UsageError(
                f"no agent {args.agent!r} in suite {args.suite!r} of {args.store} "
                f"(has: {_names(agents)})"
            )
        rows = [row for row in rows if row.agent == args.agent]
        games = [game for game in games if args.agent in game.lineup]
        if args.task is not None:
            tasks = sorted({row.task for row in rows} | {game.task for game in games})
            if args.task not in tasks:
                raise UsageError(
                    f"no task {args.task!r} for agent {args.agent!r} in suite {args.suite!r} "
                    f"(has: {_names(tasks)})"
                )
            rows = [row for row in rows if row.task == args.task]
            games = [game for game in games if game.task == args.task]
        if args.failed:
            rows = [row for row in rows if is_failing(row.stop_reason)]
            games = [game for game in games if _game_failed(game, args.agent)]
        rows.sort(key=lambda row: (row.task, row.seed, row.episode))
        games.sort(key=lambda game: (game.task, game.lineup, game.seed, game.episode))
        chosen: list[EpisodeRow | MatchRow] = [*rows, *games]
        shown = chosen[:limit] if limit else chosen
        console = Console(file=sys.stdout)
        rich = console.is_terminal
        what = "failed episodes" if args.failed else "episodes"
        if not chosen:
            print(f"no {what} of {args.agent} in suite {args.suite} to show")
            return 0
        for record in shown:
            if isinstance(record, MatchRow):
                turns = store.match_transcript(
                    record.suite, record.task, record.lineup, record.seed, record.episode
                )
                blocks = _game_blocks(record, turns)
            else:
                turns = store.transcript(
                    record.suite, record.agent, record.task, record.seed, record.episode
                )
                blocks = _episode_blocks(record, turns)
            if rich:
                _print_rich(console, blocks)
            else:
                _print_plain(blocks)
        if len(shown) < len(chosen):
            print(
                f"(showed {len(shown)} of {len(chosen)} {what}; --limit N shows more, "
                "--limit 0 all)"
            )
    return 0


def _names(names: Sequence[str], most: int = 20) -> str:
    shown = ", ".join(names[:most]) or "none"
    return shown + (f", ... ({len(names) - most} more)" if len(names) > most else "")


def _game_failed(game: MatchRow, player: str) -> bool:
    """Whether ``player`` failed ``game``: an error or timeout, its forfeit, a lower reward than
    another seat's, or (alone at the table) a stop reason that is not a success."""
    if game.is_error or game.stop_reason == "agent_timeout" or game.info.get("forfeit") == player:
        return True
    mine = [r for name, r in zip(game.lineup, game.rewards, strict=False) if name == player]
    others = [r for name, r in zip(game.lineup, game.rewards, strict=False) if name != player]
    if others:
        return bool(mine) and min(mine) < max(others)
    return is_failing(game.stop_reason)


# A transcript to print, independent of how: a title, lines about the episode, then per turn a
# header and labelled texts. Styles are rich's; plain text ignores them.
_Block = tuple[str, str, Any]  # (kind, style, content)


def _fmt(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def _turn_blocks(turns: list[dict[str, Any]] | None, unit: str) -> list[_Block]:
    if turns is None:
        return [("note", "dim", "(no transcript stored: recorded before transcripts were kept)")]
    if not turns:
        return [("note", "dim", "(no turns: the episode ended before the agent's first action)")]
    blocks: list[_Block] = []
    for turn in turns:
        if "omitted_turns" in turn:
            blocks.append(
                ("note", "yellow", f"… {turn['omitted_turns']} {unit}s omitted by the size cap …")
            )
            continue
        parts = [f"{unit} {turn.get('turn')}"]
        if "seat" in turn:
            parts.append(f"{turn['seat']} ({turn.get('player')})")
        if turn.get("latency_s") is not None:
            parts.append(f"{turn['latency_s']:.3f} s")
        tokens = [
            f"{turn[key]} {key.split('_')[0]}"
            for key in ("prompt_tokens", "completion_tokens")
            if turn.get(key) is not None
        ]
        if tokens:
            parts.append(" + ".join(tokens) + " tokens")
        if turn.get("reward") is not None:
            reward = f"reward {_fmt(turn['reward'])}"
            if turn.get("clean_reward") is not None and turn["clean_reward"] != turn["reward"]:
                reward += f" (clean {_fmt(turn['clean_reward'])})"
            components = turn.get("reward_components")
            if components:
                reward += " [" + ", ".join(f"{k}={_fmt(v)}" for k, v in components.items()) + "]"
            parts.append(reward)
        if turn.get("invalid_action"):
            parts.append("INVALID ACTION")
        if turn.get("clipped_chars"):
            parts.append(f"{turn['clipped_chars']} characters clipped")
        blocks.append(("turn", "bold cyan", " · ".join(parts)))
        blocks.append(("text", "observation", turn.get("observation") or ""))
        action = turn.get("action")
        blocks.append(
            ("text", "action", action if action is not None else None)
        )  # None: the call failed
        if turn.get("error"):
            blocks.append(("text", "error", turn["error"]))
    return blocks


def _episode_blocks(row: EpisodeRow, turns: list[dict[str, Any]] | None) -> list[_Block]:
    failed = is_failing(row.stop_reason)
    title = f"{row.suite} · {row.task} · seed {row.seed} · episode {row.episode} · {row.agent}"
    summary = (
        f"stop reason {row.stop_reason} · score {row.score:.3f} ({row.metric}) · reward "
        f"{row.reward:.3f} · clean reward {row.clean_reward:.3f} · {row.turns} turn"
        f"{'s' if row.turns != 1 else ''} · {row.duration_s:.1f} s"
    )
    blocks: list[_Block] = [
        ("title", "bold red" if failed else "bold green", title),
        ("line", "red" if row.stop_reason in ERROR_STOP_REASONS else "", summary),
    ]
    error = row.info.get("error")
    if error is not None:
        blocks.append(("line", "red", f"error: {error}"))
    return blocks + _turn_blocks(turns, "turn")


def _game_blocks(row: MatchRow, turns: list[dict[str, Any]] | None) -> list[_Block]:
    title = (
        f"{row.suite} · {row.task} · seed {row.seed} · game {row.episode} · "
        f"{' vs '.join(row.lineup)}"
    )
    rewards = ", ".join(f"{name} {r:g}" for name, r in zip(row.lineup, row.rewards, strict=False))
    summary = (
        f"stop reason {row.stop_reason} (seat 0) · rewards {rewards} · {row.moves} moves · "
        f"{row.duration_s:.1f} s"
    )
    blocks: list[_Block] = [
        ("title", "bold red" if row.is_error else "bold", title),
        ("line", "red" if row.is_error else "", summary),
    ]
    for key in ("forfeit", "error"):
        if row.info.get(key) is not None:
            blocks.append(("line", "red", f"{key}: {row.info[key]}"))
    return blocks + _turn_blocks(turns, "move")


def _print_plain(blocks: Iterable[_Block]) -> None:
    """Print a transcript as plain text (output that is not a terminal: a file, a pipe)."""
    for kind, style, content in blocks:
        if kind == "title":
            print(f"\n=== {content}")
        elif kind == "turn":
            print(f"--- {content}")
        elif kind == "text":
            if content is None:
                print(f"{style}: (none: the agent call failed or timed out)")
                continue
            print(f"{style}:")
            for line in str(content).splitlines() or [""]:
                print(f"  | {line}")
        else:
            print(content)


def _print_rich(console: Console, blocks: Iterable[_Block]) -> None:
    """Print a transcript with rich (a terminal). Texts are never read as markup."""
    colours = {"observation": "blue", "action": "green", "error": "red"}
    for kind, style, content in blocks:
        if kind == "title":
            console.rule(Text(str(content), style=style))
        elif kind == "turn":
            console.print(Text(str(content), style=style))
        elif kind == "text":
            text = (
                Text("(none: the agent call failed or timed out)", style="dim italic")
                if content is None
                else Text(str(content))
            )
            console.print(Panel(text, title=style, title_align="left", border_style=colours[style]))
        else:
            console.print(Text(str(content), style=style))
