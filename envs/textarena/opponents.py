"""Built-in players of the TextArena games: scripted legal-move players and search players.

They have arenagym's agent shape (``reset``, ``act``: the
:class:`~arenagym.envs.textarena.env.Opponent` protocol), so they are passed to
:class:`~arenagym.envs.textarena.env.TextArenaEnv` as objects or by spec string, e.g.
``gym.make("TextArena/ConnectFour-v0", opponent="arenagym.envs.textarena.opponents:SearchOpponent",
opponent_kwargs={"depth": 4})`` (see :func:`~arenagym.envs.textarena.env.load_opponent`), and a
match runner can build them from the same spec. They are *game-aware*: before each move the env
(or the match runner) calls their optional ``observe_game(view)`` hook with a
:class:`~arenagym.envs.textarena.aec.GameView`, and they read the legal moves from TextArena's
game state (:mod:`~arenagym.envs.textarena.rules`) rather than parsing text. Text-only agents
(LLMs) simply do not have the hook.

* :class:`RandomLegalOpponent`: a uniformly random legal move (seeded by the episode).
* :class:`FirstLegalOpponent`: always the first legal move (deterministic, weak).
* :class:`SearchOpponent`: exact minimax for TicTacToe and Nim, depth-limited alpha-beta for
  ConnectFour, the Nash equilibrium strategy of Kuhn poker (alpha = 1/3), always-defect in the
  prisoner's dilemma, and solvers for GuessTheNumber (bisection), TowerOfHanoi, FrozenLake
  (shortest safe path) and Mastermind (a code consistent with all feedback); a random legal move
  elsewhere.

Example:
    >>> from arenagym.envs.core.registration import make_multi_agent
    >>> env = make_multi_agent("TextArena/TicTacToe-AEC-v0")
    >>> env.reset(seed=3)
    >>> players = {a: SearchOpponent() for a in env.agents}
    >>> for agent in env.agent_iter():
    ...     obs, reward, terminated, truncated, info = env.last()
    ...     if terminated or truncated:
    ...         env.step(None)
    ...         continue
    ...     players[agent].observe_game(env.game_view(agent))
    ...     env.step(players[agent].act(obs))
    >>> info["stop_reason"]   # perfect play draws
    'draw'
"""

from __future__ import annotations

import functools
import itertools
import random
from collections import deque
from typing import Any

from arenagym.envs.textarena.aec import GameView
from arenagym.envs.textarena.rules import legal_moves

__all__ = ["FirstLegalOpponent", "RandomLegalOpponent", "SearchOpponent"]


class _GameAwarePlayer:
    """Shared plumbing: the view of the game, a per-episode generator, a fallback reply."""

    def __init__(self, seed: int = 0) -> None:
        if not isinstance(seed, int):
            raise TypeError(f"seed must be an int, got {seed!r}")
        self.seed = seed
        self.view: GameView | None = None
        self.rng = random.Random(seed)
        self._episode_started = True

    def reset(self, system_prompt: str) -> None:
        """Start a new game."""
        self.view = None
        self._episode_started = True

    def observe_game(self, view: GameView) -> None:
        """Called by the env before each move: the game to read the legal moves from."""
        if self._episode_started:  # the episode's generator depends on its seed, not on history
            self.rng = random.Random(f"{self.seed}:{view.seed}")
            self._episode_started = False
        self.view = view

    def act(self, observation: str) -> str:
        """A legal move of the game in the last view."""
        if self.view is None:
            raise RuntimeError(
                f"{type(self).__name__} reads legal moves from the game state: play it through "
                "the TextArena envs or the match runner, which call observe_game(view) first"
            )
        moves = legal_moves(self.view.game, self.view.player_id)
        if not moves:
            return "[pass]"
        return self.choose(moves)

    def choose(self, moves: list[str]) -> str:
        """Pick one of the legal ``moves`` (non-empty)."""
        raise NotImplementedError


