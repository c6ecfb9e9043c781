"""The match runner: play a suite's multi-agent games between its players, resumably.

For every ``[[matches]]`` task of a suite, every ordered lineup of players — each pair in both
seatings for two-player games, each player alone for one-player games — plays ``episodes`` games
per seed, over the task's PettingZoo AEC env (:func:`~arenagym.envs.core.registration.
make_multi_agent`). Every finished game is one :class:`~arenagym.benchmarks.store.MatchRow`,
written atomically as soon as it ends; games already in the store are skipped, so a crashed or
interrupted run picks up where it stopped and never records a game twice.

Agents get ``reset(system_prompt)`` and ``act(observation)`` per the Agent protocol; game-aware
agents (the scripted TextArena opponents) also get ``observe_game(view)`` before each move. Each
game gets fresh agents. An exception from an agent (``SystemExit`` and ``KeyboardInterrupt``
raised by its code included) ends the game with ``agent_error``, and the agent forfeits it (-1
for it, +1 for the others; rated, so a losing seat cannot void its loss by raising); one from
the env ends it with ``env_error`` (not rated). An agent that runs past the suite's time limits (``agent_call_timeout_s`` for
one call, ``episode_timeout_s`` for all of one seat's calls in a game) ends the game with
``agent_timeout`` and forfeits it (-1 for it, +1 for the others; rated), as does a seat whose
agent stops its episode with an :class:`~arenagym.agents.agent.EpisodeStop` whose reason is the
agent's to give (:func:`~arenagym.benchmarks.runner.check_agent_stop`; any other
``EpisodeStop`` is an ``agent_error`` saying what was refused). Time limits beyond
``threading.TIMEOUT_MAX`` mean no limit. Up to ``concurrency`` games run at once, each on a
daemon thread of its own, and agent code runs on one more per game (see
:class:`~arenagym.benchmarks.runner.AgentThread`): a hung agent never holds up the run or the
process's exit, and a real Ctrl-C stops the run at once, keeping every game recorded.
API keys in the players' specs or kwargs never reach the store, a transcript or a message (shown
as ``***``).

Every game's transcript — each seat's moves in the order they were made, with the seat, the
player, what it saw and wrote, the step's reward for it, the call's latency and token counts (see
:mod:`arenagym.benchmarks.transcripts`) — is stored with its row
(:meth:`~arenagym.benchmarks.store.ResultsStore.match_transcript`). With ``limit``, each lineup
of a task plays only its first N games (seed by seed), so every pairing keeps both seatings.

Why a game has a loop of its own rather than :func:`~arenagym.agents.episode.aplay_episode` (the
episode loop of the benchmark runner and the rollout engine): a game is a PettingZoo AEC env with
several seats, whose turn order comes from ``agent_iter``, whose rewards are read per seat from
``env.last()``, whose seats end at different times, and where a seat whose agent fails forfeits.
What is the same is shared: an agent call is judged as the runner judges it
(:func:`~arenagym.benchmarks.runner.agent_call_result`, the same time limits and refused stop
reasons), a seat's end is the env's reason (:func:`~arenagym.agents.episode.env_ending`), and
the summary is the runner's :class:`~arenagym.benchmarks.runner.RunSummary`.

Example:
    >>> from arenagym.benchmarks.store import ResultsStore
    >>> from arenagym.benchmarks.suite import Player, MatchTask, Suite
    >>> opponents = "arenagym.envs.textarena.opponents:"
    >>> suite = Suite("demo", (), players=(Player("random", opponents + "RandomLegalOpponent"),
    ...                                    Player("search", opponents + "SearchOpponent")),
    ...               matches=(MatchTask("nim", "TextArena/Nim-AEC-v0", seeds=(0, 1)),))
    >>> store = ResultsStore(":memory:")
    >>> run_matches(suite, store, progress=False).ran
    4
    >>> run_matches(suite, store, progress=False).ran   # resumed: nothing left to play
    0
"""

from __future__ import annotations

import itertools
import json
import threading
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, replace
from typing import Any

