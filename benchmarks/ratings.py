"""Ratings of agents from the games they played against each other: OpenSkill, with W/D/L.

Games (:class:`~arenagym.benchmarks.store.MatchRow`) are rated with the ``openskill`` library's
Plackett-Luce model (a Bayesian TrueSkill-like model; not hand-written math), once per game
(task) and once over all games (overall). Each two-player game is one match ranked by the seats'
rewards (equal rewards: a draw). In one-player games every agent plays the same seeded puzzle
alone; the agents that played one puzzle form one free-for-all match ranked by their rewards,
and an agent's W/D/L there counts solved (reward >= 1) as a win and anything else as a loss.
Games that ended in an env error are not rated (they are counted as errors); a game that an
agent's error or time limit ended is rated as that agent's forfeit (``info["forfeit"]``).

Games are rated in a fixed order (task, seed, episode, lineup) — not in the order they were
played — so a resumed or concurrent run gives the same ratings as a straight one. Agents are
ranked by the ordinal ``mu - 3 sigma`` (a conservative skill estimate).

Example:
    >>> from arenagym.benchmarks.store import MatchRow
    >>> def game(a, b, rewards, seed):
    ...     return MatchRow(suite="s", task="ttt", env_id="E", env_kwargs={}, lineup=(a, b),
    ...                     seed=seed, episode=0, reset_seed=seed, rewards=rewards, moves=5,
    ...                     stop_reason="won")
    >>> rows = [game("strong", "weak", (1.0, -1.0), s) for s in range(3)]
    >>> board = rate_matches("s", rows)
    >>> [(p.player, p.overall.record) for p in board.players]
    [('strong', (3, 0, 0)), ('weak', (0, 0, 3))]
    >>> board.players[0].overall.mu > 25 > board.players[1].overall.mu
    True
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from arenagym.benchmarks.store import MatchRow


@dataclass
class Rating:
    """One player's skill estimate and record in one pool (a game, or overall)."""

    mu: float
    sigma: float
    wins: int = 0
    draws: int = 0
    losses: int = 0
    errors: int = 0

    @property
    def ordinal(self) -> float:
        """``mu - 3 sigma``: what agents are ranked by."""
        return self.mu - 3 * self.sigma

    @property
    def record(self) -> tuple[int, int, int]:
        """``(wins, draws, losses)``."""
        return (self.wins, self.draws, self.losses)

    @property
    def games(self) -> int:
        """Rated games played."""
        return self.wins + self.draws + self.losses


@dataclass
class PlayerRatings:
    """A leaderboard line: a player's overall rating and its rating in each game."""

    player: str
    overall: Rating
    games: dict[str, Rating] = field(default_factory=dict)


@dataclass(frozen=True)
class RatingBoard:
    """A suite's rated players, best first; ``games`` are the columns."""

    suite: str
    games: tuple[str, ...]
    players: tuple[PlayerRatings, ...]
    n_games: int
    n_errors: int


class _Pool:
    """Ratings of the players of one pool, updated by the openskill model."""

    def __init__(self, model: Any) -> None:
        self.model = model
        self.ratings: dict[str, Any] = {}
        self.records: dict[str, Rating] = {}

    def _get(self, player: str) -> Any:
        if player not in self.ratings:
            self.ratings[player] = self.model.rating(name=player)
            self.records[player] = Rating(self.ratings[player].mu, self.ratings[player].sigma)
        return self.ratings[player]

    def rate(self, players: Sequence[str], scores: Sequence[float]) -> None:
        """Update the ratings of ``players`` (distinct) after a match with these scores."""
        teams = [[self._get(p)] for p in players]
        ranks = [-score for score in scores]  # openskill: a lower rank is better
        rated = self.model.rate(teams, ranks=ranks)
        for player, (rating,) in zip(players, rated, strict=True):
            self.ratings[player] = rating
            self.records[player].mu, self.records[player].sigma = rating.mu, rating.sigma

    def record(self, player: str, outcome: str) -> None:
        """Count a ``"win"``, ``"draw"``, ``"loss"`` or ``"error"`` for ``player``."""
        self._get(player)
        entry = self.records[player]
        if outcome == "win":
            entry.wins += 1
        elif outcome == "draw":
            entry.draws += 1
        elif outcome == "loss":
            entry.losses += 1
        else:
            entry.errors += 1


def _model() -> Any:
    try:
        from openskill.models import PlackettLuce
    except ImportError as error:
        raise ImportError(
            "rating games needs the openskill package: pip install 'arenagym[textarena]' "
            f"(or pip install openskill) ({error})"
        ) from error
    return PlackettLuce()


def rate_matches(suite: str, rows: Iterable[MatchRow]) -> RatingBoard:
    """Rate the games of ``suite`` in ``rows`` per game and overall (see the module doc)."""
    model = _model()
    rows = sorted(
        (row for row in rows if row.suite == suite),
        key=lambda r: (r.task, r.seed, r.episode, r.lineup),
    )
    overall = _Pool(model)
    per_game: dict[str, _Pool] = defaultdict(lambda: _Pool(model))
    # one-player games: the agents that played one puzzle (task, seed, episode) form one match
    solo: dict[tuple[str, int, int], list[MatchRow]] = defaultdict(list)
    n_errors = 0
    for row in rows:
        pools = (overall, per_game[row.task])
        if row.is_error and "forfeit" not in row.info:  # an env fault: nobody lost the game
            n_errors += 1
            for pool in pools:
                for player in row.lineup:
                    pool.record(player, "error")
            continue
        if len(row.lineup) == 1:
            solo[row.task, row.seed, row.episode].append(row)
            continue
        if len(set(row.lineup)) != len(row.lineup):  # self-play teaches a rating nothing
            continue
        best = max(row.rewards)
        for pool in pools:
            pool.rate(row.lineup, row.rewards)
            for player, reward in zip(row.lineup, row.rewards, strict=True):
                if reward < best:
                    pool.record(player, "loss")
                elif row.rewards.count(best) > 1:
                    pool.record(player, "draw")
                else:
                    pool.record(player, "win")
    for (task, _seed, _episode), group in sorted(solo.items()):
        players = [row.lineup[0] for row in group]
        rewards = [row.rewards[0] for row in group]
        for pool in (overall, per_game[task]):
            if len(set(players)) > 1:
                pool.rate(players, rewards)
            for player, reward in zip(players, rewards, strict=True):
                pool.record(player, "win" if reward >= 1.0 else "loss")
    players = [
        PlayerRatings(
            player,
            overall.records[player],
            {
                task: pool.records[player]
                for task, pool in per_game.items()
                if player in pool.records
            },
        )
        for player in overall.records
    ]
    players.sort(key=lambda p: (-p.overall.ordinal, p.player))
    return RatingBoard(
        suite=suite,
        games=tuple(sorted(per_game)),
        players=tuple(players),
        n_games=len(rows),
        n_errors=n_errors,
    )


def build_rating_boards(store: Any, suite: str | None = None) -> list[RatingBoard]:
    """One :class:`RatingBoard` per suite of ``store`` that has games (only ``suite``'s if given)."""
    suites = [suite] if suite is not None else store.suites()
    boards = [rate_matches(name, store.match_rows(suite=name)) for name in suites]
    return [board for board in boards if board.players]
