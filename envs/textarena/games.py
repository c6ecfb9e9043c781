"""The Divide-Fuse-Conquer game set: the 18 TextArena games arenagym registers, in one place.

Divide-Fuse-Conquer (DFC) trains one policy on many TextArena games by first *dividing* them into
groups along two criteria, training a specialist per group, *fusing* the specialists by averaging
their parameters, and continuing. The paper's exact list of 18 games is not public; this is
arenagym's. Each game records its group under both criteria:

* ``start``: ``"random"`` when the starting position is drawn from the seed (cards dealt, ships or
  mines placed, a secret drawn), ``"fixed"`` when every game starts from the same position (the
  seat played is still drawn from the seed).
* ``base_model_can_win``: arenagym's judgement of whether an untrained instruction-tuned base
  model (7B-32B) ever wins the game against the built-in scripted opponents. ``False`` for long
  games with a strict move format where TextArena's invalid-move rule (one warning, then the
  game is lost) ends almost every game before the model can win (Chess, Checkers, Othello,
  Breakthrough, Ultimate Tic-Tac-Toe), and for single-player puzzles that need many correct
  deductions in a row (Sudoku, Minesweeper, Mastermind); ``True`` for short games with few,
  plainly listed moves, where even a weak player wins some of the time.

:data:`GAMES` is the only list: the registration of the envs, the ``dfc18`` suites (checked by
the tests against it) and the docs all read it.

Example:
    >>> len(GAMES), sum(g.num_players == 2 for g in GAMES.values())
    (18, 12)
    >>> GAMES["TicTacToe"].textarena_id, GAMES["TicTacToe"].start, GAMES["TicTacToe"].base_model_can_win
    ('TicTacToe-v0', 'fixed', True)
    >>> sorted(dfc_groups()["random/unwinnable"])
    ['Mastermind', 'Minesweeper', 'Sudoku']
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class GameSpec:
    """One DFC game: its TextArena id, number of players and DFC groups."""

    name: str
    textarena_id: str
    num_players: Literal[1, 2]
    start: Literal["random", "fixed"]
    base_model_can_win: bool
    why: str

    @property
    def group(self) -> str:
        """``"<start>/<winnable|unwinnable>"``: the DFC group under both criteria at once."""
        return f"{self.start}/{'winnable' if self.base_model_can_win else 'unwinnable'}"


_TABLE: tuple[tuple[str, str, int, str, bool, str], ...] = (
    ("TicTacToe", "TicTacToe-v0", 2, "fixed", True, "9 listed moves; short"),
    ("ConnectFour", "ConnectFour-v0", 2, "fixed", True, "7 columns; random play loses often"),
    ("Nim", "Nim-v0", 2, "fixed", True, "piles 3-4-5; few turns"),
    ("KuhnPoker", "KuhnPoker-v0", 2, "random", True, "cards dealt; chance wins hands"),
    ("SimpleNegotiation", "SimpleNegotiation-v0", 2, "random", True, "resources drawn; any good trade wins"),
    ("Othello", "Othello-v0", 2, "fixed", False, "~30 moves each; one slip loses"),
    ("Breakthrough", "Breakthrough-v0", 2, "fixed", False, "long; algebraic moves; one slip loses"),
    ("Checkers", "Checkers-v0", 2, "fixed", False, "long; no move list; one slip loses"),
    ("Chess", "Chess-v0", 2, "fixed", False, "mate within 100 turns is beyond base models"),
    ("Battleship", "Battleship-v0", 2, "random", True, "ships placed at random; 5x5 grid"),
    ("IteratedPrisonersDilemma", "IteratedPrisonersDilemma-v0", 2, "fixed", True, "defecting wins"),
    ("UltimateTicTacToe", "UltimateTicTacToe-v0", 2, "fixed", False, "forced boards confuse models"),
    ("Sudoku", "Sudoku-v0", 1, "random", False, "21 cells, all must be right"),
    ("Minesweeper", "Minesweeper-v0", 1, "random", False, "8x8, 10 mines; many deductions"),
    ("TowerOfHanoi", "TowerOfHanoi-v0", 1, "fixed", True, "3 disks; the 7-move solution is well known"),
    ("FrozenLake", "FrozenLake-v0", 1, "random", True, "4x4 with 3 holes; short path"),
    ("Mastermind", "Mastermind-v0", 1, "random", False, "needs consistent deduction over 20 turns"),
    ("GuessTheNumber", "GuessTheNumber-v0", 1, "random", True, "1-20 in 10 guesses; bisection"),
)  # fmt: skip

#: The 18 games by arenagym name (also the ``<Game>`` of ``TextArena/<Game>-v0``), in DFC order.
GAMES: dict[str, GameSpec] = {
    name: GameSpec(name, ta_id, players, start, winnable, why)  # type: ignore[arg-type]
    for name, ta_id, players, start, winnable, why in _TABLE
}


def dfc_groups() -> dict[str, list[str]]:
    """The games of each DFC group (``start/winnable``), in :data:`GAMES` order."""
    groups: dict[str, list[str]] = {}
    for game in GAMES.values():
        groups.setdefault(game.group, []).append(game.name)
    return groups


def gym_id(game: str) -> str:
    """The single-agent Gymnasium id of ``game``: ``TextArena/<game>-v0``."""
    return f"TextArena/{game}-v0"


def aec_id(game: str) -> str:
    """The PettingZoo id of ``game``: ``TextArena/<game>-AEC-v0``."""
    return f"TextArena/{game}-AEC-v0"