from arenagym.agents.agent import EpisodeStop
from arenagym.agents.episode import EpisodeFailure, close_quietly, describe, env_ending
from arenagym.agents.specs import (
    load_agent,
    redact_secrets,
    redact_spec,
    resolve_agent_factory,
    secret_values,
)
from arenagym.agents.thread_batching import thread_batcher
from arenagym.benchmarks.runner import (
    FAILED_STOP_REASONS,
    AgentClock,
    AgentThread,
    FailureLog,
    RunSetupError,
    RunSummary,
    _progress_bar,
    agent_call_result,
    check_limit,
    check_seeds,
    limited,
    stop_details,
    wait_timeout,
)
from arenagym.benchmarks.store import AGENT_TIMEOUT, MatchRow, ResultsStore
from arenagym.benchmarks.suite import (
    DEFAULT_AGENT_CALL_TIMEOUT_S,
    DEFAULT_EPISODE_TIMEOUT_S,
    MatchTask,
    Player,
    Suite,
    episode_reset_seed,
)
from arenagym.benchmarks.transcripts import (
    EncodedTranscript,
    agent_token_counts,
    agent_turn_count,
    as_text,
    encode_transcript,
    fill_step,
    new_turn,
)


@dataclass(frozen=True)
class _Game:
    task: MatchTask
    lineup: tuple[Player, ...]
    seed: int
    episode: int

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(player.name for player in self.lineup)


def lineups(players: Sequence[Player], seats: int) -> list[tuple[Player, ...]]:
    """Every ordered lineup of distinct players for ``seats`` seats (1: each player alone)."""
    return list(itertools.permutations(players, seats))


def game_keys(task: MatchTask, limit: int | None = None) -> Iterator[tuple[int, int]]:
    """The ``(seed, episode)`` of each game a lineup plays in ``task``, seed by seed; only the
    first ``limit`` with a limit.

    >>> list(game_keys(MatchTask("nim", "TextArena/Nim-AEC-v0", episodes=2, seeds=(5, 6)), 3))
    [(5, 0), (5, 1), (6, 0)]
    """
    keys: Iterable[tuple[int, int]] = (
        (seed, episode) for seed in task.seeds for episode in range(task.episodes)
    )
    return iter(itertools.islice(keys, limit))