class RandomLegalOpponent(_GameAwarePlayer):
    """Plays a uniformly random legal move; reproducible per (``seed``, episode seed, seat)."""

    def choose(self, moves: list[str]) -> str:
        return self.rng.choice(moves)


class FirstLegalOpponent(_GameAwarePlayer):
    """Always plays the first legal move in the game's order (deterministic and weak)."""

    def choose(self, moves: list[str]) -> str:
        return moves[0]


class SearchOpponent(_GameAwarePlayer):
    """Search and solvers where the game is small enough; a random legal move elsewhere.

    Args:
        depth: the alpha-beta depth for ConnectFour (plies).
        seed: seeds the random fallback and Kuhn poker's mixed strategy.
    """

    def __init__(self, depth: int = 4, seed: int = 0) -> None:
        super().__init__(seed)
        if not isinstance(depth, int) or depth < 1:
            raise ValueError(f"depth must be an int >= 1, got {depth!r}")
        self.depth = depth

    def choose(self, moves: list[str]) -> str:
        assert self.view is not None
        game, player = self.view.game, self.view.player_id
        solver = {
            "TicTacToeEnv": _tictactoe_move,
            "NimEnv": _nim_move,
            "ConnectFourEnv": functools.partial(_connect_four_move, depth=self.depth),
            "KuhnPokerEnv": functools.partial(_kuhn_move, rng=self.rng),
            "IteratedPrisonersDilemmaEnv": _prisoners_move,
            "GuessTheNumberEnv": _guess_move,
            "TowerOfHanoiEnv": _hanoi_move,
            "FrozenLakeEnv": _frozen_lake_move,
            "MastermindEnv": _mastermind_move,
        }.get(type(game).__name__)
        move = solver(game, player, moves) if solver else None
        return move if move in moves else self.rng.choice(moves)


# ------------------------------------------------------------------------------- TicTacToe
_LINES = ((0, 1, 2), (3, 4, 5), (6, 7, 8), (0, 3, 6), (1, 4, 7), (2, 5, 8), (0, 4, 8), (2, 4, 6))


def _ttt_winner(cells: tuple[str, ...]) -> str:
    for a, b, c in _LINES:
        if cells[a] and cells[a] == cells[b] == cells[c]:
            return cells[a]
    return ""


@functools.cache
def _ttt_value(cells: tuple[str, ...], me: str, other: str) -> int:
    """Negamax value of ``cells`` for ``me`` to move: +1 win, 0 draw, -1 loss."""
    if _ttt_winner(cells):
        return -1  # the previous mover (``other``) won
    empty = [i for i, cell in enumerate(cells) if not cell]
    if not empty:
        return 0
    return max(-_ttt_value((*cells[:i], me, *cells[i + 1 :]), other, me) for i in empty)


def tictactoe_best_move(cells: tuple[str, ...], me: str, other: str) -> int:
    """The cell (0-8) of a minimax-optimal move for ``me`` (first in order among the best)."""
    empty = [i for i, cell in enumerate(cells) if not cell]
    return max(empty, key=lambda i: -_ttt_value((*cells[:i], me, *cells[i + 1 :]), other, me))


def _tictactoe_move(game: Any, player: int, moves: list[str]) -> str:
    cells = tuple(cell for row in game.state.game_state["board"] for cell in row)
    me, other = ("X", "O") if player == 1 else ("O", "X")
    return f"[{tictactoe_best_move(cells, me, other)}]"


# ------------------------------------------------------------------------------------- Nim
@functools.cache
def _nim_wins(piles: tuple[int, ...]) -> bool:
    """Whether the player to move wins (taking the last object wins) — by exhaustive minimax."""
    if not any(piles):
        return False  # the previous player took the last object
    return any(
        not _nim_wins(tuple(sorted((*piles[:i], pile - q, *piles[i + 1 :]))))
        for i, pile in enumerate(piles)
        for q in range(1, pile + 1)
    )


