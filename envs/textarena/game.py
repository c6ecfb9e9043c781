"""One TextArena game played through arenagym: building it, seeding it, stepping it, reading it.

:class:`GameSession` is what both the PettingZoo and the Gymnasium envs drive. It builds a fresh,
unwrapped TextArena env per episode (TextArena's observation wrappers keep their history across
resets), plays it under its own ``random.Random`` (see :mod:`~arenagym.envs.textarena.seeding`),
turns the messages TextArena sends each player into text (only what is new since that player's
last move, like TextArena's ``LLMObservationWrapper`` without the repeats), and reports how each
move went: valid, invalid with a warning (TextArena's rule: the player moves again), or the end of
the game with TextArena's rewards.

TextArena is imported here, lazily: importing ``arenagym.envs`` never imports it.
"""

from __future__ import annotations

import random
import sys
from dataclasses import dataclass, field
from typing import Any

from arenagym.envs.core.loading import LoadError, load_object
from arenagym.envs.textarena import seeding

#: The install hint in every "textarena is missing" error.
INSTALL_HINT = "pip install 'arenagym[textarena]'  (or: pip install 'textarena>=0.7.4,<0.8')"

_loaded_modules = 0


def import_textarena() -> Any:
    """``import textarena`` with a clear error naming the extra when it is not installed."""
    try:
        import textarena
    except ImportError as error:
        raise ImportError(
            f"the TextArena envs need the textarena package, which is not installed ({error}); "
            f"install the arenagym[textarena] extra: {INSTALL_HINT}"
        ) from error
    return textarena


def build_game(textarena_id: str, kwargs: dict[str, Any] | None = None) -> Any:
    """A fresh, unwrapped TextArena env for ``textarena_id`` (e.g. ``"TicTacToe-v0"``).

    Raises ``ValueError`` naming close ids when the id is unknown, and ``RuntimeError`` saying what
    is missing when the game cannot be built (an nltk corpus, an API key, a package).
    """
    global _loaded_modules
    textarena = import_textarena()
    registry = textarena.envs.registration.ENV_REGISTRY
    spec = registry.get(textarena_id)
    if spec is None:
        import difflib

        close = difflib.get_close_matches(textarena_id, list(registry), n=3)
        hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
        raise ValueError(f"unknown TextArena env id {textarena_id!r}{hint}")
    entry = spec.entry_point
    try:
        if isinstance(entry, str):  # TextArena's own "module:Class" entry points
            entry = load_object(entry, what="entry point")
        if len(sys.modules) != _loaded_modules:  # a game module was imported: isolate it
            seeding.isolate_textarena()
            _loaded_modules = len(sys.modules)
        game = entry(**{**spec.kwargs, **(kwargs or {})})
    except (LoadError, ImportError, LookupError, OSError, KeyError) as error:
        raise RuntimeError(
            f"TextArena game {textarena_id!r} cannot be built here: {type(error).__name__}: "
            f"{error} (it may need an nltk corpus, an API key or an extra package)"
        ) from error
    game.env_id = textarena_id
    return game


# seeding.bind and seeding.unbind, without a Python call around them (a move of the cheapest
# games takes a few microseconds)
_bind = seeding._CURRENT.set
_unbind = seeding._CURRENT.reset


def _accept_player_id_in_set_winners(state: Any) -> None:
    """Route ``state.set_winners(player_id=...)`` to ``state.set_winner``.

    TextArena 0.7.4's Checkers ends a game in which the player to move has no legal move with
    ``set_winners(player_id=..., reason=...)``, but ``set_winners`` takes ``player_ids``: the
    call raises ``TypeError`` and the game could never end that way. This shim, on the game's own
    state object, makes that call do what Checkers means (the other player wins).
    """
    set_winners = getattr(state, "set_winners", None)
    set_winner = getattr(state, "set_winner", None)
    if set_winners is None or set_winner is None:
        return

    def accepting(*args: Any, player_id: int | None = None, **kwargs: Any) -> Any:
        if player_id is not None and not args and "player_ids" not in kwargs:
            return set_winner(player_id=player_id, **kwargs)
        return set_winners(*args, **kwargs)

    state.set_winners = accepting


class GameError(RuntimeError):
    """The game could not go on after TextArena's code raised (its state is broken)."""


def _reject_failed_move(state: Any, player: int, turn: int, error: Exception) -> bool:
    """Make a move on which TextArena's game code raised an invalid move of ``player``.

    TextArena's games parse a move with a regular expression and then hand it to code that may
    raise on values the pattern let through (Chess: ``[e2e2]`` passes the pattern, then
    ``chess.Move.from_uci`` raises "invalid uci"). What a player wrote must not end the game as a
    fault for both players, so the move is rejected the way the game rejects any other invalid
    move: ``set_invalid_move`` (a warning and another try, or the loss once the error allowance is
    used up) and ``state.step()`` to close the turn. Returns ``False`` when the move cannot be
    rejected any more because the game already went past it (it ended, or the turn moved on); the
    caller then keeps what the game recorded.
    """
    if state.done or state.turn != turn or int(state.current_player_id) != player:
        return False
    if not getattr(state, "made_invalid_move", False):  # (else the game already flagged it)
        detail = str(error).strip() or type(error).__name__
        state.set_invalid_move(reason=f"The move could not be played ({detail}).")
    state.step()
    return True