def run_matches(
    suite: Suite,
    store: ResultsStore,
    extra_players: Sequence[Player] = (),
    concurrency: int = 2,
    progress: bool = True,
    opponents: Sequence[str] | None = None,
    *,
    agent_call_timeout_s: float | None = None,
    episode_timeout_s: float | None = None,
    limit: int | None = None,
    start_game: GameStarter | None = None,
) -> RunSummary:
    """Play the games of ``suite.matches`` that ``store`` lacks; see the module doc.

    ``extra_players`` join the suite's players (e.g. the ``--agent`` of ``arenagym run``);
    with ``opponents`` (names of suite players) they meet only those players (and each other),
    which cuts a new agent's games while its rating stays tied to the pool through them.
    ``agent_call_timeout_s`` and ``episode_timeout_s`` override the suite's time limits.
    ``limit``: each lineup of a task plays (and counts) only its first ``limit`` games.
    ``start_game`` plays the games elsewhere (:data:`GameStarter`, e.g. on a Ray cluster:
    :func:`arenagym.benchmarks.distributed.ray_games`); this process still checks the players
    and envs, skips finished games and alone writes the store; ``concurrency`` bounds the games
    in flight.
    Raises :class:`~arenagym.benchmarks.runner.RunSetupError` if a player's agent or a task's
    env cannot be built (before any game is played).
    """
    from arenagym.envs.core.registration import make_multi_agent

    if not isinstance(concurrency, int) or concurrency < 1:
        raise ValueError(f"concurrency must be an int >= 1, got {concurrency!r}")
    check_limit(limit)
    limits = AgentClock.for_suite(suite, agent_call_timeout_s, episode_timeout_s)
    players = list(suite.players)
    for extra in extra_players:
        if extra.name in {p.name for p in players}:
            raise RunSetupError(f"player name {extra.name!r} is already a player of the suite")
        players.append(extra)
    # LLM players answer under the suite's [generation] budgets where they set none
    players = [
        replace(player, kwargs=suite.agent_kwargs(player.agent, player.kwargs))
        for player in players
    ]
    for player in players:
        _check_player(player)
    seats: dict[str, int] = {}
    for task in suite.matches:
        check_seeds(f"match task {task.name!r}", task.seeds)
        try:
            env = make_multi_agent(task.env, **task.kwargs)
        except Exception as error:
            raise RunSetupError(
                f"match task {task.name!r}: make_multi_agent({task.env!r}) failed: "
                f"{type(error).__name__}: {error}"
            ) from None
        seats[task.name] = len(env.possible_agents)
        env.close()
    extra_names = {p.name for p in extra_players}
    allowed = None
    if opponents is not None:
        known = [p.name for p in suite.players]
        unknown = [name for name in opponents if name not in known]
        if unknown:
            raise RunSetupError(
                f"--opponents: {', '.join(map(repr, unknown))} is not a player of suite "
                f"{suite.name!r} (its players: {', '.join(known)})"
            )
        allowed = extra_names | set(opponents)

    def wanted(lineup: tuple[Player, ...]) -> bool:
        names = {p.name for p in lineup}
        return allowed is None or not names & extra_names or names <= allowed

    # the lineups are few (players ** seats); the games are counted, never listed
    task_lineups = {
        task.name: [lineup for lineup in lineups(players, seats[task.name]) if wanted(lineup)]
        for task in suite.matches
    }
    total = sum(
        len(task_lineups[task.name]) * limited(len(task.seeds) * task.episodes, limit)
        for task in suite.matches
    )
    finished = store.finished_matches(suite.name)
    done = _count_done_games(suite.matches, task_lineups, finished, limit)
    todo: Iterator[_Game] = (
        _Game(task, lineup, seed, episode)
        for task in suite.matches
        for lineup in task_lineups[task.name]
        for seed, episode in game_keys(task, limit)
        if (task.name, tuple(p.name for p in lineup), seed, episode) not in finished
    )
    started = time.perf_counter()
    reasons: Counter[str] = Counter()
    failures = FailureLog()
    label_agent = f"{len(players)} players"
    stop = threading.Event()  # set when the run stops early: games in flight end at their next move
    with _progress_bar(progress, suite.name, label_agent, total, done, "games") as advance:
        pending: set[Future[tuple[MatchRow, EncodedTranscript]]] = set()
        try:
            while True:
                while len(pending) < concurrency:
                    game = next(todo, None)
                    if game is None:
                        break
                    pending.add((start_game or _start_game)(suite.name, game, limits, stop))
                if not pending:
                    break
                finished_now, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in finished_now:
                    row, moves = future.result()
                    store.add_match(row, moves)
                    reasons[row.stop_reason] += 1
                    failures.add_row(row)
                    advance(row.stop_reason in FAILED_STOP_REASONS)
        except BaseException:
            stop.set()
            for future in pending:
                future.cancel()
            raise
    return RunSummary.count(suite.name, label_agent, total, done, reasons, started, failures)


def _check_player(player: Player) -> None:
    """Build ``player``'s agent once, raising :class:`RunSetupError` if it cannot be built.

    The build runs on a daemon thread, so whatever the agent's code raises (``SystemExit``
    too) comes back as its future's exception, while a real Ctrl-C during the wait still
    interrupts the run.
    """
    error: BaseException | None
    try:
        resolve_agent_factory(player.agent)
    except Exception as unresolved:
        error = unresolved
    else:
        builder = AgentThread(f"arenagym-agent-setup:{player.name}")
        try:
            error = builder.submit(load_agent, player.agent, **player.kwargs).exception()
        finally:
            builder.close()
    if error is not None:
        raise RunSetupError(
            redact_secrets(
                f"cannot build player {player.name!r} ({redact_spec(player.agent)}): "
                f"{type(error).__name__}: {error}",
                secret_values(player.agent, player.kwargs),
            )
        ) from None


