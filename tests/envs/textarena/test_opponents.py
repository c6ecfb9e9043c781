"""The built-in TextArena players: minimax never throws away a won game; they play legally."""

from __future__ import annotations

import itertools

import pytest

from arenagym.envs.textarena.opponents import (
    _KUHN_BET_OR_CALL,
    _nim_wins,
    _ttt_value,
    _ttt_winner,
    connect_four_best_move,
    nim_best_move,
    tictactoe_best_move,
)

pytest.importorskip("textarena")


def _ttt_search_wins(cells: tuple[str, ...], me: str, other: str) -> bool:
    """Whether the search player (to move) wins against *every* line of replies."""
    cell = tictactoe_best_move(cells, me, other)
    after = (*cells[:cell], me, *cells[cell + 1 :])
    if _ttt_winner(after) == me:
        return True
    replies = [i for i, c in enumerate(after) if not c]
    if not replies:
        return False  # a draw is not a win
    for reply in replies:
        answered = (*after[:reply], other, *after[reply + 1 :])
        if _ttt_winner(answered) or not _ttt_search_wins(answered, me, other):
            return False
    return True


def _positions() -> set[tuple[str, ...]]:
    seen: set[tuple[str, ...]] = set()
    frontier = [("",) * 9]
    while frontier:
        cells = frontier.pop()
        if cells in seen:
            continue
        seen.add(cells)
        if _ttt_winner(cells) or all(cells):
            continue
        mover = "O" if cells.count("O") == cells.count("X") else "X"  # player 0 is O, moves first
        frontier += [(*cells[:i], mover, *cells[i + 1 :]) for i, c in enumerate(cells) if not c]
    return seen


def test_minimax_never_loses_tictactoe_from_a_winning_position() -> None:
    winning = 0
    for cells in _positions():
        if _ttt_winner(cells) or all(cells):
            continue
        me = "O" if cells.count("O") == cells.count("X") else "X"
        other = "X" if me == "O" else "O"
        if _ttt_value(cells, me, other) == 1:
            winning += 1
            assert _ttt_search_wins(cells, me, other), cells
    assert winning > 100


def _nim_search_wins(piles: tuple[int, ...]) -> bool:
    pile, quantity = nim_best_move(list(piles))
    after = list(piles)
    after[pile] -= quantity
    if not any(after):
        return True
    for i, size in enumerate(after):
        for q in range(1, size + 1):
            reply = list(after)
            reply[i] -= q
            if not any(reply) or not _nim_search_wins(tuple(reply)):
                return False
    return True


def test_minimax_never_loses_nim_from_a_winning_position() -> None:
    winning = 0
    for piles in itertools.product(range(4), range(5), range(6)):
        if any(piles) and _nim_wins(tuple(sorted(piles))):
            winning += 1
            assert _nim_search_wins(piles), piles
            a, b, c = piles
            assert a ^ b ^ c != 0  # matches the nim-sum theory
    assert winning > 80


def test_connect_four_search_wins_and_blocks() -> None:
    empty = [["."] * 7 for _ in range(6)]
    board = [row[:] for row in empty]
    for col in (0, 1, 2):
        board[5][col] = "X"
    assert connect_four_best_move(board, "X", "O", depth=2) == 3  # complete four
    assert connect_four_best_move(board, "O", "X", depth=2) == 3  # block it


def test_kuhn_strategy_is_the_alpha_one_third_equilibrium() -> None:
    assert _KUHN_BET_OR_CALL[2, "bet"] == 1.0 and _KUHN_BET_OR_CALL[0, "bet"] == 0.0
    assert _KUHN_BET_OR_CALL[0, "open"] == pytest.approx(1 / 3)
    assert _KUHN_BET_OR_CALL[1, "check-bet"] == pytest.approx(1 / 3 + 1 / 3)


def test_search_never_loses_small_games_in_play() -> None:
    import gymnasium as gym

    import arenagym.envs  # noqa: F401

    for game in ("TicTacToe", "Nim"):
        for seed in range(6):
            env = gym.make(
                f"TextArena/{game}-v0",
                opponent="arenagym.envs.textarena.opponents:SearchOpponent",
                seat=seed % 2,
            )
            # the agent seat plays random legal moves, through the env's own opponent machinery
            from arenagym.envs.textarena.aec import GameView
            from arenagym.envs.textarena.opponents import RandomLegalOpponent

            me = RandomLegalOpponent(seed=seed)
            obs, info = env.reset(seed=seed)
            me.reset(info["system_prompt"])
            inner = env.unwrapped
            terminated = False
            while not terminated:
                session = inner._session
                me.observe_game(GameView(game, "", inner._player, session.game, seed))
                obs, _reward, terminated, _truncated, info = env.step(me.act(obs))
            assert info["stop_reason"] in ("lost", "draw"), (game, seed, info)