@dataclass(frozen=True)
class MoveResult:
    """How one move went. ``invalid`` with ``done=False`` is TextArena's warning (move again)."""

    invalid: bool
    done: bool
    reason: str = ""


#: The result of every valid move that does not end the game (immutable, so shared).
_VALID_MOVE = MoveResult(invalid=False, done=False)


@dataclass
class GameSession:
    """A TextArena game being played, with per-player text buffers and its own generator."""

    textarena_id: str
    num_players: int
    game_kwargs: dict[str, Any] = field(default_factory=dict)
    error_allowance: int = 1
    rng: random.Random = field(default_factory=random.Random)
    game: Any = None
    pending: list[list[str]] = field(default_factory=list)
    rewards: dict[int, float] | None = None
    game_info: dict[int, dict[str, Any]] = field(default_factory=dict)
    seed: int = 0

    def reset(self, seed: int) -> None:
        """Start a new game (a fresh TextArena env) seeded with ``seed``."""
        self.seed = seed
        self.game = build_game(self.textarena_id, self.game_kwargs)
        token = _bind(self.rng)
        try:
            self.game.reset(num_players=self.num_players, seed=seed)
        finally:
            _unbind(token)
        self.game.state.error_allowance = self.error_allowance
        _accept_player_id_in_set_winners(self.game.state)
        self.pending = [[] for _ in range(self.num_players)]
        self.rewards = None
        self.game_info = {}
        self._drain()

    @property
    def state(self) -> Any:
        """TextArena's ``State`` of the game."""
        return self.game.state

    @property
    def current_player(self) -> int:
        """The id (0-based seat) of the player to move."""
        return int(self.game.state.current_player_id)

    @property
    def done(self) -> bool:
        """Whether the game has ended."""
        return bool(self.game.state.done)

    def step(self, action: Any, max_length: int) -> MoveResult:
        """Play ``action`` for the player to move. Non-text or too-long actions are invalid moves."""
        # (the hot path of every env: TextArena's cheapest games step in a few microseconds, so
        # this avoids properties, a with-block and per-move allocations)
        game = self.game
        state = game.state
        player = int(state.current_player_id)
        errors_before = state.error_count
        token = _bind(self.rng)
        try:
            if not isinstance(action, str) or len(action) > max_length:
                what = (
                    f"the reply is a {type(action).__name__}, not text"
                    if not isinstance(action, str)
                    else f"the reply has {len(action)} characters (limit {max_length})"
                )
                state.set_invalid_move(reason=f"{what}.")
                state.step()
            else:
                turn = state.turn
                try:
                    game.step(action)
                except Exception as error:  # what the player wrote broke the game's code
                    try:
                        _reject_failed_move(state, player, turn, error)
                    except Exception as fault:
                        state.done = True
                        raise GameError(
                            f"TextArena's {self.textarena_id} failed on move {action[:80]!r} "
                            f"({type(error).__name__}: {error}) and could not go on: "
                            f"{type(fault).__name__}: {fault}"
                        ) from fault
        finally:
            _unbind(token)
        self._drain()
        if state.done:
            self._finish()
            invalid = bool(self.game_info.get(player, {}).get("invalid_move"))
            return MoveResult(invalid=invalid, done=True, reason=self.reason)
        if state.error_count > errors_before:
            # TextArena's warning, not what the game showed after it (e.g. Minesweeper's board)
            shown = self.pending[player]
            warning = next(
                (text for text in reversed(shown) if "attempted an invalid move" in text),
                shown[-1] if shown else "invalid move",
            )
            return MoveResult(invalid=True, done=False, reason=warning)
        return _VALID_MOVE

    def take_observation(self, player: int) -> str:
        """Everything ``player`` was shown since this was last called for them (and forget it)."""
        text = "\n".join(self.pending[player])
        self.pending[player] = []
        return text

    def peek_observation(self, player: int) -> str:
        """What :meth:`take_observation` would return, without forgetting it."""
        return "\n".join(self.pending[player])

    @property
    def reason(self) -> str:
        """TextArena's reason for the end of the game (empty while it runs)."""
        for info in self.game_info.values():
            if info.get("reason"):
                return str(info["reason"])
        return ""

    def reward(self, player: int) -> float:
        """TextArena's final reward of ``player`` (0.0 while the game runs)."""
        return float((self.rewards or {}).get(player, 0.0))

    def close(self) -> None:
        """Drop the TextArena env."""
        self.game = None

    # ------------------------------------------------------------------------------ helpers
    def _drain(self) -> None:
        state = self.game.state
        roles = state.role_mapping
        pending = self.pending
        for player, messages in state.observations.items():
            if messages:
                buffer = pending[player]
                for sender, message, _kind in messages:
                    if sender == -1:
                        name = "GAME"
                    elif sender in roles:
                        name = roles[sender]
                    else:
                        name = f"Player {sender}"
                    buffer.append(f"[{name}] {message}")
                messages.clear()

    def _finish(self) -> None:
        rewards, info = self.game.state.rewards, self.game.state.game_info
        self.rewards = {int(k): float(v) for k, v in (rewards or {}).items()}
        self.game_info = {int(k): dict(v) for k, v in (info or {}).items()}