def _count_done_games(
    tasks: Sequence[MatchTask],
    task_lineups: dict[str, list[tuple[Player, ...]]],
    finished: set[tuple[str, tuple[str, ...], int, int]],
    limit: int | None = None,
) -> int:
    """How many of the games to play (each lineup's first ``limit``) are among ``finished``."""
    if limit is not None:
        return sum(
            (task.name, tuple(p.name for p in lineup), seed, episode) in finished
            for task in tasks
            for lineup in task_lineups[task.name]
            for seed, episode in game_keys(task, limit)
        )
    shape = {
        task.name: (
            {tuple(p.name for p in lineup) for lineup in task_lineups[task.name]},
            frozenset(task.seeds),
            task.episodes,
        )
        for task in tasks
    }
    count = 0
    for task, lineup, seed, episode in finished:
        if task in shape:
            names, seeds, episodes = shape[task]
            count += lineup in names and seed in seeds and 0 <= episode < episodes
    return count


#: How :func:`run_matches` plays a game elsewhere (``start_game=``): called with the suite's
#: name, the game, the agents' time limits and the run's stop event, it returns at once a future
#: of the game's row and encoded transcript (:func:`play_planned_game` run where it plays).
GameStarter = Callable[
    [str, "_Game", AgentClock, threading.Event], Future[tuple[MatchRow, EncodedTranscript]]
]


def play_planned_game(
    suite: str, game: _Game, call_limit_s: float, episode_limit_s: float
) -> tuple[MatchRow, EncodedTranscript]:
    """Play ``game`` of suite ``suite`` in this process, as :func:`run_matches` plays it locally,
    and return its row and encoded transcript: what a remote worker runs.

    Example:
        >>> opponents = "arenagym.envs.textarena.opponents:"
        >>> game = _Game(MatchTask("nim", "TextArena/Nim-AEC-v0"),
        ...              (Player("a", opponents + "FirstLegalOpponent"),
        ...               Player("b", opponents + "FirstLegalOpponent")), 0, 0)
        >>> row, transcript = play_planned_game("demo", game, 600, 3600)
        >>> row.lineup, row.stop_reason in {"won", "lost", "draw", "completed"}
        (('a', 'b'), True)
    """
    moves: list[dict[str, Any]] = []
    limits = AgentClock(call_limit_s, episode_limit_s)
    row = play_game(suite, game, limits=limits, transcript=moves)
    return row, encode_transcript(moves)


def _start_game(
    suite: str, game: _Game, limits: AgentClock, stop: threading.Event
) -> Future[tuple[MatchRow, EncodedTranscript]]:
    """Play ``game`` on a daemon thread of its own; the future holds its row and transcript."""

    def play() -> tuple[MatchRow, EncodedTranscript]:
        moves: list[dict[str, Any]] = []
        row = play_game(suite, game, limits=limits, stop=stop, transcript=moves)
        return row, encode_transcript(moves)  # compressed here, on the game's thread

    runner = AgentThread(f"arenagym-game:{game.task.name}:{'-'.join(game.names)}:{game.seed}")
    future = runner.submit(play)
    runner.close()  # the thread ends with the game
    return future


class _SeatEnded(Exception):
    """An agent call of ``seat`` ended the game: the agent stopped (an accepted
    :class:`~arenagym.agents.agent.EpisodeStop`), or the call failed or timed out (an
    :class:`~arenagym.agents.episode.EpisodeFailure`)."""

    def __init__(self, seat: str, cause: EpisodeStop | EpisodeFailure) -> None:
        super().__init__(cause.stop_reason)
        self.seat = seat
        self.cause = cause


