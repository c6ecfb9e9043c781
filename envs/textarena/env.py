"""The single-agent Gymnasium env of a TextArena game (``TextArena/<Game>-v0``).

The opponent of a two-player game is an agent object or a spec string, resolved by
:func:`load_opponent` through :mod:`arenagym.envs.core.loading` (so ``"pkg.module:Class"``, an
agent advertised as an entry point, or an LLM spec such as ``"hf:tiny"`` whose kind an installed
package advertises), without this family importing ``arenagym.agents``.
"""

from __future__ import annotations

import inspect
import random
from collections.abc import Callable, Mapping
from typing import Any, Protocol, runtime_checkable

from arenagym.envs.core.loading import resolve_agent_factory
from arenagym.envs.core.text_env import Episode, InvalidAction, TextEnv, Turn
from arenagym.envs.textarena.aec import GameView, system_prompt
from arenagym.envs.textarena.game import GameSession, MoveResult, import_textarena
from arenagym.envs.textarena.games import GAMES

#: The opponent of a two-player game unless ``opponent=`` says otherwise.
DEFAULT_OPPONENT = "arenagym.envs.textarena.opponents:RandomLegalOpponent"


@runtime_checkable
class Opponent(Protocol):
    """What plays the other seat: arenagym's agent shape (``reset``, ``act``).

    It may also have ``observe_game(view)`` (called with a
    :class:`~arenagym.envs.textarena.aec.GameView` before each of its moves, for game-aware
    players such as :mod:`~arenagym.envs.textarena.opponents`) and ``close()`` (called by the
    env's ``close``).
    """

    def reset(self, system_prompt: str) -> None:
        """Start a new game whose instructions are ``system_prompt``."""

    def act(self, observation: str) -> str:
        """The move for ``observation`` (what the game showed this seat since its last move)."""


class CallableOpponent:
    """An :class:`Opponent` around a callable ``observation -> str`` (e.g. a TextArena agent,
    whose instructions live in its constructor and which has no ``reset``).

    >>> opponent = CallableOpponent(lambda observation: "[1 1]")
    >>> opponent.reset("You play Nim.")
    >>> opponent.act("[GAME] pile 1: 3")
    '[1 1]'
    """

    def __init__(self, function: Callable[[str], Any]) -> None:
        if not callable(function):
            raise TypeError(f"CallableOpponent needs a callable, got {type(function).__name__}")
        call = getattr(function, "__call__", None)  # noqa: B004  (a callable object's method)
        if inspect.iscoroutinefunction(function) or inspect.iscoroutinefunction(call):
            raise TypeError(
                "an async callable cannot be a TextArena opponent: the env plays the opponent's "
                "moves inside step(), synchronously; give a callable that returns the move"
            )
        self.function = function

    def reset(self, system_prompt: str) -> None:
        """Start a new game (the callable itself has no notion of one)."""

    def act(self, observation: str) -> str:
        """The callable's reply to ``observation``, as text."""
        reply = self.function(observation)
        return reply if isinstance(reply, str) else str(reply)


def load_opponent(
    opponent: str | Opponent | Callable[[str], Any],
    opponent_kwargs: Mapping[str, Any] | None = None,
) -> Opponent:
    """The opponent that ``opponent`` names or is.

    ``opponent`` is an agent object (``reset(system_prompt)`` and ``act(observation)``), used as
    it is; or a spec string, resolved with
    :func:`~arenagym.envs.core.loading.resolve_agent_factory` and built with
    ``opponent_kwargs``. What a spec builds (or what is passed) that is only a callable
    ``observation -> str`` is wrapped in :class:`CallableOpponent`. Anything else raises
    ``TypeError``; a spec that does not resolve raises
    :class:`~arenagym.envs.core.loading.LoadError` saying what was tried.

    >>> load_opponent("arenagym.envs.textarena.opponents:SearchOpponent", {"depth": 2}).depth
    2
    >>> type(load_opponent(str.upper)).__name__
    'CallableOpponent'
    """
    kwargs = dict(opponent_kwargs or {})
    if isinstance(opponent, str):
        built = resolve_agent_factory(opponent, what="opponent")(**kwargs)
        named = f"opponent {opponent!r} built a {type(built).__name__}, which"
    else:
        if kwargs:
            raise ValueError(
                "opponent_kwargs build an opponent named by a spec string; this opponent is an "
                f"object ({type(opponent).__name__}) already built, so pass no opponent_kwargs"
            )
        built = opponent
        named = f"the opponent, a {type(built).__name__},"
    if isinstance(built, type):  # (its methods would look like an agent's, unbound)
        raise TypeError(
            f"{named} is a class, not an opponent: pass an instance, or the class's "
            "'package.module:Class' spec with opponent_kwargs"
        )
    if callable(getattr(built, "reset", None)) and callable(getattr(built, "act", None)):
        return built
    if callable(built):
        return CallableOpponent(built)
    raise TypeError(
        f"{named} lacks reset(system_prompt) and/or act(observation), and is not a callable "
        "observation -> str"
    )