def nim_best_move(piles: list[int]) -> tuple[int, int]:
    """``(pile, quantity)`` of a winning move if there is one, else taking one object."""
    for i, pile in enumerate(piles):
        for q in range(pile, 0, -1):
            after = tuple(sorted((*piles[:i], pile - q, *piles[i + 1 :])))
            if not _nim_wins(after):
                return i, q
    i = max(range(len(piles)), key=lambda k: piles[k])
    return i, 1


def _nim_move(game: Any, player: int, moves: list[str]) -> str:
    pile, quantity = nim_best_move(list(game.state.game_state["piles"]))
    return f"[{pile} {quantity}]"


# ----------------------------------------------------------------------------- ConnectFour
def _c4_lines(rows: int, cols: int) -> list[tuple[tuple[int, int], ...]]:
    lines = []
    for r, c in itertools.product(range(rows), range(cols)):
        for dr, dc in ((0, 1), (1, 0), (1, 1), (1, -1)):
            cells = tuple((r + k * dr, c + k * dc) for k in range(4))
            if all(0 <= rr < rows and 0 <= cc < cols for rr, cc in cells):
                lines.append(cells)
    return lines


def _c4_score(board: list[list[str]], me: str, other: str, lines: list[Any]) -> int:
    score = 0
    for line in lines:
        values = [board[r][c] for r, c in line]
        mine, theirs = values.count(me), values.count(other)
        if mine and theirs:
            continue
        score += (0, 1, 4, 32, 100_000)[mine] - (0, 1, 4, 32, 100_000)[theirs]
    return score


def _c4_drop(board: list[list[str]], col: int, disc: str) -> int:
    for row in range(len(board) - 1, -1, -1):
        if board[row][col] == ".":
            board[row][col] = disc
            return row
    return -1


def _c4_negamax(
    board: list[list[str]], depth: int, alpha: int, beta: int, me: str, other: str, lines: list[Any]
) -> int:
    score = _c4_score(board, me, other, lines)
    if depth == 0 or abs(score) >= 50_000:
        return score
    cols = [c for c in _c4_order(len(board[0])) if board[0][c] == "."]
    if not cols:
        return 0
    best = -(10**9)
    for col in cols:
        row = _c4_drop(board, col, me)
        value = -_c4_negamax(board, depth - 1, -beta, -alpha, other, me, lines)
        board[row][col] = "."
        best = max(best, value)
        alpha = max(alpha, value)
        if alpha >= beta:
            break
    return best


def _c4_order(cols: int) -> list[int]:
    return sorted(range(cols), key=lambda c: abs(c - (cols - 1) / 2))


def connect_four_best_move(board: list[list[str]], me: str, other: str, depth: int) -> int:
    """The column of the best move by alpha-beta search ``depth`` plies deep."""
    board = [list(row) for row in board]
    lines = _c4_lines(len(board), len(board[0]))
    best_col, best = -1, -(10**9)
    for col in (c for c in _c4_order(len(board[0])) if board[0][c] == "."):
        row = _c4_drop(board, col, me)
        value = -_c4_negamax(board, depth - 1, -(10**9), 10**9, other, me, lines)
        board[row][col] = "."
        if value > best:
            best_col, best = col, value
    return best_col


def _connect_four_move(game: Any, player: int, moves: list[str], depth: int) -> str:
    me, other = ("X", "O") if player == 0 else ("O", "X")
    return f"[{connect_four_best_move(game.state.game_state['board'], me, other, depth)}]"