def play_game(
    suite: str,
    game: _Game,
    *,
    limits: AgentClock | None = None,
    stop: threading.Event | None = None,
    transcript: list[dict[str, Any]] | None = None,
) -> MatchRow:
    """Play one game to its end and return its row (errors become ``*_error`` rows).

    ``limits`` are the agents' time limits (default: the suite defaults); once ``stop`` is set
    the game ends at its next move (``stop_reason="unfinished"``). Given a ``transcript`` list,
    every move is appended to it (a turn of :mod:`arenagym.benchmarks.transcripts` with ``seat``
    and ``player``; secrets hidden), the move that ended the game with its ``error``.
    """
    from arenagym.envs.core.registration import make_multi_agent

    limits = limits or AgentClock(DEFAULT_AGENT_CALL_TIMEOUT_S, DEFAULT_EPISODE_TIMEOUT_S)
    task = game.task
    secrets = frozenset().union(*(secret_values(p.agent, p.kwargs) for p in game.lineup))
    reset_seed = episode_reset_seed(game.seed, game.episode)
    clock = time.perf_counter()
    details: dict[str, Any] = {}
    moves = 0
    stop_reason = ""
    forfeit: str | None = None
    rewards = tuple(0.0 for _ in game.lineup)
    env: Any = None
    batchers: dict[int, Any] = {}
    calls = AgentThread(f"arenagym-agent:{task.name}:{'-'.join(game.names)}:{game.seed}")
    try:
        env = make_multi_agent(task.env, **task.kwargs)
        env.reset(seed=reset_seed)
        players = dict(zip(env.possible_agents, game.lineup, strict=True))
        agent_call = _seat_caller(calls, players, limits)
        totals = dict.fromkeys(env.possible_agents, 0.0)
        seat_reasons: dict[str, str] = {}
        try:
            agents = {}
            for agent_id, player in players.items():
                agents[agent_id] = agent_call(
                    agent_id, "building the agent", load_agent, player.agent, **player.kwargs
                )
                prompt = str(env.infos[agent_id].get("system_prompt", ""))
                agent_call(agent_id, "reset()", agents[agent_id].reset, prompt)
            # each model backend the game uses waits for this game's moves when it batches
            batchers = {
                id(backend): thread_batcher(backend)
                for backend in (getattr(agent, "backend", None) for agent in agents.values())
                if backend is not None
            }
            for batcher in batchers.values():
                batcher.episode_started()
            for agent_id in env.agent_iter():
                if stop is not None and stop.is_set():
                    break
                observation, reward, terminated, truncated, info = env.last()
                totals[agent_id] += float(reward)
                if terminated or truncated:
                    seat_reasons[agent_id] = env_ending(terminated, truncated, info)
                    if "error" in info and seat_reasons[agent_id] == "env_error":
                        details["error"] = info["error"]
                    env.step(None)
                    continue
                if moves >= task.max_steps:
                    stop_reason = "max_steps"
                    break
                view = getattr(env, "game_view", None)
                observe = getattr(agents[agent_id], "observe_game", None)
                if callable(view) and callable(observe):
                    agent_call(agent_id, "observe_game()", observe, view(agent_id))
                move = _new_move(moves + 1, agent_id, players[agent_id].name, observation)
                if transcript is not None:
                    transcript.append(move)  # before the call: a failed move is kept too
                before = agent_turn_count(agents[agent_id])
                began = time.perf_counter()
                try:
                    action = agent_call(
                        agent_id, f"act() of move {moves + 1}", agents[agent_id].act, observation
                    )
                finally:
                    move["latency_s"] = round(time.perf_counter() - began, 4)
                move["action"] = as_text(action)
                move["prompt_tokens"], move["completion_tokens"] = agent_token_counts(
                    agents[agent_id], before
                )
                env.step(action)
                moves += 1
                _fill_move(move, env, agent_id)
        except _SeatEnded as ended:  # the seat forfeits
            name = players[ended.seat].name
            forfeit = ended.seat
            stop_reason = ended.cause.stop_reason
            if isinstance(ended.cause, EpisodeStop):  # e.g. an LLM out of context
                details["stopped"] = {**stop_details(ended.cause), "seat": name}
            else:  # the agent's own failure (it raised, or ran out of time)
                if stop_reason == AGENT_TIMEOUT:
                    details["timed_out"] = name
                details["error"] = f"{name}: {ended.cause.error!r}"
                details["traceback"] = ended.cause.trace_text
        if forfeit is not None and len(env.possible_agents) > 1:
            totals = {a: -1.0 if a == forfeit else 1.0 for a in env.possible_agents}
            details["forfeit"] = players[forfeit].name
        rewards = tuple(totals[a] for a in env.possible_agents)
        if seat_reasons:
            details["stop_reasons"] = seat_reasons
        if not stop_reason and seat_reasons:  # seat 0's view: won/lost/draw/solved/...
            first = env.possible_agents[0]
            stop_reason = seat_reasons.get(first, next(iter(seat_reasons.values())))
    except BaseException as error:
        if isinstance(error, KeyboardInterrupt) and threading.current_thread() is (
            threading.main_thread()
        ):
            raise  # called on the main thread: a real Ctrl-C
        stop_reason = "env_error"
        details["error"] = describe(error)
        details["traceback"] = traceback.format_exc()
    finally:
        calls.close()
        for batcher in batchers.values():
            batcher.episode_finished()
        close_error = close_quietly(env) if env is not None else None
        if close_error is not None:
            details["close_error"] = close_error
    if transcript:
        last = transcript[-1]
        if last["reward"] is None:  # the move that did not happen: say what ended the game
            stopped = details.get("stopped")
            last["error"] = details.get("error") or (
                f"{stop_reason}: {stopped.get('message')}" if isinstance(stopped, dict) else None
            )
        transcript[:] = redact_secrets(json.loads(json.dumps(transcript, default=repr)), secrets)
    return MatchRow(
        suite=suite,
        task=task.name,
        env_id=task.env,
        env_kwargs=redact_secrets(task.kwargs, secrets),
        lineup=game.names,
        seed=game.seed,
        episode=game.episode,
        reset_seed=reset_seed,
        rewards=rewards,
        moves=moves,
        stop_reason=stop_reason or "unfinished",
        info=redact_secrets(json.loads(json.dumps(details, default=repr)), secrets),
        finished_at=time.time(),
        duration_s=time.perf_counter() - clock,
    )


