"""Legal moves of the 18 DFC games, read from TextArena's game state (for scripted players).

:func:`legal_moves` lists the moves the player to move can make, as the text TextArena parses
(``"[4]"``, ``"[e2e4]"``, ``"[A3]"``...), using the game's own validity checks where it has them.
Games are recognised by their TextArena class, so variants (``Nim-v0-large``) work too.

Example:
    >>> from arenagym.envs.textarena.game import GameSession
    >>> session = GameSession("TicTacToe-v0", 2)
    >>> session.reset(seed=0)
    >>> legal_moves(session.game)
    ['[0]', '[1]', '[2]', '[3]', '[4]', '[5]', '[6]', '[7]', '[8]']
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

LegalMoves = Callable[[Any, int], list[str]]


def legal_moves(game: Any, player: int | None = None) -> list[str]:
    """The moves ``player`` (default: the player to move) can make now; ``[]`` if none/unknown."""
    player = game.state.current_player_id if player is None else player
    rule = _RULES.get(type(game).__name__)
    if rule is None or game.state.done:
        return []
    return rule(game, player)


def supports(game: Any) -> bool:
    """Whether :func:`legal_moves` knows ``game``."""
    return type(game).__name__ in _RULES


# ---------------------------------------------------------------------------- two-player
def _tictactoe(game: Any, player: int) -> list[str]:
    board = game.state.game_state["board"]
    return [f"[{r * 3 + c}]" for r in range(3) for c in range(3) if board[r][c] == ""]


def _connect_four(game: Any, player: int) -> list[str]:
    board = game.state.game_state["board"]
    return [f"[{c}]" for c in range(len(board[0])) if board[0][c] == "."]


def _nim(game: Any, player: int) -> list[str]:
    piles = game.state.game_state["piles"]
    return [f"[{i} {q}]" for i, pile in enumerate(piles) for q in range(1, pile + 1)]


def _kuhn(game: Any, player: int) -> list[str]:
    tree = game.state.game_state["current_legal_action_tree"]
    return [f"[{move}]" for move in tree] if isinstance(tree, dict) else []


def _negotiation(game: Any, player: int) -> list[str]:
    state = game.state.game_state
    mine = state["player_resources"][player]
    moves = ["[Deny]"]
    offer = state["current_offer"]
    if offer and offer["from_player"] != player:
        requested = offer["requested_resources"]
        if all(mine.get(name, 0) >= qty for name, qty in requested.items()):
            moves.append("[Accept]")
    names = list(mine)
    moves += [
        f"[Offer: 1 {give} -> 1 {take}]"
        for give, take in itertools.permutations(names, 2)
        if mine[give] >= 1
    ]
    return moves


def _othello(game: Any, player: int) -> list[str]:
    valid = game.state.game_state.get("valid_moves") or []
    return [f"[{r}, {c}]" for r, c in valid] or ["[pass]"]  # no move: any reply skips


def _breakthrough(game: Any, player: int) -> list[str]:
    board = game.state.game_state["board"]
    size = len(board)
    step = 1 if player == 0 else -1
    moves = []
    for r, c in itertools.product(range(size), range(size)):
        for dc in (-1, 0, 1):
            r2, c2 = r + step, c + dc
            if 0 <= r2 < size and 0 <= c2 < size and game._is_valid_move(player, r, c, r2, c2):
                moves.append(f"[{chr(97 + c)}{r + 1}{chr(97 + c2)}{r2 + 1}]")
    return moves


def _checkers(game: Any, player: int) -> list[str]:
    board = game.state.game_state["board"]
    moves = []
    for r, c in itertools.product(range(8), range(8)):
        if board[r][c] == ".":
            continue
        for dr, dc in itertools.product((-2, -1, 1, 2), repeat=2):
            if abs(dr) == abs(dc) and game._is_valid_move(player, r, c, r + dr, c + dc):
                moves.append(f"[{r} {c} {r + dr} {c + dc}]")
    return moves


def _chess(game: Any, player: int) -> list[str]:
    return [f"[{move.uci()}]" for move in game.state.game_state["board"].legal_moves]


def _battleship(game: Any, player: int) -> list[str]:
    tracking = game.state.game_state["tracking_board"][player]
    size = len(tracking)
    return [
        f"[{chr(65 + r)}{c}]" for r in range(size) for c in range(size) if tracking[r][c] == "~"
    ]


def _prisoners(game: Any, player: int) -> list[str]:
    if game.state.game_state["phase"] == "conversation":
        return ["Let us both cooperate this round."]
    return ["[Cooperate]", "[Defect]"]


def _ultimate(game: Any, player: int) -> list[str]:
    # the rules of UltimateTicTacToeEnv._is_valid_move (which cannot be called: it flags the move)
    state = game.state.game_state
    forced = state["next_micro_board"]
    moves = []
    for macro in range(9) if forced is None else (forced,):
        if state["macro_board"][macro // 3][macro % 3] != " ":
            continue
        board = state["board"][macro]
        moves += [f"[{macro} {m}]" for m in range(9) if board[m // 3][m % 3] == " "]
    return moves


# ------------------------------------------------------------------------- single-player
def _sudoku(game: Any, player: int) -> list[str]:
    # Moves consistent with the visible board (row, column, box), not with the hidden solution:
    # TextArena calls any digit but the solution's an invalid move, so asking it would leak the
    # answer to a scripted player.
    board = game.state.game_state["board"]
    moves = []
    for r, c in itertools.product(range(9), range(9)):
        if board[r][c] != 0:
            continue
        box_r, box_c = 3 * (r // 3), 3 * (c // 3)
        used = set(board[r]) | {board[i][c] for i in range(9)}
        used |= {board[i][j] for i in range(box_r, box_r + 3) for j in range(box_c, box_c + 3)}
        moves += [f"[{r + 1} {c + 1} {n}]" for n in range(1, 10) if n not in used]
    return moves


def _minesweeper(game: Any, player: int) -> list[str]:
    return [
        f"[{r} {c}]" for r in range(game.rows) for c in range(game.cols) if not game.revealed[r][c]
    ]


def _hanoi(game: Any, player: int) -> list[str]:
    towers = game.state.game_state["towers"]
    return [
        f"[{s} {t}]"
        for s, t in itertools.permutations("ABC", 2)
        if towers[s] and (not towers[t] or towers[t][-1] > towers[s][-1])
    ]


def _frozen_lake(game: Any, player: int) -> list[str]:
    r, c = game.state.game_state["player_pos"]
    size = len(game.state.game_state["grid"])
    steps = {"up": (-1, 0), "down": (1, 0), "left": (0, -1), "right": (0, 1)}
    return [
        f"[{name}]" for name, (dr, dc) in steps.items() if 0 <= r + dr < size and 0 <= c + dc < size
    ]


def _mastermind(game: Any, player: int) -> list[str]:
    state = game.state.game_state
    numbers = range(1, state["num_numbers"] + 1)
    codes = (
        itertools.product(numbers, repeat=state["code_length"])
        if state["duplicate_numbers"]
        else itertools.permutations(numbers, state["code_length"])
    )
    guessed = {tuple(entry["guess"]) for entry in state["history"] if "guess" in entry}
    return ["[" + " ".join(map(str, code)) + "]" for code in codes if code not in guessed]


def _guess_the_number(game: Any, player: int) -> list[str]:
    return [
        f"[{n}]"
        for n in range(game.min_number, game.max_number + 1)
        if n not in game.guessed_numbers
    ]


_RULES: dict[str, LegalMoves] = {
    "TicTacToeEnv": _tictactoe,
    "ConnectFourEnv": _connect_four,
    "NimEnv": _nim,
    "KuhnPokerEnv": _kuhn,
    "SimpleNegotiationEnv": _negotiation,
    "OthelloEnv": _othello,
    "BreakthroughEnv": _breakthrough,
    "CheckersEnv": _checkers,
    "ChessEnv": _chess,
    "BattleshipEnv": _battleship,
    "IteratedPrisonersDilemmaEnv": _prisoners,
    "UltimateTicTacToeEnv": _ultimate,
    "SudokuEnv": _sudoku,
    "MinesweeperEnv": _minesweeper,
    "TowerOfHanoiEnv": _hanoi,
    "FrozenLakeEnv": _frozen_lake,
    "MastermindEnv": _mastermind,
    "GuessTheNumberEnv": _guess_the_number,
}