# ------------------------------------------------------------------------------ Kuhn poker
#: Player-to-act's probability of betting/calling, by (card, situation); alpha = 1/3.
_KUHN_BET_OR_CALL = {
    # first to act, no bet yet: bet (bluff) J with alpha, Q never, K with 3 alpha
    (0, "open"): 1 / 3, (1, "open"): 0.0, (2, "open"): 1.0,
    # first player checked, then faced a bet: fold J, call Q with alpha + 1/3, call K
    (0, "check-bet"): 0.0, (1, "check-bet"): 2 / 3, (2, "check-bet"): 1.0,
    # second to act after a check: bet J 1/3 (bluff), check Q, bet K
    (0, "check"): 1 / 3, (1, "check"): 0.0, (2, "check"): 1.0,
    # second to act facing a bet: fold J, call Q 1/3, call K
    (0, "bet"): 0.0, (1, "bet"): 1 / 3, (2, "bet"): 1.0,
}  # fmt: skip


def _kuhn_move(game: Any, player: int, moves: list[str], rng: random.Random) -> str:
    state = game.state.game_state
    card = state["player_cards"][player]
    tree = state["current_legal_action_tree"]
    first = state["starting_player"] == player
    if "check" in tree:
        situation = "open" if first else "check"
        return "[bet]" if rng.random() < _KUHN_BET_OR_CALL[card, situation] else "[check]"
    situation = "check-bet" if first else "bet"
    return "[call]" if rng.random() < _KUHN_BET_OR_CALL[card, situation] else "[fold]"


# ----------------------------------------------------------------------- other two-player
def _prisoners_move(game: Any, player: int, moves: list[str]) -> str:
    return "[Defect]" if "[Defect]" in moves else moves[0]


# -------------------------------------------------------------------------- single-player
def _guess_move(game: Any, player: int, moves: list[str]) -> str:
    low, high = game.min_number, game.max_number
    for guess, hint in game.state.game_state["guess_history"]:
        if hint == "higher":
            low = max(low, guess + 1)
        else:
            high = min(high, guess - 1)
    return f"[{(low + high) // 2}]"


def _hanoi_move(game: Any, player: int, moves: list[str]) -> str:
    towers = game.state.game_state["towers"]
    where = {disk: name for name, disks in towers.items() for disk in disks}

    def plan(disk: int, target: str) -> tuple[str, str] | None:
        if disk == 0:
            return None
        if where[disk] == target:
            return plan(disk - 1, target)
        spare = ({"A", "B", "C"} - {where[disk], target}).pop()
        smaller_out = plan(disk - 1, spare)
        return smaller_out if smaller_out is not None else (where[disk], target)

    step = plan(max(where), "C")
    return f"[{step[0]} {step[1]}]" if step else moves[0]


def _frozen_lake_move(game: Any, player: int, moves: list[str]) -> str:
    state = game.state.game_state
    grid, start, goal = state["grid"], tuple(state["player_pos"]), tuple(state["goal_pos"])
    size = len(grid)
    steps = {"up": (-1, 0), "down": (1, 0), "left": (0, -1), "right": (0, 1)}
    first_step: dict[tuple[int, int], str] = {}
    queue = deque([start])
    seen = {start}
    while queue:
        r, c = queue.popleft()
        if (r, c) == goal:
            return f"[{first_step[(r, c)]}]"
        for name, (dr, dc) in steps.items():
            nxt = (r + dr, c + dc)
            if 0 <= nxt[0] < size and 0 <= nxt[1] < size and nxt not in seen:
                if grid[nxt[0]][nxt[1]] == "H":
                    continue
                seen.add(nxt)
                first_step[nxt] = first_step.get((r, c), name)
                queue.append(nxt)
    return moves[0]


def _pegs(code: tuple[int, ...], guess: tuple[int, ...]) -> tuple[int, int]:
    black = sum(a == b for a, b in zip(code, guess, strict=True))
    common = sum(min(code.count(n), guess.count(n)) for n in set(guess))
    return black, common - black


def _mastermind_move(game: Any, player: int, moves: list[str]) -> str:
    history = game.state.game_state["history"]
    for move in moves:
        code = tuple(int(n) for n in move.strip("[]").split())
        if all(
            _pegs(code, tuple(entry["guess"])) == (entry["black"], entry["white"])
            for entry in history
        ):
            return move
    return moves[0]