def _new_move(number: int, seat: str, player: str, observation: Any) -> dict[str, Any]:
    """A transcript turn for move ``number`` of ``seat`` (played by ``player``)."""
    turn = new_turn(number, observation)
    return {"turn": turn.pop("turn"), "seat": seat, "player": player, **turn}


def _fill_move(move: dict[str, Any], env: Any, seat: str) -> None:
    """Write the env's answer to ``seat``'s move (its step reward and info) into ``move``; an
    env whose ``rewards``/``infos`` cannot be read leaves the move without them."""
    try:
        reward = env.rewards.get(seat, 0.0)
        info = env.infos.get(seat, {})
    except Exception:
        return
    fill_step(move, reward, info if isinstance(info, dict) else {})


def _seat_caller(
    calls: AgentThread, players: dict[str, Player], limits: AgentClock
) -> Callable[..., Any]:
    """``call(seat, what, function, *args, **kwargs)``: run an agent's call on the game's agent
    thread within the seat's time left; raise :class:`_SeatEnded` if it stops, raises or times
    out (the game thread never runs agent code, so it can always stop waiting). The outcome is
    judged as the benchmark runner judges its episodes' calls
    (:func:`~arenagym.benchmarks.runner.agent_call_result`,
    :meth:`~arenagym.benchmarks.runner.AgentClock.expired`); only the wait differs: this one
    blocks the game's own thread, the runner's awaits on its event loop."""
    clocks = {seat: AgentClock(limits.call_limit_s, limits.episode_limit_s) for seat in players}

    def call(seat: str, what: str, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        clock = clocks[seat]
        try:
            limit = clock.next_limit()
            if limit <= 0:
                raise clock.expired(what, limit)
            future = calls.submit(function, *args, **kwargs)
            began = time.perf_counter()
            finished, _ = wait([future], timeout=wait_timeout(limit))
            clock.spend(time.perf_counter() - began)
            if not finished:
                raise clock.expired(what, limit, calls.stack())
            return agent_call_result(future)
        except (EpisodeStop, EpisodeFailure) as ended:
            raise _SeatEnded(seat, ended) from ended

    return call
