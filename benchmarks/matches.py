"""The match runner: play a suite's multi-agent games between its players, resumably.

For every ``[[matches]]`` task of a suite, every ordered lineup of players — each pair in both
seatings for two-player games, each player alone for one-player games — plays ``episodes`` games
per seed, over the task's PettingZoo AEC env (:func:`~arenagym.envs.core.registration.
make_multi_agent`). Every finished game is one :class:`~arenagym.benchmarks.store.MatchRow`,
written atomically as soon as it ends; games already in the store are skipped, so a crashed or
interrupted run picks up where it stopped and never records a game twice.

Agents get ``reset(system_prompt)`` and ``act(observation)`` per the Agent protocol; game-aware
agents (the scripted TextArena opponents) also get ``observe_game(view)`` before each move. Each
game gets fresh agents. An exception from an agent ends the game with ``agent_error`` (not
rated); one from the env with ``env_error``. Games run in a thread pool of ``concurrency``.
API keys in the players' specs or kwargs never reach the store or a message (shown as ``***``).

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
import time
import traceback
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from typing import Any

from arenagym.agents.base import (
    EpisodeStop,
    load_agent,
    redact_secrets,
    redact_spec,
    resolve_agent_factory,
    secret_values,
)
from arenagym.agents.thread_batching import thread_batcher
from arenagym.benchmarks.runner import RunSetupError, _progress_bar
from arenagym.benchmarks.store import MatchRow, ResultsStore
from arenagym.benchmarks.suite import MatchTask, Player, Suite, episode_reset_seed


@dataclass(frozen=True)
class MatchSummary:
    """What :func:`run_matches` did."""

    suite: str
    total: int
    skipped: int
    ran: int
    failed: int
    duration_s: float
    stop_reasons: dict[str, int] = field(default_factory=dict)


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


def run_matches(
    suite: Suite,
    store: ResultsStore,
    extra_players: Sequence[Player] = (),
    concurrency: int = 2,
    progress: bool = True,
    opponents: Sequence[str] | None = None,
) -> MatchSummary:
    """Play the games of ``suite.matches`` that ``store`` lacks; see the module doc.

    ``extra_players`` join the suite's players (e.g. the ``--agent`` of ``arenagym run``);
    with ``opponents`` (names of suite players) they meet only those players (and each other),
    which cuts a new agent's games while its rating stays tied to the pool through them.
    Raises :class:`~arenagym.benchmarks.runner.RunSetupError` if a player's agent or a task's
    env cannot be built (before any game is played).
    """
    from arenagym.envs.core.registration import make_multi_agent

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
        try:
            resolve_agent_factory(player.agent)
            load_agent(player.agent, **player.kwargs)
        except Exception as error:
            raise RunSetupError(
                redact_secrets(
                    f"cannot build player {player.name!r} ({redact_spec(player.agent)}): "
                    f"{type(error).__name__}: {error}",
                    secret_values(player.agent, player.kwargs),
                )
            ) from None
    seats: dict[str, int] = {}
    for task in suite.matches:
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

    games = [
        _Game(task, lineup, seed, episode)
        for task in suite.matches
        for lineup in lineups(players, seats[task.name])
        if wanted(lineup)
        for seed in task.seeds
        for episode in range(task.episodes)
    ]
    finished = store.finished_matches(suite.name)
    todo = [g for g in games if (g.task.name, g.names, g.seed, g.episode) not in finished]
    started = time.perf_counter()
    reasons: Counter[str] = Counter()
    label_agent = f"{len(players)} players"
    with (
        _progress_bar(
            progress, suite.name, label_agent, len(games), len(games) - len(todo)
        ) as advance,
        ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="arenagym-match") as pool,
    ):
        pending: set[Future[MatchRow]] = set()
        queue = iter(todo)
        try:
            while True:
                while len(pending) < concurrency:
                    game = next(queue, None)
                    if game is None:
                        break
                    pending.add(pool.submit(play_game, suite.name, game))
                if not pending:
                    break
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    row = future.result()
                    store.add_match(row)
                    reasons[row.stop_reason] += 1
                    advance(row.is_error)
        except BaseException:
            for future in pending:
                future.cancel()
            raise
    return MatchSummary(
        suite=suite.name,
        total=len(games),
        skipped=len(games) - len(todo),
        ran=len(todo),
        failed=reasons["agent_error"] + reasons["env_error"],
        duration_s=time.perf_counter() - started,
        stop_reasons=dict(reasons),
    )


def play_game(suite: str, game: _Game) -> MatchRow:
    """Play one game to its end and return its row (errors become ``*_error`` rows)."""
    from arenagym.envs.core.registration import make_multi_agent

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
    try:
        env = make_multi_agent(task.env, **task.kwargs)
        env.reset(seed=reset_seed)
        agents = {}
        for agent_id, player in zip(env.possible_agents, game.lineup, strict=True):
            agents[agent_id] = load_agent(player.agent, **player.kwargs)
            agents[agent_id].reset(str(env.infos[agent_id].get("system_prompt", "")))
        # each model backend the game uses waits for this game's moves when it batches
        batchers = {
            id(backend): thread_batcher(backend)
            for backend in (getattr(agent, "backend", None) for agent in agents.values())
            if backend is not None
        }
        for batcher in batchers.values():
            batcher.episode_started()
        totals = dict.fromkeys(env.possible_agents, 0.0)
        seat_reasons: dict[str, str] = {}
        for agent_id in env.agent_iter():
            observation, reward, terminated, truncated, info = env.last()
            totals[agent_id] += float(reward)
            if terminated or truncated:
                seat_reasons[agent_id] = str(info.get("stop_reason", "terminated"))
                if "error" in info and info.get("stop_reason") == "env_error":
                    details["error"] = info["error"]
                env.step(None)
                continue
            if moves >= task.max_steps:
                stop_reason = "max_steps"
                break
            view = getattr(env, "game_view", None)
            observe = getattr(agents[agent_id], "observe_game", None)
            if callable(view) and callable(observe):
                observe(view(agent_id))
            try:
                action = agents[agent_id].act(observation)
            except EpisodeStop as stop:  # e.g. an LLM out of context: it forfeits, no error
                stop_reason = stop.stop_reason
                forfeit = agent_id
                details["stopped"] = {
                    "seat": game.lineup[env.possible_agents.index(agent_id)].name,
                    "message": str(stop),
                    **stop.info,
                }
                break
            except Exception as error:
                stop_reason = "agent_error"
                details["error"] = (
                    f"{game.lineup[env.possible_agents.index(agent_id)].name}: {error!r}"
                )
                details["traceback"] = traceback.format_exc()
                break
            env.step(action)
            moves += 1
        if forfeit is not None and len(env.possible_agents) > 1:
            totals = {a: -1.0 if a == forfeit else 1.0 for a in env.possible_agents}
        rewards = tuple(totals[a] for a in env.possible_agents)
        if seat_reasons:
            details["stop_reasons"] = seat_reasons
        if not stop_reason and seat_reasons:  # seat 0's view: won/lost/draw/solved/...
            first = env.possible_agents[0]
            stop_reason = seat_reasons.get(first, next(iter(seat_reasons.values())))
    except Exception as error:
        stop_reason = "env_error"
        details["error"] = f"{type(error).__name__}: {error}"
        details["traceback"] = traceback.format_exc()
    finally:
        for batcher in batchers.values():
            batcher.episode_finished()
        if env is not None:
            try:
                env.close()
            except Exception as error:
                details["close_error"] = repr(error)
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