class TextArenaEnv(TextEnv):
    r"""A TextArena game with one seat played by the agent and the other by a pluggable opponent.

    ## Description
    One of TextArena's text games (the 18 DFC games are registered as ``TextArena/<Game>-v0``;
    any other TextArena id can be passed as ``game``). In a two-player game the agent plays one
    seat (``seat=0``/``1``, or drawn from the reset seed when ``None``) and an opponent — an
    agent object or spec (see :func:`load_opponent`): a scripted opponent from
    :mod:`arenagym.envs.textarena.opponents`, a baseline, an LLM agent (self-play when it is the
    same policy) — plays the other; its moves happen inside ``step``. Single-player games are
    played directly. A fresh TextArena env is built per episode and seeded through a generator of
    its own, so the same seed gives the same game and Python's global ``random`` is untouched.

    ## Action Space
    :class:`~arenagym.envs.core.spaces.UnicodeText`: the move as text in the game's format.

    ## Observation Space
    :class:`~arenagym.envs.core.spaces.UnicodeText`: on reset the rules and the board (and the
    opponent's first move if it moved first); after a move, only what is new (the opponent's
    reply, the new board), one ``[SENDER] text`` line per TextArena message.

    ## Rewards
    ``reward_components = {"outcome": r}``: TextArena's final reward of the agent's seat (+1 win,
    0 draw, -1 loss; single-player games: 1 when solved, else the fraction done), 0 on earlier
    steps; plus ``invalid_action`` (minus ``invalid_action_penalty``) for an invalid move.

    ## Starting State
    TextArena's starting position for the episode's seed (``info["task_id"]`` names the game,
    the seed and the seat); the agent's seat moves when it is its turn (the opponent may move
    first).

    ## Episode End
    ``won`` / ``lost`` / ``draw`` (``solved`` / ``failed`` in single-player games) when
    TextArena ends the game; ``invalid_action`` when the agent breaks TextArena's invalid-move
    rule (an invalid move earns a warning and another try; ``max_invalid_actions + 1`` in a row
    lose the game; a move on which TextArena's game code raises, such as ``[e2e2]`` in Chess, is
    an invalid move too); ``max_turns`` (truncation); ``env_error`` if the opponent fails or the
    game cannot go on.

    ## Arguments
    * ``game``: the arenagym game name (``"TicTacToe"``) or a TextArena id (``"Nim-v0"``).
    * ``opponent``: the other seat's player (default the game's scripted legal-move opponent):
      an agent object (``reset``, ``act``; optionally ``observe_game``, ``close``) or a spec
      string (``"package.module:Class"``, an agent entry point, an LLM spec such as
      ``"hf:tiny"``), resolved by :func:`load_opponent`; a callable ``observation -> str`` is
      accepted too. ``opponent_kwargs``: the spec's JSON keyword arguments.
    * ``seat``: the agent's player id (0 moves first), or ``None`` to draw it from the seed.
    * ``game_kwargs``: keyword arguments of the TextArena env.
    * ``max_turns`` (1000), ``max_invalid_actions`` (1, TextArena's rule),
      ``invalid_action_penalty`` (0.0), ``render_mode`` (``None`` or ``"ansi"``).

    ## Examples
    >>> import gymnasium as gym
    >>> import arenagym.envs
    >>> env = gym.make("TextArena/Nim-v0", seat=0,
    ...                opponent="arenagym.envs.textarena.opponents:SearchOpponent")
    >>> obs, info = env.reset(seed=1)
    >>> info["task_id"], "Nim" in obs
    ('Nim-v0/seed=1016164991/seat=0', True)
    >>> obs, reward, terminated, truncated, info = env.step("[0 2]")  # 1^4^5 = 0: a lost position
    >>> while not terminated:
    ...     obs, reward, terminated, truncated, info = env.step("[2 1]" if "pile 2: 0" not in obs else "[1 1]")
    >>> info["stop_reason"], reward
    ('lost', -1.0)
    """

    #: TextArena's rule: ``max_invalid_actions + 1`` invalid moves *in a row* lose the game.
    invalid_actions_in_a_row = True
    #: Every move, text or not, goes to the game, so that its error count and this env's agree.
    accepts_any_action = True

    def __init__(
        self,
        game: str,
        opponent: str | Opponent | Callable[[str], Any] = DEFAULT_OPPONENT,
        opponent_kwargs: dict[str, Any] | None = None,
        seat: int | None = None,
        game_kwargs: dict[str, Any] | None = None,
        max_turns: int = 1000,
        max_invalid_actions: int = 1,
        invalid_action_penalty: float = 0.0,
        max_action_length: int = 4096,
        max_observation_length: int = 65_536,
        render_mode: str | None = None,
    ) -> None:
        super().__init__(
            max_turns=max_turns,
            invalid_action_penalty=invalid_action_penalty,
            max_invalid_actions=max_invalid_actions,
            max_action_length=max_action_length,
            max_observation_length=max_observation_length,
            render_mode=render_mode,
        )
        import_textarena()  # a clear ImportError naming the extra when it is missing
        spec = GAMES.get(game)
        if spec is None:
            from arenagym.envs.textarena.aec import _num_players

            num_players = _num_players(game)
        else:
            num_players = spec.num_players
        self.game_name = game if spec else game.split("-v")[0]
        self.textarena_id = spec.textarena_id if spec else game
        self.num_players = num_players
        if seat is not None and seat not in range(num_players):
            raise ValueError(
                f"seat must be None (drawn from the seed) or one of {list(range(num_players))} "
                f"for {self.game_name}, got {seat!r}"
            )
        self.seat = seat
        self.opponent_spec = opponent
        self.opponent_kwargs = dict(opponent_kwargs or {})
        self._opponent: Any = None
        if num_players == 2:
            self._opponent = load_opponent(opponent, self.opponent_kwargs)
        self._session = GameSession(
            self.textarena_id,
            num_players,
            dict(game_kwargs or {}),
            error_allowance=max_invalid_actions,
            rng=random.Random(),
        )
        self._player = 0
        self._system_prompts = [
            system_prompt(self.game_name, i, num_players) for i in range(num_players)
        ]

    # ------------------------------------------------------------------------------ hooks
    def _start_episode(self, options: dict[str, Any] | None) -> Episode:
        game_seed = int(self.np_random.integers(2**31))
        seat = self.seat
        if seat is None:
            seat = int(self.np_random.integers(self.num_players))
        self._player = seat
        self._session.reset(game_seed)
        if self._opponent is not None:  # (two players: the prompts of the two seats)
            self._opponent.reset(self._system_prompts[1 - seat])
        prelude = self._play_opponent()
        prompt = self._session.take_observation(seat)
        task_id = f"{self.textarena_id}/seed={game_seed}"
        if self.num_players == 2:
            task_id += f"/seat={seat}"
        return Episode(
            task_id=task_id,
            system_prompt=self._system_prompts[seat],
            prompt=prompt,
            info={"seat": seat, "game": self.game_name, "opponent_moves": prelude},
        )

    def _respond(self, action: Any) -> Turn | InvalidAction:
        # (any action: non-text and too-long replies are the game's invalid moves, see
        # GameSession.step, so that TextArena's error count and this env's stay in step)
        session = self._session
        if session.game.state.done:  # the opponent ended the game before the agent could move
            return self._final_turn("")
        result = session.step(action, self.action_space.max_length)
        return self._after_move(result)

    def _release(self) -> None:
        self._session.close()
        close = getattr(self._opponent, "close", None)
        if callable(close):
            close()

    # ---------------------------------------------------------------------------- helpers
    def _after_move(self, result: MoveResult) -> Turn | InvalidAction:
        session = self._session
        if result.invalid:
            message = session.take_observation(self._player) or result.reason
            if result.done:
                return InvalidAction(
                    message,
                    final_reward_components={"outcome": session.reward(self._player)},
                    info={"game_reason": session.reason},
                )
            return InvalidAction(message)
        moves = self._play_opponent()
        observation = session.take_observation(self._player)
        if session.game.state.done:
            return self._final_turn(observation, moves)
        return Turn(observation, {"outcome": 0.0}, info={"opponent_moves": moves})

    def _final_turn(self, observation: str, moves: int = 0) -> Turn:
        session = self._session
        reward = session.reward(self._player)
        if self.num_players == 1:
            reason = "solved" if reward >= 1.0 else "failed"
        else:
            reason = "won" if reward > 0 else "lost" if reward < 0 else "draw"
        return Turn(
            observation or f"[GAME] {session.reason}",
            {"outcome": reward},
            terminated=True,
            stop_reason=reason,
            info={"game_reason": session.reason, "opponent_moves": moves},
        )

    def _play_opponent(self) -> int:
        """Let the opponent move until it is the agent's turn or the game ends; its move count."""
        session = self._session
        opponent = self._opponent
        player = self._player
        max_length = self.action_space.max_length
        moves = 0
        while True:
            state = session.game.state
            if state.done:
                return moves
            other = int(state.current_player_id)
            if other == player:
                return moves
            observe = getattr(opponent, "observe_game", None)
            if callable(observe):  # (offer_view, without building a view nobody reads)
                observe(
                    GameView(
                        self.game_name,
                        self.textarena_id,
                        other,
                        session.game,
                        (session.seed * 7919 + other) % 2**31,
                    )
                )
            action = opponent.act(session.take_observation(other))
            session.step(action, max_length)
            moves += 1
